"""Metrics derived from the link physics: counters, latency percentiles, windows, compression, node health."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.special import ndtr

from training.datagen.incidents import Effects
from training.datagen.network import MSS_BITS, PACKET_BITS, LinkSimulator
from training.datagen.processes import AR1, ar1_phi, lognormal_noise
from training.datagen.topology import Topology

SLO_TARGET = 0.999  # availability objective behind error_budget_burn_rate
LATENCY_SLO_EXTRA_MS = np.array([5.0, 10.0, 30.0, 60.0])  # per link type, on top of 1.5 x propagation RTT
PROBE_PACKETS = 200  # loss is still measured by probes when no data flows


def link_metrics(
    sim: LinkSimulator, phys: dict[str, np.ndarray], fx: Effects, interval_s: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Counters, loss, latency percentiles, congestion window and compression/multi-stream columns."""
    topo = sim.topo
    shape = phys["rtt_ms"].shape
    lt = topo.link_type
    tput, rtt, p_loss = phys["throughput_mbps"], phys["rtt_ms"], phys["p_loss"]
    bytes_tx = np.round(tput * interval_s * 1e6 / 8.0)
    packets = np.maximum(bytes_tx * 8.0 / PACKET_BITS, PROBE_PACKETS).astype(np.int64)
    lost = rng.binomial(packets, p_loss)
    loss = lost / packets
    retransmits = np.round(lost * np.where(topo.transport == 1, 0.9, 1.05) * lognormal_noise(rng, 0.1, shape))
    retransmits += rng.poisson(packets * 2e-7 * (1.0 + 5.0 * phys["burst_bad"]))
    jitter = (
        phys["jitter_base_ms"]
        + 0.35 * phys["queue_ms"] * lognormal_noise(rng, 0.4, shape)
        + 0.1 * phys["true_rtt_ms"] * phys["burst_bad"]
    ) * fx.jitter_mult
    server_ms = 0.4 * fx.proc_mult * lognormal_noise(rng, 0.25, shape)
    p50 = rtt + server_ms
    request_hit = 1.0 - (1.0 - p_loss) ** 10  # a 10-packet request meets a loss
    rto_ms = np.maximum(200.0, 2.0 * phys["true_rtt_ms"])
    p99 = p50 + (
        2.5 * jitter + 2.0 * phys["queue_ms"] + 4.0 * server_ms + np.minimum(1.0, request_hit / 0.01) * rto_ms
    ) * lognormal_noise(rng, 0.3, shape)
    streams = phys["streams"]
    bdp_segments = tput / streams * rtt * 1_000.0 / MSS_BITS
    cwnd = np.clip(
        np.round(bdp_segments * lognormal_noise(rng, 0.25, shape) * 1.2 * (1.0 - np.minimum(0.5, 50.0 * p_loss))),
        2,
        10_000_000,
    )
    kappa = (
        1.0
        + (topo.compressibility - 1.0)
        * np.exp(0.3 * sim.payload_drift.step(rng, shape[0]))
        * sim.payload_factor[phys["hour_idx"]]
    )
    level = np.clip(
        np.round(
            2.0
            + 3.0 * np.log(kappa)
            - 1.2 * np.log10(np.maximum(tput, 1.0) / 100.0)
            + 1.5 * (phys["mode"] == 1)
            + rng.normal(0.0, 0.7, shape)
        ),
        0,
        9,
    )
    gain = 0.2 + 0.8 * (1.0 - np.exp(-level / 2.5)) / (1.0 - np.exp(-9.0 / 2.5))
    ratio = np.maximum(1.0, 1.0 + (kappa - 1.0) * gain * lognormal_noise(rng, 0.04, shape))
    delta = 1.0 / (
        1.0 + np.exp(-(sim.delta_bias + 0.8 * sim.delta_drift.step(rng, shape[0]) + 0.6 * np.log(kappa) - 1.0))
    )
    capacity_bound = np.minimum(streams * phys["per_stream_mbps"], phys["available_mbps"])
    out = {
        "throughput_mbps": tput,
        "rtt_ms": rtt,
        "packet_loss_ratio": loss,
        "retransmits": retransmits,
        "jitter_ms": jitter,
        "p50_latency_ms": p50,
        "p99_latency_ms": p99,
        "bytes_tx": bytes_tx,
        "bytes_rx": np.round(bytes_tx * topo.reverse_ratio * lognormal_noise(rng, 0.15, shape)),
        "transfer_rate_mbps": tput * (1.0 - loss) * ratio,
        "congestion_window": cwnd,
        "queue_depth": np.round(phys["queue_pkts"]),
        "buffer_utilization": np.clip(phys["queue_pkts"] / topo.buffer_pkts, 0.0, 1.0),
        "hde_compression_ratio": ratio,
        "hde_delta_hit_ratio": np.clip(delta * lognormal_noise(rng, 0.05, shape), 0, 1),
        "compression_level": level,
        "amst_streams": streams,
        "amst_transfer_rate_mbps": tput * sim.amst_share * np.minimum(1.0, lognormal_noise(rng, 0.03, shape)),
        "stream_utilization": np.clip(tput / capacity_bound * lognormal_noise(rng, 0.05, shape), 0.0, 1.0),
        "latency_slo_ms": 1.5 * topo.prop_rtt_ms + LATENCY_SLO_EXTRA_MS[lt],
    }
    out["error_rate_link"] = np.clip(
        loss * lognormal_noise(rng, 0.5, shape) * 0.4 + 1e-5 * lognormal_noise(rng, 1.0, shape), 0.0, 1.0
    )
    return out


