"""Out-of-distribution detection: scores and threshold-free detection metrics.

Convention, stated in every table and figure (``CONVENTION``): OOD examples are the POSITIVE class
and every score is oriented so that HIGHER means MORE LIKELY OOD. Confidence-type scores are
therefore negated (e.g. the max-softmax score is ``−max_k p_k``); AUROC is unaffected by the sign
convention only if it is applied consistently, which is why it lives here and nowhere else.

Scores (``jax.numpy``, per example) take a ``Predictive`` (``[S, N, K]`` per-sample logits):

* ``msp``: ``−max_k p̄_k`` of the model average (Hendrycks & Gimpel 2017);
* ``max_logit``: ``−(1/S) Σ_s max_k f_sk`` (Hendrycks et al. 2022, "Scaling out-of-distribution
  detection for real-world settings");
* ``entropy``: ``H[p̄]``, the predictive entropy of the model average;
* ``mutual_information``: ``H[p̄] − (1/S) Σ_s H[p_s]``, the epistemic part (0 when S = 1);
* ``energy``: ``(1/S) Σ_s −T logsumexp(f_s / T)`` with T = 1 (Liu et al. 2020, "Energy-based
  out-of-distribution detection").

Logit-based scores of an ensemble / posterior are the average of the per-sample scores.

Metrics (numpy, float64, exact tie handling; equal to scikit-learn's): AUROC, AUPR (average
precision with OOD positive, "AUPR-Out"), FPR of in-distribution examples at 95% TPR on OOD.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from dl_course.uncertainty import calibration
from dl_course.uncertainty.predictive import Predictive

POSITIVE_CLASS = "OOD"
CONVENTION = "OOD is the positive class; scores are oriented so that higher = more likely OOD"


def max_softmax_score(predictive: Predictive) -> jax.Array:
    """``−max_k p̄_k(x)``: the negated max softmax probability of the model average (Hendrycks &
    Gimpel 2017, "A baseline for detecting misclassified and out-of-distribution examples")."""
    return -jnp.max(predictive.probs, axis=-1)


def max_logit_score(predictive: Predictive) -> jax.Array:
    """``−(1/S) Σ_s max_k f_k(x; θ_s)``: the negated max logit (Hendrycks et al. 2022)."""
    return -jnp.mean(jnp.max(predictive.sample_logits, axis=-1), axis=0)


def entropy_score(predictive: Predictive) -> jax.Array:
    """``H[p̄(x)] = −Σ_k p̄_k log p̄_k``: predictive entropy of the model average, nats."""
    return calibration.entropy(predictive.probs)


def mutual_information_score(predictive: Predictive) -> jax.Array:
    """``H[p̄] − (1/S) Σ_s H[p_s]``: mutual information between label and parameters (the
    epistemic part; Houlsby et al. 2011, Depeweg et al. 2018). Identically 0 for S = 1."""
    return calibration.mutual_information(predictive.sample_probs)


def energy_score(predictive: Predictive, temperature: float = 1.0) -> jax.Array:
    """Free energy ``E(x) = −T logsumexp_k(f_k(x) / T)``, averaged over samples (Liu et al. 2020).

    In-distribution inputs get lower energy (larger logits), so higher energy = more OOD.
    """
    logits = predictive.sample_logits
    return jnp.mean(-temperature * logsumexp(logits / temperature, axis=-1), axis=0)


SCORES: dict[str, Callable[[Predictive], jax.Array]] = {
    "msp": max_softmax_score,
    "max_logit": max_logit_score,
    "entropy": entropy_score,
    "mutual_information": mutual_information_score,
    "energy": energy_score,
}


def get_score(name: str) -> Callable[[Predictive], jax.Array]:
    """The score function registered under ``name`` (see ``SCORES``)."""
    if name not in SCORES:
        raise ValueError(f"Unknown OOD score {name!r}; valid: {', '.join(SCORES)}")
    return SCORES[name]


def ood_scores(predictive: Predictive, names=None) -> dict[str, jax.Array]:
    """All (or the named) OOD scores of a predictive, each ``[N]``, higher = more OOD."""
    return {name: get_score(name)(predictive) for name in (names or SCORES)}


_ood_scores_jit = jax.jit(ood_scores, static_argnums=1)


def _ranked(scores_in, scores_out):
    """Thresholds at the distinct scores, descending, with cumulative TP (OOD) and FP (in) counts."""
    s_in = np.asarray(scores_in, dtype=np.float64).ravel()
    s_out = np.asarray(scores_out, dtype=np.float64).ravel()
    if s_in.size == 0 or s_out.size == 0:
        raise ValueError("Need at least one in-distribution and one OOD score.")
    if not (np.all(np.isfinite(s_in)) and np.all(np.isfinite(s_out))):
        raise ValueError("OOD scores must be finite.")
    scores = np.concatenate([s_out, s_in])
    is_ood = np.concatenate([np.ones(s_out.size), np.zeros(s_in.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_ood = scores[order], is_ood[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tp = np.cumsum(is_ood)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return tp, fp, s_out.size, s_in.size, scores[last_of_tie]


def roc_curve(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve with OOD positive: ``(fpr, tpr, thresholds)``, starting at (0, 0).

    The point at threshold t is ``tpr = P(s_out ≥ t)``, ``fpr = P(s_in ≥ t)``, t over the distinct
    scores in decreasing order (the first threshold is +inf).
    """
    tp, fp, n_out, n_in, thresholds = _ranked(scores_in, scores_out)
    return np.r_[0.0, fp / n_in], np.r_[0.0, tp / n_out], np.r_[np.inf, thresholds]


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve with OOD positive: ``P(s_out > s_in) + ½ P(s_out = s_in)``.

    Trapezoidal area under ``roc_curve`` (exactly the Mann–Whitney statistic with ties as ½).
    """
    fpr, tpr, _ = roc_curve(scores_in, scores_out)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def aupr(scores_in, scores_out) -> float:
    """Area under the precision–recall curve with OOD positive ("AUPR-Out"), as average precision

        AP = Σ_n (R_n − R_{n−1}) P_n

    over decreasing distinct thresholds (no interpolation; equals scikit-learn's
    ``average_precision_score``). Chance level is the OOD fraction ``n_out / (n_in + n_out)``.
    """
    tp, fp, n_out, _, _ = _ranked(scores_in, scores_out)
    precision = tp / (tp + fp)
    recall = tp / n_out
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """False-positive rate on in-distribution data at the first threshold reaching ``tpr`` on OOD.

    ``FPR@95 = P(s_in ≥ t*)`` with ``t* = max{t : P(s_out ≥ t) ≥ 0.95}`` (Liang et al. 2018; OOD
    positive). Lower is better.
    """
    fpr_curve, tpr_curve, _ = roc_curve(scores_in, scores_out)
    return float(fpr_curve[np.searchsorted(tpr_curve, tpr, side="left")])


def detection_metrics(scores_in, scores_out, tpr: float = 0.95) -> dict[str, float]:
    """``{"auroc", "aupr", "fpr_at_95_tpr"}`` with OOD positive (see ``CONVENTION``)."""
    key = f"fpr_at_{round(100 * tpr)}_tpr"
    return {
        "auroc": auroc(scores_in, scores_out),
        "aupr": aupr(scores_in, scores_out),
        key: fpr_at_tpr(scores_in, scores_out, tpr),
    }


def detection_table(
    predictive_in: Predictive, predictive_out: Predictive, names=None, tpr: float = 0.95
) -> dict[str, dict[str, float]]:
    """``score name -> detection_metrics`` for every score, OOD positive (see ``CONVENTION``)."""
    names = tuple(names or SCORES)
    s_in = _ood_scores_jit(predictive_in, names)
    s_out = _ood_scores_jit(predictive_out, names)
    return {name: detection_metrics(s_in[name], s_out[name], tpr) for name in s_in}


def markdown_table(table: dict[str, dict[str, float]], title: str = "") -> str:
    """A ``detection_table`` as a markdown table whose caption states the positive class."""
    metrics = list(next(iter(table.values())))
    lines = [f"{title + ' — ' if title else ''}{CONVENTION}.", "",
             "| score | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in metrics) + " |")
    return "\n".join(lines)
