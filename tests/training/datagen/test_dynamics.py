"""The sub-interval link dynamics: exact interval means, and each process showing its signature."""

from __future__ import annotations

import numpy as np
import pytest

from training.datagen.config import DatagenConfig
from training.datagen.dynamics import (
    LEO,
    LEO_SLOT_S,
    RADIO,
    LinkDynamics,
    Timeline,
    cross_flow_timeline,
    leo_timeline,
    on_off_timeline,
    radio_timeline,
)
from training.datagen.topology import build_topology


def test_timeline_mean_is_the_exact_interval_average() -> None:
    line = Timeline(np.array([0.0, 1.0, 3.0, 10.0]), np.array([2.0, 0.0, 5.0, 5.0]))
    starts = np.array([0.0, 0.5, 2.0, 3.0])
    assert line.mean(starts, 2.0) == pytest.approx([1.0, 0.5, 2.5, 5.0])


def test_radio_links_stall_during_handovers_and_change_level_after_them() -> None:
    line = radio_timeline(np.random.default_rng(1), 0.0, 3_600.0)
    per_second = line.mean(np.arange(3_600.0), 1.0)
    assert (per_second == 0.0).any(), "some whole second falls inside a handover interruption"
    levels = line.values[::2]
    assert levels.std() > 0.2, "each cell gives another capacity share"


def test_leo_share_changes_only_at_slot_boundaries_or_obstructions() -> None:
    line = leo_timeline(np.random.default_rng(2), 0.0, 600.0)
    inside_slot = np.arange(1.0, 600.0, LEO_SLOT_S)
    same_slot = line.mean(inside_slot, 1.0), line.mean(inside_slot + 10.0, 1.0)
    unobstructed = (same_slot[0] > 0) & (same_slot[1] > 0)
    assert np.allclose(same_slot[0][unobstructed], same_slot[1][unobstructed])
    assert len(np.unique(np.round(same_slot[0][unobstructed], 9))) > 10


def test_on_off_holding_times_are_heavy_tailed() -> None:
    line = on_off_timeline(np.random.default_rng(3), 0.0, 30 * 86_400.0)
    on = np.diff(line.breaks)[::2]
    assert np.max(on) > 8 * np.median(on), "a Pareto tail: the longest ON period dwarfs the median"


def test_cross_flow_count_is_never_negative_and_varies() -> None:
    line = cross_flow_timeline(np.random.default_rng(4), 0.0, 86_400.0)
    assert line.values.min() >= 0 and line.values.max() >= 2


def test_ramp_climbs_linearly_after_a_jump_and_follows_drops_at_once() -> None:
    config = DatagenConfig(nodes=6, hours=1.0, interval_s=1)
    topo = build_topology(config, np.random.default_rng(0))
    dynamics = LinkDynamics(config, topo, np.random.default_rng(0))
    steps, links = 50, topo.n_links
    target = np.full((steps, links), 100.0)
    target[10:] = 1e6  # a jump far beyond what one interval of additive increase reaches
    target[40:] = 50.0
    rtt = np.full((steps, links), 100.0)
    rate = dynamics.ramp(target, rtt)
    climb = np.diff(rate[11:40], axis=0)
    assert np.allclose(climb, climb[0]) and (climb > 0).all(), "a linear ramp, slope per link"
    assert np.allclose(rate[40:], 50.0), "a drop is followed within the interval"


def test_edge_links_get_radio_and_satellite_media() -> None:
    config = DatagenConfig(nodes=60, hours=1.0)
    topo = build_topology(config, np.random.default_rng(0))
    dynamics = LinkDynamics(config, topo, np.random.default_rng(0))
    assert {RADIO, LEO} <= set(dynamics.medium.tolist())
