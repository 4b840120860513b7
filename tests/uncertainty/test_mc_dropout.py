"""MC dropout: stochastic dropout, everything else in eval mode."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.uncertainty.mc_dropout import mc_dropout_predict

from .conftest import TinyNet, init_variables


def _variables(model, x):
    variables = init_variables(model, x)
    # Distinctive running statistics, so eval mode (running stats) and train mode (batch stats)
    # give clearly different outputs.
    stats = jax.tree_util.tree_map(lambda s: 2.0 * s + 0.2, variables["batch_stats"])
    return {"params": variables["params"], "batch_stats": stats}


def test_mc_dropout_uses_running_stats_and_both_dropout_styles_agree():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(12, 4)), jnp.float32)
    call_style = TinyNet(dropout=0.3)
    attr_style = TinyNet(dropout=0.3, dropout_as_attribute=True)
    no_dropout = TinyNet(dropout=0.0)
    variables = _variables(call_style, x)

    @jax.jit
    def run(v):
        key = jax.random.key(1)
        a = mc_dropout_predict(call_style, v, x, key, num_samples=8).sample_logits
        b = mc_dropout_predict(attr_style, v, x, key, num_samples=8).sample_logits
        c = mc_dropout_predict(no_dropout, v, x, key, num_samples=2).sample_logits
        evaluated = no_dropout.apply(v, x, train=False)
        trained, _ = no_dropout.apply(v, x, train=True, mutable=["batch_stats"])
        return a, b, c, evaluated, trained

    a, b, c, evaluated, trained = run(variables)
    assert a.shape == (8, 12, 3)
    # Passes differ (dropout is on) ...
    assert not np.allclose(a[0], a[1])
    # ... and the re-implemented attribute-style dropout draws exactly flax's masks.
    np.testing.assert_array_equal(a, b)
    # Without dropout every pass is the eval-mode (running statistics) network, which differs
    # from the train-mode (batch statistics) one.
    assert np.max(np.abs(np.asarray(evaluated - trained))) > 0.1
    np.testing.assert_allclose(c[0], evaluated, rtol=1e-6)
    np.testing.assert_allclose(c[1], evaluated, rtol=1e-6)


def test_input_batches_get_independent_masks_and_mean_is_unbiased():
    # Identical inputs in different input batches must not share a dropout mask.
    x = jnp.ones((8, 4), jnp.float32)
    model = TinyNet(dropout=0.5)
    variables = _variables(model, x)
    run = jax.jit(lambda v, k: mc_dropout_predict(model, v, x, k, num_samples=400, batch_size=4).sample_logits)
    logits = np.asarray(run(variables, jax.random.key(2)))
    assert logits.shape == (400, 8, 3)
    assert not np.allclose(logits[:, 0], logits[:, 4])
    # Dropout's inverted scaling keeps the expected pre-head activation: the head is linear, so
    # the mean logit over T passes estimates the deterministic logit. MC error: 4 standard errors.
    det = np.asarray(jax.jit(lambda v: model.apply(v, x, train=False))(variables))
    se = logits.std(axis=0) / np.sqrt(logits.shape[0])
    np.testing.assert_array_less(np.abs(logits.mean(axis=0) - det), 4 * se + 1e-6)
