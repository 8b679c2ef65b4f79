"""Link physics per chunk: load cycles, queueing delay, buffer and burst loss, Mathis-bounded throughput."""

from __future__ import annotations

import numpy as np

from training.datagen.config import DatagenConfig
from training.datagen.dynamics import LinkDynamics
from training.datagen.incidents import Effects
from training.datagen.processes import AR1, ar1_phi, hourly_regimes, lognormal_noise, soft_min
from training.datagen.topology import (
    BASE_JITTER_MS,
    EDGE,
    LOAD_SIGMA,
    LOAD_TAU_S,
    REGIONS,
    RTT_NOISE_SIGMA,
    WAN,
    Topology,
)

MSS_BITS = 1_460 * 8
PACKET_BITS = 1_500 * 8
# Mathis constant C per transport (tcp, udp, quic): DWCP's UDP rate control and QUIC recover from loss
# better than Reno-style TCP, so the same loss costs them less.
MATHIS_C = np.array([1.22, 2.5, 1.6])
# Capacity factors (edge: modulation / plan changes; others: a failed LAG member, maintenance).
EDGE_CAPACITY_FACTORS, CORE_CAPACITY_FACTORS = np.array([1.0, 0.6, 0.3]), np.array([1.0, 0.5])
OVERFLOW_DROP_SHARE = 0.1
ROUTE_FACTORS = np.array([1.0, 1.15, 1.45])  # reroutes onto longer paths
PAYLOAD_FACTORS = np.array([1.0, 0.08, 1.8])  # normal, already-compressed/encrypted, highly redundant


