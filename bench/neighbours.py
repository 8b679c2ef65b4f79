"""Noisy neighbours: bounded background CPU load on the server's cores, at the lowest priority.

    with neighbours(2, max_s=600):
        ...  # measure

Each neighbour is a process at `nice 19` that hashes through a buffer larger than the CPU caches, so it
takes CPU time and evicts the server's cache lines, as a batch job sharing a Kubernetes node does.

Where the kernel groups processes by session (autogroup, on in most distributions;
/proc/sys/kernel/sched_autogroup_enabled), niceness only orders processes inside one group, and the groups
share the CPU evenly, as pods in their own cgroups do. `own_session=False` keeps the neighbours in the
benchmark's session, where nice 19 makes them the lowest priority; `own_session=True` gives each its own
session, an equal share of the CPU whatever its niceness.

A neighbour stops when the block ends, and on its own after `max_s` even if the parent died, so no load
outlives the benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bench.processes import stop_all

NICENESS = 19  # the lowest priority a normal process can take
BUFFER_BYTES = 32 << 20  # larger than the last-level cache of the machines this runs on
CHUNK_BYTES = 1 << 20

# The neighbour's own program: hash 1 MiB chunks of a 32 MiB buffer until its deadline passes.
_PROGRAM = f"""
import hashlib, os, sys, time
os.nice({NICENESS})
deadline = time.monotonic() + float(sys.argv[1])
buffer = memoryview(bytearray(os.urandom(4096)) * ({BUFFER_BYTES} // 4096))
offset = 0
while time.monotonic() < deadline:
    hashlib.sha256(buffer[offset:offset + {CHUNK_BYTES}]).digest()
    offset = (offset + {CHUNK_BYTES}) % {BUFFER_BYTES}
"""


@contextmanager
def neighbours(count: int, max_s: float, own_session: bool = False) -> Iterator[list[int]]:
    """Run `count` neighbour processes for the block (at most `max_s` seconds); yields their pids."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            started.append(
                subprocess.Popen(
                    [sys.executable, "-c", _PROGRAM, str(max_s)],
                    stdin=subprocess.DEVNULL,
                    start_new_session=own_session,
                )
            )
        yield [p.pid for p in started]
    finally:
        stop_all(started, timeout_s=10.0)


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc); 0 for one already gone."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
