"""Calibration and predictive-uncertainty metrics of a classifier.

All functions are pure ``jax.numpy`` (jit- and vmap-able, e.g. over the runs of a sweep). Inputs are
``probs [N, K]`` (rows sum to one), ``log_probs [N, K]``, integer ``labels [N]``, or per-sample
probabilities ``sample_probs [S, N, K]`` of an ensemble / posterior (see ``predictive.py``).

Conventions (repeated in every docstring that they concern):

* NLL is the MEAN over examples of ``−log p(y_i | x_i)`` in nats (not the sum).
* Brier score is the mean over examples of ``Σ_k (p_ik − 1[y_i = k])²`` (Brier 1950, multi-class
  form as in Ovadia et al. 2019), in ``[0, 2]``.
* ECE uses the top-label confidence ``max_k p_ik``; 15 equal-width bins ``(b/B, (b+1)/B]`` by
  default (Naeini et al. 2015; Guo et al. 2017), equal-mass bins (each holding ⌊N/B⌋ or ⌈N/B⌉
  examples sorted by confidence; Nixon et al. 2019) as an option.
* Entropies are in nats, with ``0 log 0 = 0``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import entr

from dl_course.uncertainty.predictive import Predictive

BINNINGS = ("equal_width", "equal_mass")

# For summary.json "conventions" of every study that reports these metrics.
CONVENTIONS = {
    "nll": "mean over examples of -log p(y|x), nats (of the model average for ensembles/posteriors)",
    "brier": "mean over examples of sum_k (p_k - 1[y=k])^2, in [0, 2]",
    "ece": "top-label confidence, 15 equal-width bins (b/15, (b+1)/15] unless stated otherwise",
    "entropies": "nats; predictive = H[mean_s p_s], expected = mean_s H[p_s], "
                 "mutual information = their difference (epistemic part)",
}


def accuracy(probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Top-1 accuracy ``(1/N) Σ_i 1[argmax_k p_ik = y_i]`` (ties go to the lowest class index)."""
    return jnp.mean(jnp.argmax(probs, axis=-1) == labels)