def _profile(hour: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Daily load shape (mean about 1): business hours for core links, evening peak for edge links."""
    business = 0.45 + 0.55 * np.exp(-(((hour - 14.0) / 4.0) ** 2)) + 0.15 * np.exp(-(((hour - 10.0) / 2.0) ** 2))
    evening = 0.35 + 0.65 * np.exp(-(((hour - 20.5) / 3.0) ** 2)) + 0.2 * np.exp(-(((hour - 12.0) / 3.0) ** 2))
    return np.where(edge, evening / 0.62, business / 0.72)


class LinkSimulator:
    """Holds the per-link random state (AR processes, regimes) and produces link metrics chunk by chunk."""

    def __init__(self, config: DatagenConfig, topo: Topology, rng: np.random.Generator) -> None:
        self.cfg, self.topo = config, topo
        n, lt = topo.n_links, topo.link_type
        dt = float(config.interval_s)
        self.load_fast = AR1(ar1_phi(np.array(LOAD_TAU_S)[lt], dt), rng)
        self.congestion = AR1(ar1_phi(np.full(n, 3 * 3_600.0), dt), rng)
        self.region_congestion = AR1(ar1_phi(np.full(len(REGIONS), 2 * 3_600.0), dt), rng)
        self.burst = AR1(ar1_phi(np.full(n, 300.0), dt), rng)  # latent Gilbert-Elliott state
        self.payload_drift = AR1(ar1_phi(np.full(n, 12 * 3_600.0), dt), rng)
        self.delta_drift = AR1(ar1_phi(np.full(n, 6 * 3_600.0), dt), rng)
        hours = int(np.ceil(config.n_steps * dt / 3_600)) + 1
        edge = lt == EDGE
        cap_edge = hourly_regimes(rng, n, hours, 0.10, np.array([0.85, 0.10, 0.05]))
        cap_core = hourly_regimes(rng, n, hours, 0.02, np.array([0.97, 0.03]))
        self.capacity_factor = np.where(edge, EDGE_CAPACITY_FACTORS[cap_edge], CORE_CAPACITY_FACTORS[cap_core])
        route = hourly_regimes(rng, n, hours, 0.03, np.array([0.86, 0.10, 0.04]))
        self.route_factor = np.where((lt == WAN) | edge, ROUTE_FACTORS[route], ROUTE_FACTORS[np.minimum(route, 1)])
        self.payload_factor = PAYLOAD_FACTORS[hourly_regimes(rng, n, hours, 0.08, np.array([0.75, 0.15, 0.10]))]
        mode_draw = hourly_regimes(rng, n, hours, 0.05, np.array([1.0, 1.0, 1.0]))
        keep_bias = hourly_regimes(rng, n, hours, 0.05, np.array([0.7, 0.3])) == 0
        self.mode = np.where(keep_bias, topo.mode_bias[None, :], mode_draw)
        self.stream_factor = np.array([1.0, 0.5, 2.0])[hourly_regimes(rng, n, hours, 0.04, np.array([0.8, 0.1, 0.1]))]
        self.diurnal_amp = rng.uniform(0.5, 1.0, n)
        self.weekend = np.where(edge, rng.uniform(1.0, 1.2, n), rng.uniform(0.55, 0.85, n))
        self.delta_bias = rng.normal(0.0, 1.0, n)
        self.amst_share = rng.uniform(0.5, 0.95, n)
        self.burst_gain = np.where(edge, 60.0, 25.0) * rng.lognormal(0.0, 0.5, n)
        # Its own seed, so adding a process there leaves the draws above unchanged.
        self.dynamics = LinkDynamics(config, topo, np.random.default_rng(np.random.SeedSequence([config.seed, 3])))

    def chunk(self, times_s: np.ndarray, fx: Effects, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Link metrics for the intervals starting at times_s; every array is (steps, links)."""
        topo, steps, n = self.topo, times_s.shape[0], self.topo.n_links
        shape = (steps, n)
        lt = topo.link_type
        hour_idx = ((times_s - self.cfg.start_epoch_s) // 3_600).astype(np.int64)
        # The cycles depend only on the region's local time, so compute them per region and gather.
        local = times_s[:, None] + np.array([r[1] * 3_600.0 for r in REGIONS])[None, :]
        weekend = ((np.floor(local / 86_400).astype(np.int64) + 3) % 7) >= 5  # 1970-01-01 was a Thursday
        hour = (local % 86_400) / 3_600
        shapes = np.stack([_profile(hour, np.zeros(1, bool)), _profile(hour, np.ones(1, bool))])
        link_region = topo.node_region[topo.link_src]
        daily = shapes[(lt == EDGE).astype(np.int64), :, link_region].T
        daily = 1.0 - self.diurnal_amp + self.diurnal_amp * daily
        weekly = np.where(weekend[:, link_region], self.weekend, 1.0)
        sigma = np.array(LOAD_SIGMA)[lt]
        region = self.region_congestion.step(rng, steps)[:, topo.node_region[topo.link_src]]
        episode = 0.9 * np.maximum(0.0, self.congestion.step(rng, steps) - 1.3) + 0.7 * np.maximum(0.0, region - 1.5)
        fast = np.exp(sigma * self.load_fast.step(rng, steps) - 0.5 * sigma**2)
        offered_mbps = topo.util_mean * topo.capacity_mbps * daily * weekly * fast * (1.0 + episode)
        capacity = topo.capacity_mbps * self.capacity_factor[hour_idx]
        rho_raw = offered_mbps / capacity
        rho = np.minimum(rho_raw, 0.995)
        # Queue: M^X/M/1 with mean batch burst_pkts, truncated at the buffer; loss when it fills.
        mean_queue = topo.burst_pkts * rho / (1.0 - rho)
        queue = np.minimum(topo.buffer_pkts, mean_queue * lognormal_noise(rng, 0.35, shape))
        queue_ms = queue * PACKET_BITS / (capacity * 1_000.0)
        # Blocking probability of an M/M/1/K queue with the buffer counted in bursts (K' = K / burst).
        k_bursts = topo.buffer_pkts / topo.burst_pkts
        p_buffer = (1.0 - rho) * rho**k_bursts / (1.0 - rho ** (k_bursts + 1.0))
        # Demand above capacity is mostly elastic (senders back off); a tenth of the excess is dropped.
        p_overflow = OVERFLOW_DROP_SHARE * np.maximum(0.0, 1.0 - 1.0 / rho_raw)
        bad = self.burst.step(rng, steps) > 1.6
        p_random = topo.loss_floor * lognormal_noise(rng, 0.5, shape) * (1.0 + self.burst_gain * bad)
        mode = self.mode[hour_idx]
        p_network = 1.0 - (1.0 - p_buffer) * (1.0 - p_overflow) * (1.0 - p_random)
        p_network = np.where(mode == 2, 0.6 * p_network, p_network)  # resilient mode: FEC hides some loss
        p_loss = np.clip(1.0 - (1.0 - p_network) * (1.0 - np.minimum(fx.loss_add, 1.0)), 0.0, 1.0)
        true_rtt = topo.prop_rtt_ms * self.route_factor[hour_idx] * fx.rtt_mult + queue_ms + fx.rtt_add_ms + 0.02
        spikes = (rng.random(shape) < np.where(lt == EDGE, 0.02, 0.002)) * rng.exponential(
            np.where(lt == EDGE, 40.0, 2.0), shape
        )
        rtt = true_rtt * lognormal_noise(rng, np.array(RTT_NOISE_SIGMA)[lt], shape) + spikes
        streams = np.maximum(
            1, np.round(topo.base_streams * self.stream_factor[hour_idx] * np.where(mode == 1, 1.5, 1.0))
        )
        per_stream = MSS_BITS / 1_000.0 * MATHIS_C[topo.transport] / (true_rtt * np.sqrt(np.maximum(p_loss, 1e-8)))
        # Fading, handovers, satellite slots and cross flows scale what the link can give DWCP right now.
        usable = capacity * self.dynamics.capacity_share(times_s, rng)
        available = np.maximum(usable - (1.0 - topo.dwcp_share) * offered_mbps, 0.05 * usable)
        demand = topo.dwcp_share * offered_mbps * np.where(mode == 2, 0.9, 1.0)
        node_up = 1.0 - fx.down_frac[:, topo.link_src]
        goodput_bound = soft_min(demand, available, streams * per_stream)
        target = goodput_bound * fx.tput_mult * node_up * self.dynamics.demand_share(times_s)
        throughput = self.dynamics.ramp(target, true_rtt) * lognormal_noise(rng, 0.03, shape)
        return {
            "offered_mbps": offered_mbps,
            "capacity_mbps": capacity,
            "rho": rho,
            "queue_pkts": queue,
            "queue_ms": queue_ms,
            "p_loss": p_loss,
            "burst_bad": bad,
            "true_rtt_ms": true_rtt,
            "rtt_ms": rtt,
            "streams": streams,
            "per_stream_mbps": per_stream,
            "available_mbps": available,
            "throughput_mbps": throughput,
            "mode": mode,
            "hour_idx": hour_idx,
            "jitter_base_ms": np.array(BASE_JITTER_MS)[lt] * lognormal_noise(rng, 0.3, shape),
        }
