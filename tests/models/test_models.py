"""Every model learns a dataset it fits; batch norm's eval mode uses running statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course import models
from dl_course.train import default_config, sweep

CASES = [
    ("mlp", {"width": 32, "depth": 1}, "mnist1d", {"num_train": 500}, "cross_entropy"),
    ("linear", {"use_bias": False}, "separable", {}, "logistic"),
    ("cnn1d", {"channels": (8, 8), "strides": (1, 2)}, "mnist1d", {"num_train": 500}, "cross_entropy"),
    ("cnn2d", {"channels": (8,), "hidden": 32}, "digits", {}, "cross_entropy"),
    ("resnet", {"stage_channels": (8, 16)}, "digits", {}, "cross_entropy"),
    ("mlp", {"width": 32, "depth": 1}, "teacher", {}, "mse"),
]


@pytest.mark.parametrize("name,options,dataset,dopts,loss", CASES)
def test_loss_decreases_end_to_end(name, options, dataset, dopts, loss):
    c = default_config()
    c.dataset, c.model, c.loss = dataset, name, loss
    c.dataset_options = dopts
    c.model_options = options
    c.optimizer, c.steps, c.eval_every, c.batch_size = "adam", 60, 60, 32
    res = sweep(c, seeds=[0], learning_rates=[1e-2])
    assert not res.diverged.any()
    assert res.metrics["train_loss"][0, -1] < 0.8 * res.metrics["train_loss"][0, 0]


def test_unknown_model_or_option_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: cnn1d, cnn2d, gru, linear, mlp, resnet"):
        models.get("transformer")
    with pytest.raises(ValueError, match="unknown option.*valid:"):
        models.get("mlp", hidden=3)


def test_batch_norm_eval_mode_uses_running_statistics():
    m = models.get("resnet", stage_channels=(4,), num_outputs=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 8, 8, 1)) * 3 + 1
    v = m.init(jax.random.PRNGKey(1), x)
    _, upd = m.apply(v, x, train=True, mutable=["batch_stats"])
    v2 = {"params": v["params"], "batch_stats": upd["batch_stats"]}
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), v["batch_stats"], v2["batch_stats"]))
    assert max(float(c) for c in changed) > 1e-3
    # eval mode: output of one example does not depend on the rest of the batch
    out_full = m.apply(v2, x, train=False)
    out_one = m.apply(v2, x[:1], train=False)
    np.testing.assert_allclose(out_full[:1], out_one, rtol=1e-5, atol=1e-5)
    # and train mode does (batch statistics)
    assert not np.allclose(m.apply(v2, x, train=True, mutable=["batch_stats"])[0][:1],
                           m.apply(v2, x[:2], train=True, mutable=["batch_stats"])[0][:1], atol=1e-4)