def nll(log_probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Negative log-likelihood, MEAN over examples: ``−(1/N) Σ_i log p(y_i | x_i)`` in nats.

    Takes log-probabilities (``Predictive.log_probs`` computes the model average in log space), so
    a confidently wrong prediction gives its true large loss instead of ``−log 0``.
    """
    picked = jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return -jnp.mean(picked)


def brier_score(probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Multi-class Brier score (Brier 1950): ``(1/N) Σ_i Σ_k (p_ik − 1[y_i = k])²``, in [0, 2]."""
    onehot = jax.nn.one_hot(labels, probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum((probs - onehot) ** 2, axis=-1))


class ReliabilityDiagram(NamedTuple):
    """Per-bin statistics of top-label confidence (Guo et al. 2017, Fig. 1), all of shape ``[B]``.

    ``confidence`` and ``accuracy`` are NaN in empty bins; ``lower``/``upper`` are the bin edges
    (for equal-mass bins: the smallest and largest confidence in the bin).
    """

    lower: jax.Array
    upper: jax.Array
    confidence: jax.Array
    accuracy: jax.Array
    count: jax.Array


def _bin_index(confidence: jax.Array, num_bins: int, binning: str) -> tuple[jax.Array, ...]:
    if binning == "equal_width":
        edges = jnp.linspace(0.0, 1.0, num_bins + 1, dtype=confidence.dtype)
        # searchsorted(side="left") - 1 puts c in bin b iff edges[b] < c <= edges[b+1]; c = 0 -> bin 0.
        index = jnp.clip(jnp.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
        return index, edges[:-1], edges[1:]
    if binning == "equal_mass":
        n = confidence.shape[0]
        order = jnp.argsort(confidence, stable=True)
        rank = jnp.empty_like(order).at[order].set(jnp.arange(n))
        index = (rank * num_bins) // n
        # Empty segments (only when N < B) give ±inf; reliability_diagram turns them into NaN.
        lower = jax.ops.segment_min(confidence, index, num_segments=num_bins)
        upper = jax.ops.segment_max(confidence, index, num_segments=num_bins)
        return index, lower, upper
    raise ValueError(f"Unknown binning {binning!r}; valid: {', '.join(BINNINGS)}")


def reliability_diagram(
    probs: jax.Array, labels: jax.Array, num_bins: int = 15, binning: str = "equal_width"
) -> ReliabilityDiagram:
    """Reliability-diagram data: mean confidence and accuracy of the examples in each bin.

    With confidence ``c_i = max_k p_ik`` and prediction ``ŷ_i = argmax_k p_ik``, bin ``b`` holds
    ``B_b = {i : c_i ∈ bin b}`` and reports ``conf(B_b) = mean c_i``, ``acc(B_b) = mean 1[ŷ_i = y_i]``
    (Guo et al. 2017, §2). Bins: 15 equal-width ``(b/B, (b+1)/B]`` by default, or equal-mass.
    """
    confidence = jnp.max(probs, axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels).astype(confidence.dtype)
    index, lower, upper = _bin_index(confidence, num_bins, binning)
    count = jax.ops.segment_sum(jnp.ones_like(confidence), index, num_segments=num_bins)
    safe = jnp.maximum(count, 1.0)
    conf = jax.ops.segment_sum(confidence, index, num_segments=num_bins) / safe
    acc = jax.ops.segment_sum(correct, index, num_segments=num_bins) / safe
    nan = jnp.asarray(jnp.nan, confidence.dtype)
    return ReliabilityDiagram(
        lower=jnp.where(jnp.isfinite(lower), lower, nan),
        upper=jnp.where(jnp.isfinite(upper), upper, nan),
        confidence=jnp.where(count > 0, conf, nan),
        accuracy=jnp.where(count > 0, acc, nan),
        count=count.astype(jnp.int32),
    )


def expected_calibration_error(
    probs: jax.Array, labels: jax.Array, num_bins: int = 15, binning: str = "equal_width"
) -> jax.Array:
    """Expected calibration error (Naeini et al. 2015; Guo et al. 2017, eq. 3):

        ECE = Σ_b (|B_b| / N) · |acc(B_b) − conf(B_b)|

    over top-label confidences, 15 equal-width bins ``(b/B, (b+1)/B]`` by default, equal-mass bins
    with ``binning="equal_mass"``. Empty bins contribute zero. In [0, 1].
    """
    d = reliability_diagram(probs, labels, num_bins, binning)
    gap = jnp.where(d.count > 0, jnp.abs(d.accuracy - d.confidence), 0.0)
    return jnp.sum(d.count * gap) / probs.shape[0]


def entropy(probs: jax.Array) -> jax.Array:
    """Shannon entropy ``H[p] = −Σ_k p_k log p_k`` in nats over the last axis (``0 log 0 = 0``)."""
    return jnp.sum(entr(probs), axis=-1)


def predictive_entropy(sample_probs: jax.Array) -> jax.Array:
    """Total uncertainty ``H[(1/S) Σ_s p_s]`` per example, from ``[S, N, K]`` -> ``[N]`` nats."""
    return entropy(jnp.mean(sample_probs, axis=0))


def expected_entropy(sample_probs: jax.Array) -> jax.Array:
    """Aleatoric part ``(1/S) Σ_s H[p_s]`` per example, from ``[S, N, K]`` -> ``[N]`` nats."""
    return jnp.mean(entropy(sample_probs), axis=0)


def mutual_information(sample_probs: jax.Array) -> jax.Array:
    """Epistemic part: ``I[y; θ | x] = H[E_θ p] − E_θ H[p]`` per example, ``[S, N, K] -> [N]`` nats.

    The BALD quantity (Houlsby et al. 2011; the decomposition of Depeweg et al. 2018), estimated by
    Monte Carlo over the S samples. Non-negative by Jensen; clamped at 0 against roundoff.
    """
    return jnp.maximum(predictive_entropy(sample_probs) - expected_entropy(sample_probs), 0.0)


def summary(
    predictive: Predictive, labels: jax.Array, num_bins: int = 15, binning: str = "equal_width"
) -> dict[str, jax.Array]:
    """The headline metrics of a predictive distribution on labelled data (all scalars):

    ``accuracy``; ``nll`` (MEAN per example, nats); ``brier``; ``ece`` (15 equal-width bins by
    default); ``predictive_entropy``, ``expected_entropy``, ``mutual_information`` (means over
    examples, nats). Metrics are of the model average ``(1/S) Σ_s softmax(f_s)``.
    """
    probs = predictive.probs
    sample_probs = predictive.sample_probs
    return {
        "accuracy": accuracy(probs, labels),
        "nll": nll(predictive.log_probs, labels),
        "brier": brier_score(probs, labels),
        "ece": expected_calibration_error(probs, labels, num_bins, binning),
        "predictive_entropy": jnp.mean(entropy(probs)),
        "expected_entropy": jnp.mean(expected_entropy(sample_probs)),
        "mutual_information": jnp.mean(mutual_information(sample_probs)),
    }