class NodeHealth:
    """Node-level uptime, failure rate and the error-budget burn rate (a one-hour EWMA), carried across chunks."""

    def __init__(self, n_nodes: int, interval_s: float, rng: np.random.Generator) -> None:
        self.base_failure = rng.lognormal(np.log(3e-4), 0.7, n_nodes)
        self.alpha = 1.0 - np.exp(-interval_s / 3_600.0)
        self.ewma = self.base_failure.copy()
        # Unlabelled wander of the failure rate (client mix, deploys); makes incidents less trivially separable.
        self.wander = AR1(ar1_phi(np.full(n_nodes, 1_800.0), interval_s), rng)

    def chunk(
        self, link_loss: np.ndarray, topo: Topology, fx: Effects, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """uptime_pct, failure_rate and error_budget_burn_rate per node, (steps, nodes)."""
        steps, n_nodes = fx.down_frac.shape
        mean_loss = topo.per_node(link_loss) / np.bincount(topo.link_src)
        restarts = (rng.random((steps, n_nodes)) < 0.0008) * rng.uniform(0.01, 0.2, (steps, n_nodes))
        uptime = 100.0 * (1.0 - np.maximum(fx.down_frac, restarts))
        blips = (rng.random((steps, n_nodes)) < 0.002) * rng.uniform(0.0005, 0.01, (steps, n_nodes))
        drift = np.exp(0.6 * self.wander.step(rng, steps))
        failure = np.clip(
            self.base_failure * drift * lognormal_noise(rng, 0.4, (steps, n_nodes)) * (1.0 + 200.0 * mean_loss)
            + blips
            + fx.failure_add
            + 0.3 * (1.0 - uptime / 100.0),
            0.0,
            1.0,
        )
        keep = 1.0 - self.alpha
        burn, _ = lfilter([self.alpha], [1.0, -keep], failure, axis=0, zi=(keep * self.ewma)[None, :])
        self.ewma = burn[-1].copy()
        return {"uptime_pct": uptime, "failure_rate": failure, "error_budget_burn_rate": burn / (1.0 - SLO_TARGET)}


def slo_compliance(p50_ms: np.ndarray, p99_ms: np.ndarray, target_ms: np.ndarray, failure: np.ndarray) -> np.ndarray:
    """Share of requests under the latency target, from a lognormal fitted to p50/p99, times success."""
    sigma = np.maximum(np.log(np.maximum(p99_ms, p50_ms * 1.001) / p50_ms) / 2.326, 0.05)
    return np.asarray(ndtr((np.log(target_ms) - np.log(p50_ms)) / sigma) * (1.0 - failure))
