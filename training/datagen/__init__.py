"""Synthetic DWCP telemetry: a WAN-like network simulated per link and interval, with labelled incidents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from training.datagen.config import DatagenConfig
from training.datagen.simulate import TelemetrySimulator
from training.datagen.writer import plain_text, write_dataset
from training.schema import NODE_ROLES

__all__ = ["DatagenConfig", "SyntheticTelemetry", "generate", "write_dataset"]


@dataclass
class SyntheticTelemetry:
    """An in-memory dataset: metrics rows (train then test range), incident records and ground truth."""

    metrics: pd.DataFrame
    incidents: list[dict[str, Any]]
    nodes: pd.DataFrame  # node_id, region, datacenter_id, node_role, cluster_id
    quorum_rtt_ms: pd.DataFrame  # index epoch_time, one column per cluster_id (NaN without quorum)


def generate(config: DatagenConfig | None = None, **overrides: Any) -> SyntheticTelemetry:
    """Generate a dataset in memory (for tests and small runs; use write_dataset for large ones).

    Gives the same rows as write_dataset with the same config. Keyword overrides replace config fields,
    e.g. generate(nodes=6, hours=12).
    """
    config = config or DatagenConfig()
    if overrides:
        config = DatagenConfig(**{**config.to_dict(), **overrides})
    sim = TelemetrySimulator(config)
    tables, truth_times, truth = [], [], []
    for _, table in sim.iter_tables():
        tables.append(table)
        assert sim.last_truth is not None
        truth_times.append(sim.last_truth.times_s)
        truth.append(sim.last_truth.quorum_rtt_ms)
    metrics = plain_text(pa.concat_tables(tables)).to_pandas()
    topo = sim.topo
    nodes = pd.DataFrame(
        {
            "node_id": topo.node_ids,
            "region": [az[:-1] for az in topo.node_az],
            "datacenter_id": topo.node_dc,
            "node_role": [NODE_ROLES[r] for r in topo.node_role],
            "cluster_id": topo.node_cluster,
        }
    )
    quorum = pd.DataFrame(np.vstack(truth), index=pd.Index(np.concatenate(truth_times), name="epoch_time"))
    return SyntheticTelemetry(
        metrics=metrics,
        incidents=[inc.record(topo.node_ids) for inc in sim.incidents],
        nodes=nodes,
        quorum_rtt_ms=quorum,
    )
