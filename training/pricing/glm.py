"""A Poisson regression with one fixed effect per series and one partially pooled slope
per series, fitted by Newton's method: the estimator behind the panel elasticities.

    log E[units] = alpha_series + X beta + z * u_series,    u_series ~ N(0, tau^2)

The fixed effects are profiled out (for given slopes, each series' alpha makes its fitted
units sum to its actual units, in closed form), so thousands of series cost nothing. The
series slopes `u` are a ridge penalty `dispersion / tau^2` (the random-effect prior on the
quasi-likelihood's scale); each one touches only its own series, so the Newton system is
solved through its small dense block (a Schur complement) instead of a matrix the size of
the series. The Poisson form is a quasi-likelihood: the mean is right for any count
dispersion, and the covariance is scaled by the Pearson dispersion, which weekly sales in
the thousands put far above 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ITERATIONS = 100
TOLERANCE = 1e-7


@dataclass(frozen=True)
class Panel:
    """The data of one fit: regressors, units, the series of each row, the slope regressor."""

    x: np.ndarray  # n x k shared regressors
    y: np.ndarray  # n units
    series: np.ndarray  # n series index (0 .. n_series-1)
    n_series: int
    z: np.ndarray | None = None  # n values of the per-series slope's regressor
    offset: np.ndarray | None = None  # n known terms of the log mean (log exposure, a fixed slope)

    @property
    def k(self) -> int:
        return self.x.shape[1]


@dataclass
class GlmFit:
    beta: np.ndarray
    u: np.ndarray  # per-series slope deviations (zeros without z)
    alpha: np.ndarray  # per-series log level
    covariance: np.ndarray  # of beta, dispersion-scaled
    u_variance: np.ndarray  # posterior variance of each u, dispersion-scaled
    dispersion: float
    iterations: int

    def linear(self, x: np.ndarray, series: np.ndarray, z: np.ndarray | None) -> np.ndarray:
        eta = x @ self.beta + self.alpha[series]
        return eta if z is None else eta + z * self.u[series]


def _group_sum(panel: Panel, values: np.ndarray) -> np.ndarray:
    return np.bincount(panel.series, weights=values, minlength=panel.n_series)


def _alpha(panel: Panel, eta: np.ndarray, total: np.ndarray) -> np.ndarray:
    """The series levels that make each series' fitted units sum to its actual units."""
    top = np.full(panel.n_series, -np.inf)
    np.maximum.at(top, panel.series, eta)
    top = np.where(np.isfinite(top), top, 0.0)
    mass = _group_sum(panel, np.exp(eta - top[panel.series]))
    with np.errstate(divide="ignore"):
        return np.where(total > 0, np.log(np.maximum(total, 1e-300) / mass), -30.0) - top


def _eta(panel: Panel, beta: np.ndarray, u: np.ndarray) -> np.ndarray:
    eta = panel.x @ beta if panel.offset is None else panel.x @ beta + panel.offset
    return eta if panel.z is None else eta + panel.z * u[panel.series]


def _objective(panel: Panel, beta: np.ndarray, u: np.ndarray, total: np.ndarray, penalty: float) -> float:
    eta = _eta(panel, beta, u)
    alpha = _alpha(panel, eta, total)
    return float(np.sum(panel.y * (eta + alpha[panel.series])) - 0.5 * penalty * np.sum(u**2))


@dataclass
class _System:
    """The Newton system of one step: the dense block, the series block and their coupling."""

    dense: np.ndarray  # k x k
    coupling: np.ndarray  # k x n_series
    diagonal: np.ndarray  # n_series
    gradient_beta: np.ndarray
    gradient_u: np.ndarray


