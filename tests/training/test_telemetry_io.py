"""label_rows_with_incidents joins by node and time window, never by exact timestamp."""

from __future__ import annotations

import pandas as pd

from training.telemetry_io import infer_interval_s, label_rows_with_incidents

T0 = 1_767_571_200  # 2026-01-05T00:00:00Z


def _rows() -> pd.DataFrame:
    epochs = [T0 + 60 * k for k in range(6)]
    return pd.DataFrame({"node_id": ["a"] * 6 + ["b"] * 6, "peer_id": ["x"] * 6 + ["y"] * 6, "epoch_time": epochs * 2})


def test_window_join_by_node_and_overlap() -> None:
    rows = _rows()
    # 00:01:30-00:02:10 overlaps the intervals starting 00:01:00 and 00:02:00 of node a only.
    incidents = [
        {
            "incident_id": "i1",
            "node_id": "a",
            "incident_type": "degradation",
            "severity": "low",
            "start": "2026-01-05T00:01:30Z",
            "end": "2026-01-05T00:02:10Z",
        }
    ]
    labels = label_rows_with_incidents(rows, incidents)
    assert labels["incident"].tolist() == [False, True, True, False, False, False] + [False] * 6
    assert labels.loc[1, "incident_type"] == "degradation" and pd.isna(labels.loc[0, "incident_type"])
    assert labels.index.equals(rows.index)


def test_most_severe_incident_wins() -> None:
    incidents = [
        {
            "incident_id": "low",
            "node_id": "b",
            "incident_type": "link_flap",
            "severity": "low",
            "start": "2026-01-05T00:00:00Z",
            "end": "2026-01-05T00:05:00Z",
        },
        {
            "incident_id": "high",
            "node_id": "b",
            "incident_type": "node_crash",
            "severity": "high",
            "start": "2026-01-05T00:02:00Z",
            "end": "2026-01-05T00:03:00Z",
        },
    ]
    labels = label_rows_with_incidents(_rows(), incidents)
    assert labels["incident_id"].fillna("-").tolist()[6:] == ["low", "low", "high", "low", "low", "-"]


def test_no_incidents_and_interval() -> None:
    rows = _rows()
    assert not label_rows_with_incidents(rows, []).incident.any()
    assert infer_interval_s(rows) == 60.0
