"""95% confidence intervals over seeds (or replicates) for every number the studies compare.

The one place the studies get their error bars from. A compared quantity is summarised as
``{"estimate": mean, "ci": [lo, hi], "n": n, "method": ...}`` (what the gallery prints as
``[lo, hi]`` under a ``*_ci`` key).

* ``method="t"`` (default): Student's t interval ``x̄ ± t_{n−1, 0.975} · s / √n`` — exact for
  normal data at every n, and the honest choice for the 3–16 seeds of a course study (a
  percentile bootstrap of 3 values cannot be wider than their range and under-covers badly);
* ``method="bootstrap"``: ``scipy.stats.bootstrap`` (BCa, 9999 resamples, a fixed ``seed``) of the
  mean (Efron & Tibshirani 1993) — for larger samples or skewed quantities.

Comparisons of two methods on the same seeds use the *paired* differences ``a_i − b_i``
(:func:`paired_difference_ci`): the seed-to-seed variation common to both cancels. Unpaired
groups (different seeds) use Welch's interval (:func:`difference_ci`). An effect whose CI
contains 0 is "within noise" (:func:`verdict`).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

METHODS = ("t", "bootstrap")


def _values(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < 2:
        raise ValueError(f"a confidence interval needs >= 2 values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"non-finite values: {x.tolist()}")
    return x


def mean_ci(values, *, confidence: float = 0.95, method: str = "t", n_resamples: int = 9999,
            seed: int = 0) -> dict:
    """The mean of ``values`` (one per seed) with its ``confidence`` interval (module docstring).

    Returns ``{"estimate", "ci": [lo, hi], "n", "method"}`` as Python floats (JSON-ready). With all
    values equal the interval is the point ``[x, x]``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown CI method {method!r}; valid: {', '.join(METHODS)}")
    x = _values(values)
    n, mean = x.size, float(np.mean(x))
    if np.ptp(x) == 0:
        lo = hi = mean
    elif method == "t":
        half = float(scipy.stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(x, ddof=1) / np.sqrt(n))
        lo, hi = mean - half, mean + half
    else:
        res = scipy.stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                                    method="BCa", rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return {"estimate": mean, "ci": [float(lo), float(hi)], "n": int(n), "method": method}


def paired_difference_ci(a, b, **kwargs) -> dict:
    """Mean of the paired differences ``a_i − b_i`` (same seeds, same order) with its CI
    (:func:`mean_ci`; ``kwargs`` go there)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    return mean_ci(a - b, **kwargs)


def difference_ci(a, b, *, confidence: float = 0.95) -> dict:
    """``mean(a) − mean(b)`` of two independent groups with Welch's t interval (unequal variances;
    Welch–Satterthwaite degrees of freedom)."""
    a, b = _values(a), _values(b)
    va, vb = np.var(a, ddof=1) / a.size, np.var(b, ddof=1) / b.size
    est = float(np.mean(a) - np.mean(b))
    if va + vb == 0:
        return {"estimate": est, "ci": [est, est], "n": [int(a.size), int(b.size)], "method": "welch"}
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, dof) * np.sqrt(va + vb))
    return {"estimate": est, "ci": [est - half, est + half], "n": [int(a.size), int(b.size)], "method": "welch"}


def verdict(effect: dict, *, lower: str = "lower", higher: str = "higher") -> str:
    """``lower`` / ``higher`` when the CI of ``effect`` excludes 0 on that side, else ``"within noise"``."""
    lo, hi = effect["ci"]
    return lower if hi < 0 else higher if lo > 0 else "within noise"
