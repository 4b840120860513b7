"""How sure is a ranking of generalization measures? Bootstrap confidence intervals of Kendall's τ
and the granulated Ψ (Jiang et al. 2020, §3), of the differences between measures, and the noise
ceiling that no measure can beat.

Resampling unit. The models of one hyperparameter setting (its seeds) share everything but the
seed, so they are not independent draws: τ's interval resamples **settings** (clusters) with all
their seeds — the cluster bootstrap (Davison & Hinkley 1997, §3.8) — so that adding seeds of the
same settings does not shrink the interval as if they were new settings. Ψ is a mean, over axes,
of the mean τ of the groups of models that differ in one axis only; its interval resamples the
groups within each axis (a stratified bootstrap of those means). Intervals are percentile
intervals of ``num_resamples`` resamples drawn once and shared by every measure, so the
difference of two measures is resampled jointly (paired), as it must be.

Noise ceiling. The gap itself is estimated: on ``n`` test examples its binomial noise is
``sqrt(e (1 − e) / n)``, and the seed moves it too. :func:`split_half_tau` is τ between the gaps
measured on two disjoint halves of the test set (a measure that equals the true gap would reach
about this against a gap measured on half the data, and more against the full set: a lower bound
on the ceiling); :func:`replicate_tau` is τ between the gaps of two seeds of the same settings — how
far the gap is a function of the hyperparameters at all, the ceiling for any measure computed from
them.

Host-side numpy (the statistics of a finished grid); the resampling uses numpy's Generator with
an explicit seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from dl_course.measures.generalization.correlation import Hparams, kendall_tau_unchecked, one_axis_groups, varied_axes


def _tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """τ-b as :func:`dl_course.measures.generalization.correlation.kendall_tau` (0 where undefined), O(n log n)."""
    t = stats.kendalltau(x, y).statistic
    return 0.0 if not np.isfinite(t) else float(t)


def _interval(samples: np.ndarray, confidence: float) -> list[float]:
    alpha = (1.0 - confidence) / 2.0
    return [float(v) for v in np.quantile(samples, [alpha, 1.0 - alpha])]


def cluster_resamples(clusters: Sequence, num_resamples: int, seed: int = 0) -> list[np.ndarray]:
    """``num_resamples`` model-index arrays, each the models of ``len(unique clusters)`` clusters
    drawn with replacement (a cluster drawn twice contributes its models twice)."""
    labels = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    members = [[] for _ in labels]
    for idx, c in enumerate(clusters):
        members[labels[c]].append(idx)
    members = [np.asarray(m) for m in members]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(members), size=(num_resamples, len(members)))
    return [np.concatenate([members[j] for j in row]) for row in draws]


def bootstrap_tau(
    measures: Mapping[str, np.ndarray], gap: np.ndarray, clusters: Sequence, *, num_resamples: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Percentile ``confidence`` intervals of Kendall's τ-b between each measure and the gap,
    resampling ``clusters`` (one label per model, e.g. its hyperparameter setting without the seed).
    Returns ``({name: [low, high]}, {name: the resampled τ, [num_resamples]})``."""
    gap = np.asarray(gap, np.float64)
    draws = cluster_resamples(clusters, num_resamples, seed)
    samples = {name: np.asarray([_tau_b(np.asarray(m, np.float64)[idx], gap[idx]) for idx in draws])
               for name, m in measures.items()}
    return {name: _interval(v, confidence) for name, v in samples.items()}, samples