def _system(panel: Panel, mu: np.ndarray, beta: np.ndarray, u: np.ndarray, penalty: float) -> _System:
    """Gradient and Hessian of the profiled quasi-likelihood: regressors centred within
    each series (weighted by the fitted mean), which is what profiling the levels does."""
    weight = _group_sum(panel, mu)
    safe = np.maximum(weight, 1e-300)
    means = np.stack([_group_sum(panel, mu * column) for column in panel.x.T], axis=1) / safe[:, None]
    centred = panel.x - means[panel.series]
    residual = panel.y - mu
    dense = centred.T @ (centred * mu[:, None])
    if panel.z is None:
        empty = np.zeros(panel.n_series)
        return _System(dense, np.zeros((panel.k, panel.n_series)), empty + 1.0, centred.T @ residual, empty)
    z_centred = panel.z - (_group_sum(panel, mu * panel.z) / safe)[panel.series]
    coupling = np.stack([_group_sum(panel, mu * column * z_centred) for column in centred.T])
    diagonal = _group_sum(panel, mu * z_centred**2) + penalty
    gradient_u = _group_sum(panel, panel.z * residual) - penalty * u
    return _System(dense, coupling, diagonal, centred.T @ residual, gradient_u)


def _solve(system: _System) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton step for (beta, u) and the inverse of the Schur complement (beta's block)."""
    scaled = system.coupling / system.diagonal[None, :]
    schur = system.dense - scaled @ system.coupling.T
    schur_inverse = np.linalg.pinv(schur + np.eye(len(schur)) * 1e-10)
    step_beta = schur_inverse @ (system.gradient_beta - scaled @ system.gradient_u)
    step_u = (system.gradient_u - system.coupling.T @ step_beta) / system.diagonal
    return step_beta, step_u, schur_inverse


def fit_panel_poisson(
    panel: Panel, penalty: float = 0.0, start: tuple[np.ndarray, np.ndarray] | None = None
) -> GlmFit:
    """Maximize the penalized quasi-likelihood; `penalty` is the ridge on the series slopes."""
    beta = np.zeros(panel.k) if start is None else start[0].copy()
    u = np.zeros(panel.n_series) if start is None else start[1].copy()
    total = _group_sum(panel, panel.y)
    iterations = 0
    while iterations < MAX_ITERATIONS:
        iterations += 1
        eta = _eta(panel, beta, u)
        mu = np.exp(eta + _alpha(panel, eta, total)[panel.series])
        step_beta, step_u, _ = _solve(_system(panel, mu, beta, u, penalty))
        size = _line_search(panel, beta, u, step_beta, step_u, total, penalty)
        beta, u = beta + size * step_beta, u + size * step_u
        if size * max(np.abs(step_beta).max(initial=0), np.abs(step_u).max(initial=0)) < TOLERANCE:
            break
    return _finish(panel, beta, u, total, penalty, iterations)


def _line_search(
    panel: Panel,
    beta: np.ndarray,
    u: np.ndarray,
    step_beta: np.ndarray,
    step_u: np.ndarray,
    total: np.ndarray,
    penalty: float,
) -> float:
    """The largest step of 1, 1/2, 1/4 ... that does not lower the objective."""
    base = _objective(panel, beta, u, total, penalty)
    size = 1.0
    while size > 1e-6:
        value = _objective(panel, beta + size * step_beta, u + size * step_u, total, penalty)
        if np.isfinite(value) and value >= base - 1e-9 * abs(base):
            return size
        size /= 2
    return 0.0


def _finish(
    panel: Panel, beta: np.ndarray, u: np.ndarray, total: np.ndarray, penalty: float, iterations: int
) -> GlmFit:
    eta = _eta(panel, beta, u)
    alpha = _alpha(panel, eta, total)
    mu = np.exp(eta + alpha[panel.series])
    system = _system(panel, mu, beta, u, penalty)
    _, _, schur_inverse = _solve(system)
    parameters = panel.k + panel.n_series + (0 if panel.z is None else panel.n_series)
    degrees = max(len(panel.y) - parameters, 1)
    dispersion = max(1e-12, float(np.sum((panel.y - mu) ** 2 / np.maximum(mu, 1e-12)) / degrees))
    scaled = system.coupling / system.diagonal[None, :]
    # the u block of the inverse Hessian: D^-1 + D^-1 B' S^-1 B D^-1 (its diagonal)
    u_variance = 1 / system.diagonal + np.einsum("ks,kl,ls->s", scaled, schur_inverse, scaled)
    if panel.z is None:
        u_variance = np.zeros(panel.n_series)
    return GlmFit(beta, u, alpha, schur_inverse * dispersion, u_variance * dispersion, dispersion, iterations)
