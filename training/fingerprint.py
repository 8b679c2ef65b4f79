"""What a model was trained on: a canonical fingerprint and the time span of the training rows."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd


def data_fingerprint(data: pd.DataFrame | np.ndarray) -> str:
    """sha256 over a canonical serialisation: column names, dtypes and values in row order."""
    digest = hashlib.sha256()
    if isinstance(data, pd.DataFrame):
        for name in data.columns:
            values = data[name].to_numpy()
            digest.update(f"{name}:{values.dtype}:{len(values)}\n".encode())
            if values.dtype == object:
                digest.update("\x1f".join(map(str, values)).encode())
            else:
                digest.update(np.ascontiguousarray(values).tobytes())
    else:
        array = np.ascontiguousarray(data)
        digest.update(f"{array.dtype.str}:{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def training_data_summary(frame: pd.DataFrame, time_column: str = "timestamp") -> dict[str, Any]:
    """The manifest's `training_data`: fingerprint, rows and the UTC time span of the rows."""
    times = pd.to_datetime(frame[time_column], utc=True)
    return {
        "fingerprint": data_fingerprint(frame),
        "rows": len(frame),
        "start_utc": times.min().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_utc": times.max().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