def bootstrap_psi(
    measures: Mapping[str, np.ndarray], gap: np.ndarray, hparams: Hparams, axes: Sequence[str] | None = None,
    *, num_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Percentile intervals of the granulated Ψ (Jiang et al. §3.1: the mean over axes of the mean
    τ within groups that differ in that axis only), resampling the groups of each axis with
    replacement (the same draws for every measure). Returns ``({name: [low, high]}, {name: the
    resampled Ψ})``."""
    gap = np.asarray(gap, np.float64)
    rng = np.random.default_rng(seed)
    groups = {a: one_axis_groups(hparams, a) for a in varied_axes(hparams, axes)}
    groups = {a: g for a, g in groups.items() if g}
    draws = {a: rng.integers(0, len(g), size=(num_resamples, len(g))) for a, g in groups.items()}
    samples = {}
    for name, m in measures.items():
        m = np.asarray(m, np.float64)
        per_axis = [np.asarray([kendall_tau_unchecked(m[g], gap[g], "b") for g in gs])[draws[a]].mean(axis=1)
                    for a, gs in groups.items()]
        samples[name] = np.mean(per_axis, axis=0)
    return {name: _interval(v, confidence) for name, v in samples.items()}, samples


def paired_differences(
    samples: Mapping[str, np.ndarray], estimates: Mapping[str, float], names: Sequence[str],
    confidence: float = 0.95,
) -> dict[str, dict]:
    """For every pair ``a, b`` of ``names`` (in order): ``estimate`` = estimates[a] − estimates[b],
    its percentile interval from the jointly resampled ``samples`` and ``distinguishable`` (the
    interval excludes 0). Keys ``"a - b"``."""
    out = {}
    for a, b in itertools.combinations(names, 2):
        ci = _interval(np.asarray(samples[a]) - np.asarray(samples[b]), confidence)
        out[f"{a} - {b}"] = {"estimate": float(estimates[a] - estimates[b]), "ci": ci,
                             "distinguishable": bool(ci[0] > 0 or ci[1] < 0)}
    return out


def split_half_tau(gap_half_a: np.ndarray, gap_half_b: np.ndarray) -> float:
    """τ-b between the gaps of the same models measured on two disjoint halves of the test set."""
    return _tau_b(np.asarray(gap_half_a, np.float64), np.asarray(gap_half_b, np.float64))


def replicate_tau(gap: np.ndarray, hparams: Hparams, seed_key: str) -> dict:
    """τ-b between the gaps of two seeds over the settings both have, for every pair of seeds;
    ``{"mean": mean over seed pairs, "by_pair": {"s-s'": τ}, "settings": settings per pair}``."""
    gap = np.asarray(gap, np.float64)
    by_seed: dict = {}
    for i, h in enumerate(hparams):
        setting = tuple((k, h[k]) for k in sorted(h) if k != seed_key)
        by_seed.setdefault(h[seed_key], {})[setting] = gap[i]
    taus, counts = {}, {}
    for s, t in itertools.combinations(sorted(by_seed), 2):
        common = sorted(set(by_seed[s]) & set(by_seed[t]))
        if len(common) < 2:
            continue
        taus[f"{s}-{t}"] = _tau_b(np.asarray([by_seed[s][c] for c in common]),
                                  np.asarray([by_seed[t][c] for c in common]))
        counts[f"{s}-{t}"] = len(common)
    return {"mean": float(np.mean(list(taus.values()))) if taus else float("nan"), "by_pair": taus,
            "settings": counts}


def spearman_with_ci(x, y, confidence: float = 0.95, seed: int = 0, num_resamples: int = 2000) -> dict:
    """Spearman's ρ between ``x`` and ``y`` over their finite pairs, with a percentile bootstrap CI
    resampling the pairs (runs); resamples where ρ is undefined (a constant resample) are left out
    and counted (``undefined_resamples``). Fewer than 4 pairs give nan.
    ``{"estimate", "ci": [low, high], "num_runs", "undefined_resamples"}``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 4:
        return {"estimate": float("nan"), "ci": [float("nan")] * 2, "num_runs": int(x.size), "undefined_resamples": 0}
    idx = np.random.default_rng(seed).integers(0, x.size, size=(num_resamples, x.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.asarray([stats.spearmanr(x[i], y[i]).statistic if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0
                          else np.nan for i in idx])
    defined = rho[np.isfinite(rho)]
    return {"estimate": float(stats.spearmanr(x, y).statistic), "ci": _interval(defined, confidence),
            "num_runs": int(x.size), "undefined_resamples": int(rho.size - defined.size)}
