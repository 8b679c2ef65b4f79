"""Sub-interval link dynamics: radio fading and handovers, LEO reconfiguration, ON/OFF traffic, cross flows.

The load model of network.py varies smoothly around a daily cycle, so on its own it teaches a predictor
that throughput reverts to a mean. Real access and WAN links also jump, stall and ramp. Each process
here is simulated in continuous time (event timelines drawn once per link for the whole time range) and
integrated exactly over every sample interval, so the same link behaves consistently at 1 s or 120 s
samples. References per process are in docs/network-model.md ("Link dynamics").
"""

from __future__ import annotations

import numpy as np

from training.datagen.config import DatagenConfig
from training.datagen.processes import AR1, ar1_phi
from training.datagen.topology import EDGE, WAN, Topology

ACCESS_MEDIA = ("wired", "radio", "leo")  # access medium of a link's last mile (only edge links vary)
EDGE_MEDIA_WEIGHTS = np.array([0.4, 0.4, 0.2])
WIRED, RADIO, LEO = 0, 1, 2
# Radio: lognormal shadowing (sigma in natural-log units, decorrelation time tau) and handovers.
SHADOW_SIGMA = 0.6
SHADOW_TAU_S = (5.0, 60.0)  # uniform range: driving to pedestrian mobility
HANDOVER_GAP_S = (20.0, 180.0)  # mean time between handovers, uniform range per link
HANDOVER_OUTAGE_S = (0.4, 0.8, 8.0)  # lognormal median, sigma, cap of the interruption
CELL_SIGMA = 0.5  # lognormal spread of the capacity share in the next cell
# LEO satellite: the constellation reassigns a terminal's satellite every 15 s; obstructions cut it.
LEO_SLOT_S = 15.0
LEO_SLOT_SIGMA = 0.35
LEO_OUTAGE_GAP_S = (120.0, 1_200.0)
LEO_OUTAGE_S = (1.0, 10.0)
# ON/OFF application-limited traffic (Pareto holding times: heavy-tailed, self-similar in aggregate).
APP_LIMITED_SHARE = np.array([0.15, 0.15, 0.15, 0.35])  # per link type: links whose demand is bursty
ON_MEAN_S, OFF_MEAN_S = (10.0, 300.0), (5.0, 200.0)
ON_SHAPE, OFF_SHAPE = 1.5, 1.3
OFF_TRICKLE = 0.02  # share of the rate a link still carries while its application is idle
PARETO_CAP = 20.0  # holding times are capped at this many means
# Heavy-tailed cross traffic: elephant flows arrive (Poisson) and share the bottleneck while they last.
CROSS_GAP_S = (60.0, 900.0)
CROSS_MEAN_S = (20.0, 300.0)
CROSS_SHAPE = 1.3
CROSS_WEIGHT = (0.2, 1.0)  # one cross flow's share of the bottleneck relative to DWCP's streams
# Rate control: after the available rate jumps up, the sender climbs at about streams * MSS / RTT^2.
MSS_BITS = 1_460 * 8
RAMP_GAIN = np.array([1.0, 4.0, 2.0])  # per transport (tcp, udp, quic): how much faster than Reno


class Timeline:
    """A piecewise-constant function of time, with its exact mean over any interval."""

    def __init__(self, breaks: np.ndarray, values: np.ndarray) -> None:
        self.breaks = np.asarray(breaks, dtype=np.float64)  # value k holds on [breaks[k], breaks[k + 1])
        self.values = np.asarray(values, dtype=np.float64)
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.values[:-1] * np.diff(self.breaks))])

    def integral(self, t: np.ndarray) -> np.ndarray:
        """Integral from breaks[0] to t (t before breaks[0] counts from breaks[0])."""
        k = np.clip(np.searchsorted(self.breaks, t, side="right") - 1, 0, len(self.breaks) - 1)
        return self.cumulative[k] + self.values[k] * np.maximum(t - self.breaks[k], 0.0)

    def mean(self, starts: np.ndarray, length_s: float) -> np.ndarray:
        """Mean value over [start, start + length_s) for every start."""
        return (self.integral(starts + length_s) - self.integral(starts)) / length_s


