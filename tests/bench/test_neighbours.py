"""The load test's noisy neighbours: they run at nice 19 in the session asked for and are gone after the block."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.neighbours import cpu_s, neighbours


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("own_session", [False, True])
def test_neighbours_use_cpu_at_nice_19_and_stop_with_the_block(own_session: bool) -> None:
    with neighbours(2, max_s=60, own_session=own_session) as pids:
        assert len(pids) == 2
        time.sleep(0.5)
        for pid in pids:
            fields = _stat(pid)
            assert int(fields[16]) == 19  # niceness
            assert (int(fields[3]) == pid) is own_session  # session id: its own, or ours
            assert (os.getsid(pid) == os.getsid(0)) is not own_session
        assert cpu_s(pids) > 0
    assert not any(_alive(pid) for pid in pids)


def test_a_neighbour_ends_by_itself_at_its_limit() -> None:
    with neighbours(1, max_s=0.5) as pids:
        deadline = time.monotonic() + 20
        while _alive(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pids[0])
