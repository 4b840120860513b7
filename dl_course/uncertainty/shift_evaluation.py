"""Metrics of predictives on a clean test set and its shifted versions, in one compiled call
(Ovadia et al. 2019, "Can you trust your model's uncertainty?"), and reliability diagrams pooled
over members and segments (Guo et al. 2017).

The G = 1 + C·L test *segments* are the clean test set, then levels 1..L of each of the C
corruptions of a ``ShiftedSets`` (:func:`stack_shifted_inputs`); a predictive evaluated on the
stacked inputs is cut back into segments here. Metrics (accuracy, NLL, ECE, Brier) are those of
``dl_course.uncertainty.calibration`` on the model average ``p(y|x) = (1/S) Σ_s softmax(z_s)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.data.shifted_sets import ShiftedSets
from dl_course.uncertainty import calibration
from dl_course.uncertainty.predictive import Predictive

METRICS = ("accuracy", "nll", "ece", "brier")


def stack_shifted_inputs(sets: ShiftedSets) -> np.ndarray:
    """Clean test set, then levels 1..L of each corruption: ``[(1 + C·L)·n, *input_shape]``."""
    return np.concatenate([next(iter(sets.x.values()))[0]] + [v[lv] for v in sets.x.values()
                                                              for lv in range(1, sets.num_levels + 1)])


def by_corruption(values: np.ndarray, sets: ShiftedSets) -> dict:
    """``[M, 1 + C·L]`` over the segments of ``stack_shifted_inputs`` -> corruption -> ``[M, L + 1]``
    (level 0, the clean test set, repeated in every corruption)."""
    num = sets.num_levels
    return {c: values[:, [0] + [1 + ci * num + lv for lv in range(num)]] for ci, c in enumerate(sets.x)}


@jax.jit
def _model_average_log_probs(logits):
    """``[M, S, N, K]`` per-sample logits -> ``[M, N, K]`` log of each member's model average."""
    return jax.vmap(lambda lg: Predictive(lg).log_probs)(logits)


@jax.jit
def _segment_metrics(log_probs, labels):
    """``log_probs [M, G, n, K]`` of the model average on G test segments -> metric -> ``[M, G]``,
    and the reliability-diagram statistics of every (member, segment)."""
    def one(lp):
        p = jnp.exp(lp)
        return ({"accuracy": calibration.accuracy(p, labels), "nll": calibration.nll(lp, labels),
                 "ece": calibration.expected_calibration_error(p, labels),
                 "brier": calibration.brier_score(p, labels)},
                calibration.reliability_diagram(p, labels))
    return jax.vmap(jax.vmap(one))(log_probs)


def shift_metrics(preds: dict, sets: ShiftedSets) -> tuple[dict, dict, dict]:
    """``preds``: method -> ``Predictive`` on ``stack_shifted_inputs(sets)``. Returns
    ``metrics[method][metric] -> [M, G]``, ``diagrams[method]`` (reliability-diagram statistics,
    leaves ``[M, G, bins]``) and ``probs[method] -> [M, n, K]`` (model average on the clean test
    set). All methods are evaluated in one compiled call."""
    n, g = len(sets.y), 1 + len(sets.x) * sets.num_levels
    lps = {m: _model_average_log_probs(p.sample_logits) for m, p in preds.items()}
    sizes = [lp.shape[0] for lp in lps.values()]
    stacked = jnp.concatenate([lp.reshape((lp.shape[0], g, n, lp.shape[-1])) for lp in lps.values()])
    values, diagrams = _segment_metrics(stacked, jnp.asarray(sets.y))
    bounds = np.cumsum([0] + sizes)
    take = lambda tree, i: jax.tree_util.tree_map(lambda v: np.asarray(v[bounds[i]:bounds[i + 1]]), tree)
    metrics = {m: take(values, i) for i, m in enumerate(lps)}
    diags = {m: take(diagrams, i) for i, m in enumerate(lps)}
    probs = {m: np.asarray(jnp.exp(lp[:, :n])) for m, lp in lps.items()}
    return metrics, diags, probs


def level_means(metrics: dict, sets: ShiftedSets) -> dict:
    """``method -> metric -> [L + 1]``: mean over members and corruptions at each level."""
    return {m: {k: np.mean(list(by_corruption(v[k], sets).values()), axis=(0, 1)).tolist() for k in METRICS}
            for m, v in metrics.items()}


def pooled_reliability(d, segments):
    """The reliability diagram (and its ECE) of all members' predictions on ``segments`` taken as
    one set of points, from per-(member, segment) bin statistics: counts add, bin means are
    count-weighted, ``ECE = Σ_b |Σ count·acc − Σ count·conf| / N``."""
    count = d.count[:, segments].sum(axis=(0, 1)).astype(np.float64)
    w = d.count[:, segments].astype(np.float64)
    conf = np.nansum(w * d.confidence[:, segments], axis=(0, 1))
    acc = np.nansum(w * d.accuracy[:, segments], axis=(0, 1))
    safe = np.maximum(count, 1)
    diagram = calibration.ReliabilityDiagram(
        lower=d.lower[0, 0], upper=d.upper[0, 0], confidence=np.where(count > 0, conf / safe, np.nan),
        accuracy=np.where(count > 0, acc / safe, np.nan), count=count.astype(np.int64))
    return diagram, float(np.sum(np.abs(acc - conf)) / count.sum())


def member_values(metrics: dict, sets: ShiftedSets) -> dict:
    """``method -> name -> [M]``: per member (seed or replicate) the clean-test value
    (``clean_<metric>``), the value at the top shift level averaged over the corruptions
    (``level<L>_<metric>``) and the mean over levels 1..L and corruptions (``shift_<metric>``)."""
    out = {}
    for m, v in metrics.items():
        out[m] = {}
        for k in METRICS:
            per = np.stack(list(by_corruption(v[k], sets).values()))  # [C, M, L + 1]
            out[m][f"clean_{k}"] = per[0, :, 0]
            out[m][f"level{sets.num_levels}_{k}"] = per[:, :, -1].mean(0)
            out[m][f"shift_{k}"] = per[:, :, 1:].mean((0, 2))
    return out