def _pareto(rng: np.random.Generator, mean: float, shape: float, size: int) -> np.ndarray:
    """Pareto holding times with the given mean and tail index, capped at PARETO_CAP means."""
    scale = mean * (shape - 1.0) / shape
    return np.minimum(scale * (1.0 - rng.random(size)) ** (-1.0 / shape), PARETO_CAP * mean)


def _alternating(rng: np.random.Generator, t0: float, t1: float, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Breaks of an alternating renewal process starting 'up' at t0 (durations drawn by the caller)."""
    durations = np.empty(up.size + down.size)
    durations[0::2], durations[1::2] = up, down
    breaks = t0 + np.concatenate([[0.0], np.cumsum(durations)])
    return breaks[: int(np.searchsorted(breaks, t1)) + 1]


def _count_needed(span_s: float, mean_s: float) -> int:
    return int(span_s / mean_s * 1.5) + 16


def radio_timeline(rng: np.random.Generator, t0: float, t1: float) -> Timeline:
    """Capacity share of a radio link: one lognormal share per cell, zero during handover interruptions."""
    gap = rng.uniform(*HANDOVER_GAP_S)
    n = _count_needed(t1 - t0, gap)
    median, sigma, cap = HANDOVER_OUTAGE_S
    outages = np.minimum(median * rng.lognormal(0.0, sigma, n), cap)
    breaks = _alternating(rng, t0, t1, rng.exponential(gap, n), outages)
    cells = np.exp(CELL_SIGMA * rng.standard_normal(breaks.size) - 0.5 * CELL_SIGMA**2)
    values = np.where(np.arange(breaks.size) % 2 == 0, cells, 0.0)
    return Timeline(breaks, values)


def leo_timeline(rng: np.random.Generator, t0: float, t1: float) -> Timeline:
    """Capacity share of a LEO satellite link: a new share every 15 s slot, zero while obstructed."""
    first = np.floor(t0 / LEO_SLOT_S) * LEO_SLOT_S
    slots = np.arange(first, t1 + LEO_SLOT_S, LEO_SLOT_S)
    share = np.exp(LEO_SLOT_SIGMA * rng.standard_normal(slots.size) - 0.5 * LEO_SLOT_SIGMA**2)
    gap = rng.uniform(*LEO_OUTAGE_GAP_S)
    n = _count_needed(t1 - t0, gap)
    outage = _alternating(rng, t0, t1, rng.exponential(gap, n), rng.uniform(*LEO_OUTAGE_S, n))
    breaks = np.union1d(slots, outage)
    in_outage = (np.searchsorted(outage, breaks, side="right") - 1) % 2 == 1
    slot_share = share[np.clip(np.searchsorted(slots, breaks, side="right") - 1, 0, slots.size - 1)]
    return Timeline(breaks, np.where(in_outage, 0.0, slot_share))


def on_off_timeline(rng: np.random.Generator, t0: float, t1: float) -> Timeline:
    """Demand of an application-limited link: full while ON, a trickle while OFF (Pareto holding times)."""
    on_mean, off_mean = rng.uniform(*ON_MEAN_S), rng.uniform(*OFF_MEAN_S)
    n = _count_needed(t1 - t0, min(on_mean, off_mean))
    breaks = _alternating(rng, t0, t1, _pareto(rng, on_mean, ON_SHAPE, n), _pareto(rng, off_mean, OFF_SHAPE, n))
    return Timeline(breaks, np.where(np.arange(breaks.size) % 2 == 0, 1.0, OFF_TRICKLE))


def cross_flow_timeline(rng: np.random.Generator, t0: float, t1: float) -> Timeline:
    """Number of elephant cross flows on a link's bottleneck (an M/G/inf queue with Pareto durations)."""
    gap, mean = rng.uniform(*CROSS_GAP_S), rng.uniform(*CROSS_MEAN_S)
    n = _count_needed(t1 - t0, gap)
    starts = t0 - PARETO_CAP * mean + np.cumsum(rng.exponential(gap, n + int(PARETO_CAP * mean / gap) + 1))
    ends = starts + _pareto(rng, mean, CROSS_SHAPE, starts.size)
    breaks = np.union1d(np.concatenate([[t0], starts[starts > t0], ends[ends > t0]]), [])
    counts = np.searchsorted(np.sort(starts), breaks, side="right") - np.searchsorted(np.sort(ends), breaks, "right")
    return Timeline(breaks, counts.astype(np.float64))


class LinkDynamics:
    """Per-link event timelines and the state that carries across chunks (shadowing, sender rate)."""

    def __init__(self, config: DatagenConfig, topo: Topology, rng: np.random.Generator) -> None:
        self.dt = float(config.interval_s)
        n, lt = topo.n_links, topo.link_type
        t0 = float(config.start_epoch_s)
        t1 = t0 + config.n_steps * self.dt + self.dt
        self.medium = np.where(lt == EDGE, rng.choice(len(ACCESS_MEDIA), n, p=EDGE_MEDIA_WEIGHTS), WIRED)
        self.capacity: dict[int, Timeline] = {}
        for i in np.flatnonzero(self.medium == RADIO):
            self.capacity[int(i)] = radio_timeline(rng, t0, t1)
        for i in np.flatnonzero(self.medium == LEO):
            self.capacity[int(i)] = leo_timeline(rng, t0, t1)
        app_limited = rng.random(n) < APP_LIMITED_SHARE[lt]
        self.demand = {int(i): on_off_timeline(rng, t0, t1) for i in np.flatnonzero(app_limited)}
        crossed = (lt == WAN) | (lt == EDGE)
        self.cross = {int(i): cross_flow_timeline(rng, t0, t1) for i in np.flatnonzero(crossed)}
        self.cross_weight = rng.uniform(*CROSS_WEIGHT, n)
        tau = rng.uniform(*SHADOW_TAU_S, n)
        # The mean of an OU process over an interval of u = dt / tau time constants has variance
        # 2 (u - 1 + exp(-u)) / u^2 of the process's: long samples average the fading out.
        u = self.dt / tau
        self.shadow_sigma = np.where(self.medium == RADIO, SHADOW_SIGMA * np.sqrt(2 * (u - 1 + np.exp(-u)) / u**2), 0.0)
        self.shadow = AR1(ar1_phi(tau, self.dt), rng)
        self.ramp_gain = RAMP_GAIN[topo.transport] * topo.base_streams
        self.rate_mbps: np.ndarray | None = None  # the sender's rate at the end of the previous interval

    def capacity_share(self, times_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(steps, links) multiplier of the available capacity: fading, handovers, satellite slots, cross flows."""
        share = np.ones((times_s.shape[0], self.shadow_sigma.shape[0]))
        for i, timeline in self.capacity.items():
            share[:, i] = timeline.mean(times_s, self.dt)
        sigma = self.shadow_sigma
        share *= np.exp(sigma * self.shadow.step(rng, times_s.shape[0]) - 0.5 * sigma**2)
        for i, timeline in self.cross.items():
            share[:, i] /= 1.0 + self.cross_weight[i] * timeline.mean(times_s, self.dt)
        return share

    def demand_share(self, times_s: np.ndarray) -> np.ndarray:
        """(steps, links) share of the interval an application-limited link has data to send."""
        share = np.ones((times_s.shape[0], self.shadow_sigma.shape[0]))
        for i, timeline in self.demand.items():
            share[:, i] = timeline.mean(times_s, self.dt)
        return share

    def ramp(self, target_mbps: np.ndarray, rtt_ms: np.ndarray) -> np.ndarray:
        """The sender's rate per interval: it drops with the target at once and climbs at most
        ramp_gain * MSS / RTT^2 per second (additive increase), so a jump up becomes a linear ramp."""
        growth_mbps = self.ramp_gain * MSS_BITS / np.maximum(rtt_ms / 1_000.0, 1e-4) ** 2 / 1e6 * self.dt
        out = np.empty_like(target_mbps)
        rate = target_mbps[0] if self.rate_mbps is None else self.rate_mbps
        for t in range(target_mbps.shape[0]):
            rate = np.minimum(target_mbps[t], rate + growth_mbps[t])
            out[t] = rate
        self.rate_mbps = rate
        return out
