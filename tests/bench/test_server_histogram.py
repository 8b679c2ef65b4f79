"""The server's own histogram as the load test reads it: parsed from a real /metrics page, differenced, quantiles."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest

from bench.server_histogram import MODEL_HISTOGRAM, Buckets, parse_pages
from server.metrics import Metrics


def _page(observations: dict[tuple[str, str], list[float]]) -> str:
    metrics = Metrics(CollectorRegistry(), 0.010)
    for (method, code), durations in observations.items():
        for duration_s in durations:
            metrics.observe_rpc(method, code, duration_s, 1)
    return generate_latest(metrics.registry).decode()


def test_quantiles_interpolate_inside_the_buckets_of_the_servers_histogram() -> None:
    # 98 calls at 0.1 ms and 2 at 40 ms: p50 is in the first bucket (<= 0.25 ms), p99 in (25, 50] ms.
    buckets = parse_pages(_page({("DetectAnomaly", "OK"): [0.0001] * 98 + [0.040] * 2})).buckets("DetectAnomaly")
    assert buckets.total == 100
    assert 0 < buckets.quantile_ms(0.5) <= 0.25
    assert 25.0 < buckets.quantile_ms(0.99) <= 50.0


def test_every_code_of_the_method_counts_and_other_methods_do_not() -> None:
    page = _page(
        {
            ("DetectAnomaly", "OK"): [0.001] * 3,
            ("DetectAnomaly", "RESOURCE_EXHAUSTED"): [0.0002] * 2,
            ("PredictBandwidth", "OK"): [0.5] * 7,
        }
    )
    assert parse_pages(page).buckets("DetectAnomaly").total == 5
    assert parse_pages(page).buckets("PredictBandwidth").total == 7
    assert parse_pages(page).buckets("SelectCompression").total == 0
    assert parse_pages(page, page).buckets("PredictBandwidth").total == 14  # two processes' pages add up


def test_a_run_is_the_difference_of_two_scrapes() -> None:
    before = parse_pages(_page({("DetectAnomaly", "OK"): [0.2] * 50})).buckets("DetectAnomaly")  # slow, before the run
    after = parse_pages(_page({("DetectAnomaly", "OK"): [0.2] * 50 + [0.0001] * 10})).buckets("DetectAnomaly")
    run = after - before
    assert run.total == 10
    assert run.quantile_ms(0.99) <= 0.25  # the slow calls before the run do not count


def test_no_observations_give_nan_and_a_quantile_in_the_overflow_bucket_gives_the_largest_bound() -> None:
    assert math.isnan(Buckets((), ()).quantile_ms(0.99))
    overflow = parse_pages(_page({("DetectAnomaly", "OK"): [5.0] * 4})).buckets("DetectAnomaly")
    assert overflow.quantile_ms(0.99) == 1000.0  # the histogram's last finite bound, 1 s
    assert (overflow - Buckets((), ())).total == 4  # a method without a series before the run


def test_means_come_from_the_sum_and_count_of_the_matching_series_only() -> None:
    metrics = Metrics(CollectorRegistry(), 0.010)
    for duration_s in (0.00002, 0.00004):  # both inside the first bucket, which cannot tell them apart
        metrics.model_timer("reliability_detector", "v1").observe(duration_s)
    metrics.model_timer("bandwidth_predictor", "v1").observe(0.5)
    page = generate_latest(metrics.registry).decode()
    totals = parse_pages(page).totals(MODEL_HISTOGRAM, {"model": "reliability_detector"})
    assert totals.count == 2
    assert math.isclose(totals.mean_ms, 0.03)
    assert (totals - totals).count == 0 and math.isnan((totals - totals).mean_ms)
    assert parse_pages(page).totals(MODEL_HISTOGRAM, {"model": "consensus_latency"}).count == 0
