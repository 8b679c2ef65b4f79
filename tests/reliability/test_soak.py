"""A shortened soak (30 s of mixed load after a 5 s warm-up): no failed call, VmRSS grows at most 10 %."""

from __future__ import annotations

from tests.reliability.soak import run


def test_short_soak_has_no_errors_and_flat_memory() -> None:
    report = run(seconds=30, window_s=10, rate_per_rpc=50, warmup_s=5, max_rss_growth=0.10)
    print(report["windows"], report["rss_start_kib"], report["rss_end_kib"], report["rss_peak_kib"])
    assert report["server_alive"]
    assert report["errors"] == 0, report["first_errors"]
    # The callers stop at the end of the 30 s by the clock, so this counts calls the server answered in time
    # for the schedule (50/s per RPC), not the schedule itself.
    assert report["calls_scheduled"] == 30 * 4 * 50
    assert report["calls"] >= 0.9 * report["calls_scheduled"], report["windows"]
    assert report["rss_peak_kib"] >= report["rss_end_kib"] > 0
    assert report["rss_growth"] <= 0.10, report
