"""OOD scores and detection metrics against scikit-learn and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from dl_course.uncertainty import ood
from dl_course.uncertainty.predictive import Predictive


def _sklearn(scores_in, scores_out):
    y = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]  # OOD = positive class
    s = np.r_[scores_in, scores_out]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return roc_auc_score(y, s), average_precision_score(y, s), fpr[np.searchsorted(tpr, 0.95, side="left")]


@pytest.mark.parametrize("discrete", [False, True])
def test_detection_metrics_match_sklearn(discrete):
    rng = np.random.default_rng(0 if discrete else 1)
    scores_in = rng.normal(0.0, 1.0, 300)
    scores_out = rng.normal(1.0, 1.5, 170)
    if discrete:  # many ties, within and across the two groups
        scores_in, scores_out = np.round(scores_in), np.round(scores_out)
    want_auroc, want_aupr, want_fpr = _sklearn(scores_in, scores_out)
    got = ood.detection_metrics(scores_in, scores_out)
    np.testing.assert_allclose(got["auroc"], want_auroc, rtol=1e-12)
    np.testing.assert_allclose(got["aupr"], want_aupr, rtol=1e-12)
    np.testing.assert_allclose(got["fpr_at_95_tpr"], want_fpr, rtol=1e-12)


def test_detection_metrics_extremes_and_orientation():
    perfect = ood.detection_metrics([0.0, 0.1, 0.2], [1.0, 2.0])
    assert perfect == {"auroc": 1.0, "aupr": 1.0, "fpr_at_95_tpr": 0.0}
    inverted = ood.detection_metrics([1.0, 2.0], [0.0, 0.1, 0.2])
    assert inverted["auroc"] == 0.0 and inverted["fpr_at_95_tpr"] == 1.0
    assert ood.auroc([0.5] * 4, [0.5] * 3) == 0.5  # all tied: chance
    with pytest.raises(ValueError):
        ood.auroc([], [1.0])


def test_scores_closed_forms_and_orientation():
    # In-distribution: confident logits; OOD: flat logits. Every score must rank OOD higher.
    logits_in = jnp.asarray([[[8.0, 0.0, 0.0]], [[7.0, 1.0, 0.0]]])  # [S=2, N=1, K=3]
    logits_out = jnp.asarray([[[1.0, 0.0, 1.0]], [[0.0, 1.0, 1.0]]])
    s_in = jax.jit(ood.ood_scores)(Predictive(logits_in))
    s_out = jax.jit(ood.ood_scores)(Predictive(logits_out))
    assert set(s_in) == {"msp", "max_logit", "entropy", "mutual_information", "energy"}
    for name in s_in:
        assert s_out[name][0] > s_in[name][0], name
    # energy = mean_s -logsumexp(f_s); max_logit = -mean_s max_k f_sk; msp = -max_k mean_s p_sk.
    lse = np.log(np.exp(np.asarray(logits_in)).sum(-1))[:, 0]
    np.testing.assert_allclose(s_in["energy"][0], -lse.mean(), rtol=1e-6)
    np.testing.assert_allclose(s_in["max_logit"][0], -7.5, rtol=1e-6)
    p = np.exp(np.asarray(logits_in)) / np.exp(np.asarray(logits_in)).sum(-1, keepdims=True)
    np.testing.assert_allclose(s_in["msp"][0], -p.mean(0)[0].max(), rtol=1e-6)
    with pytest.raises(ValueError, match="msp"):
        ood.get_score("odin")


def test_detection_table_single_model_has_zero_mi():
    rng = np.random.default_rng(2)
    pred_in = Predictive(jnp.asarray(rng.normal(size=(1, 40, 4)) * 4))
    pred_out = Predictive(jnp.asarray(rng.normal(size=(1, 30, 4))))
    table = ood.detection_table(pred_in, pred_out, names=["msp", "mutual_information"])
    assert table["mutual_information"]["auroc"] == 0.5  # MI is identically 0 for S = 1
    assert table["msp"]["auroc"] > 0.7


def test_markdown_table_states_the_positive_class():
    table = {"msp": {"auroc": 0.9, "aupr": 0.8, "fpr_at_95_tpr": 0.3}}
    text = ood.markdown_table(table, title="MNIST-1D vs noise")
    assert "OOD is the positive class" in text.splitlines()[0]
    assert "| msp | 0.900 | 0.800 | 0.300 |" in text
