"""Stochastic building blocks: AR(1)/Ornstein-Uhlenbeck noise carried across chunks, regimes, soft minimum."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def ar1_phi(tau_s: np.ndarray | float, interval_s: float) -> np.ndarray:
    """Lag-one coefficient of an OU process with time constant tau_s sampled every interval_s."""
    return np.asarray(np.exp(-interval_s / np.asarray(tau_s, dtype=np.float64)))


class AR1:
    """Unit-variance AR(1) processes, one per column, whose state carries from one chunk to the next.

    x[t] = phi * x[t-1] + sqrt(1 - phi^2) * e[t], e ~ N(0, 1): the exact discretisation of an OU process.
    Columns with the same phi are filtered together with scipy's lfilter (C speed, no Python loop over time).
    """

    def __init__(self, phi: np.ndarray, rng: np.random.Generator) -> None:
        self.phi = np.round(np.asarray(phi, dtype=np.float64), 6)
        self.state: np.ndarray = np.asarray(rng.standard_normal(self.phi.shape[0]))  # stationary start

    def step(self, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        """Next n_steps values, shape (n_steps, columns)."""
        shocks = rng.standard_normal((n_steps, self.phi.shape[0]))
        out: np.ndarray = np.empty_like(shocks)
        for phi in np.unique(self.phi):
            cols = np.flatnonzero(self.phi == phi)
            scale = np.sqrt(1.0 - phi * phi)
            zi = (phi * self.state[cols])[None, :]
            y, _ = lfilter([scale], [1.0, -phi], shocks[:, cols], axis=0, zi=zi)
            out[:, cols] = y
        self.state = out[-1].copy()
        return out


def hourly_regimes(
    rng: np.random.Generator, n_series: int, n_hours: int, switch_prob: float, weights: np.ndarray
) -> np.ndarray:
    """Piecewise-constant regime index per series and hour, shape (n_hours, n_series).

    Each hour a series switches with probability switch_prob to a regime drawn from weights
    (a semi-Markov chain with geometric holding times).
    """
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    draws = rng.choice(len(weights), size=(n_hours, n_series), p=weights)
    switch = rng.random((n_hours, n_series)) < switch_prob
    switch[0] = True
    # Index of the last switch at or before each hour, then carry that hour's draw forward.
    hours = np.arange(n_hours)[:, None]
    last = np.maximum.accumulate(np.where(switch, hours, 0), axis=0)
    return np.asarray(np.take_along_axis(draws, last, axis=0))


def soft_min(*bounds: np.ndarray, sharpness: float = 8.0) -> np.ndarray:
    """Smooth minimum of positive arrays: (sum b^-k)^(-1/k); near the binding bound, never exactly on it."""
    total = np.zeros(np.broadcast(*bounds).shape)
    for bound in bounds:
        total += np.maximum(bound, 1e-9) ** -sharpness
    return np.asarray(total ** (-1.0 / sharpness))


def lognormal_noise(rng: np.random.Generator, sigma: np.ndarray | float, shape: tuple[int, ...]) -> np.ndarray:
    """Mean-one multiplicative noise exp(sigma*z - sigma^2/2)."""
    # float32 draws are about twice as fast; the noise does not need double precision.
    sigma32 = np.asarray(sigma, dtype=np.float32)
    return np.asarray(
        np.exp(sigma32 * rng.standard_normal(shape, dtype=np.float32) - 0.5 * sigma32 * sigma32), dtype=np.float64
    )
