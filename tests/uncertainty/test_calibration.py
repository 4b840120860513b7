"""Calibration metrics against hand computations and scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import log_loss

from dl_course.uncertainty import calibration
from dl_course.uncertainty.predictive import Predictive, from_logits

# One compiled program per function (eager op-by-op dispatch compiles every primitive separately).
ece_fn = jax.jit(calibration.expected_calibration_error, static_argnums=(2, 3))
diagram_fn = jax.jit(calibration.reliability_diagram, static_argnums=(2, 3))
summary_fn = jax.jit(calibration.summary)


def _two_class(confidences, correct):
    """Binary probs whose top class is 0 with the given confidence; label 0 iff correct."""
    c = np.asarray(confidences)
    probs = np.stack([c, 1 - c], axis=1)
    labels = np.where(correct, 0, 1)
    return jnp.asarray(probs), jnp.asarray(labels)


def test_ece_hand_computed_equal_width():
    # 15 equal-width bins (b/15, (b+1)/15]:
    #   0.55, 0.58 -> bin 8 (0.533, 0.6]: acc 1/2, conf 0.565, |gap| 0.065, weight 2/5
    #   0.90, 0.92 -> bin 13 (0.867, 0.933]: acc 1, conf 0.91, |gap| 0.09, weight 2/5
    #   0.99       -> bin 14 (0.933, 1]: acc 0, conf 0.99, |gap| 0.99, weight 1/5
    # ECE = 0.4 * 0.065 + 0.4 * 0.09 + 0.2 * 0.99 = 0.26
    probs, labels = _two_class([0.55, 0.58, 0.9, 0.92, 0.99], [True, False, True, True, False])
    ece = ece_fn(probs, labels, 15, "equal_width")
    np.testing.assert_allclose(ece, 0.26, rtol=1e-6)
    d = diagram_fn(probs, labels, 15, "equal_width")
    assert d.count.shape == (15,) and int(d.count.sum()) == 5
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(d.count)), [8, 13, 14])
    np.testing.assert_allclose(d.confidence[8], 0.565, rtol=1e-6)
    np.testing.assert_allclose(d.accuracy[13], 1.0)
    np.testing.assert_allclose(d.lower[8], 8 / 15, rtol=1e-6)
    assert np.isnan(d.accuracy[0])


def test_ece_hand_computed_equal_mass():
    # 5 equal-mass bins over 5 examples: one example each, ECE = mean |1[correct] - conf|
    # = (0.45 + 0.58 + 0.10 + 0.08 + 0.99) / 5 = 0.44
    probs, labels = _two_class([0.55, 0.58, 0.9, 0.92, 0.99], [True, False, True, True, False])
    ece = ece_fn(probs, labels, 5, "equal_mass")
    np.testing.assert_allclose(ece, 0.44, rtol=1e-6)
    d = diagram_fn(probs, labels, 5, "equal_mass")
    np.testing.assert_array_equal(d.count, np.ones(5))
    np.testing.assert_allclose(d.lower, [0.55, 0.58, 0.9, 0.92, 0.99], rtol=1e-6)


def test_ece_equal_mass_balances_bins_and_rejects_unknown():
    rng = np.random.default_rng(0)
    probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(103, 4)) * 3), axis=-1)
    labels = jnp.asarray(rng.integers(0, 4, 103))
    d = diagram_fn(probs, labels, 10, "equal_mass")
    assert set(np.asarray(d.count).tolist()) <= {10, 11} and int(d.count.sum()) == 103
    # Bins are ordered by confidence.
    assert np.all(np.asarray(d.upper)[:-1] <= np.asarray(d.lower)[1:])
    with pytest.raises(ValueError, match="equal_width"):
        calibration.expected_calibration_error(probs, labels, binning="quantile")


def test_perfectly_calibrated_limit_has_small_ece():
    # Labels drawn from the predicted distribution: ECE -> 0 as N grows. With N = 20000 and 15
    # bins, the per-bin sampling error of the accuracy is <= sqrt(0.25 / n_b); the weighted sum is
    # about sqrt(15 * 0.25 / 20000) ~ 0.014, so 0.03 is a safe bound; a 10-point overconfidence
    # (confidence 0.9 reported for 80% accurate predictions) is not.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20000, 5)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (rng.random((20000, 1)) > np.cumsum(probs, axis=1)).sum(axis=1)  # y ~ Cat(p)
    assert ece_fn(jnp.asarray(probs), jnp.asarray(labels), 15, "equal_width") < 0.03


def test_accuracy_nll_brier_against_references():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(50, 4))
    labels = rng.integers(0, 4, 50)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = summary_fn(from_logits(jnp.asarray(logits)), jnp.asarray(labels))
    np.testing.assert_allclose(got["accuracy"], np.mean(probs.argmax(1) == labels))
    # NLL is the MEAN over examples, like sklearn's log_loss.
    np.testing.assert_allclose(got["nll"], log_loss(labels, probs, labels=range(4)), rtol=1e-5)
    brier = np.mean(np.sum((probs - np.eye(4)[labels]) ** 2, axis=1))
    np.testing.assert_allclose(got["brier"], brier, rtol=1e-5)
    np.testing.assert_allclose(got["mutual_information"], 0.0, atol=1e-6)  # a single network


def test_entropy_decomposition_closed_forms():
    decompose = jax.jit(lambda p: (calibration.predictive_entropy(p), calibration.expected_entropy(p),
                                   calibration.mutual_information(p)))
    # Example 0, two confident samples that disagree: H[mean] = log 2, E[H] = 0, MI = log 2.
    # Example 1, identical samples: no epistemic uncertainty, all of it aleatoric.
    sample_probs = jnp.asarray([[[1.0, 0.0], [0.3, 0.7]], [[0.0, 1.0], [0.3, 0.7]]])
    total, aleatoric, epistemic = decompose(sample_probs)
    h = -(0.3 * np.log(0.3) + 0.7 * np.log(0.7))
    np.testing.assert_allclose(total, [np.log(2), h], rtol=1e-6)
    np.testing.assert_allclose(aleatoric, [0.0, h], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(epistemic, [np.log(2), 0.0], rtol=1e-6, atol=1e-6)


def _numpy_summary(logits, labels, num_bins=15):
    """Independent float64 numpy reference for calibration.summary of one run."""
    p_s = np.exp(logits - logits.max(-1, keepdims=True))
    p_s /= p_s.sum(-1, keepdims=True)
    p = p_s.mean(0)
    n = len(labels)
    conf, correct = p.max(1), p.argmax(1) == labels
    bins = np.clip(np.ceil(conf * num_bins).astype(int) - 1, 0, num_bins - 1)
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * np.sum(bins == b) / n
              for b in range(num_bins) if np.any(bins == b))
    ent = lambda q: -np.sum(np.where(q > 0, q * np.log(q), 0.0), -1)
    return {
        "accuracy": correct.mean(), "nll": -np.mean(np.log(p[np.arange(n), labels])),
        "brier": np.mean(np.sum((p - np.eye(p.shape[1])[labels]) ** 2, 1)), "ece": ece,
        "predictive_entropy": ent(p).mean(), "expected_entropy": ent(p_s).mean(0).mean(),
        "mutual_information": (ent(p) - ent(p_s).mean(0)).mean(),
    }


def test_summary_of_mixture_vmapped_over_runs_matches_numpy():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 5, 30, 3)) * 2  # [run, S, N, K]
    labels = rng.integers(0, 3, 30)
    batched = jax.jit(jax.vmap(lambda l: calibration.summary(Predictive(l), jnp.asarray(labels))))(
        jnp.asarray(logits, jnp.float32))
    for r in range(2):
        for name, value in _numpy_summary(logits[r], labels).items():
            # float32 logits of size ~6: rtol 1e-5 on O(1) metrics (atol for MI/ECE near 0).
            np.testing.assert_allclose(batched[name][r], value, rtol=1e-5, atol=1e-6, err_msg=name)
