"""Deep ensembles and (Multi)SWAG run vmapped over seeds and equal the per-seed results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.uncertainty import bma, swag
from dl_course.uncertainty.ensembles import ensemble_predict, select_members
from dl_course.uncertainty.predictive import Predictive, pool_runs

from .conftest import TinyNet, init_variables

MODEL = TinyNet(hidden=8, num_classes=3)
COLLECTOR = swag.swag(5, collect_every=2, start_step=10)  # steps 10, 12, …, 30: 11 snapshots


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


@pytest.fixture(scope="module")
def members():
    """Three seeds' networks stacked on a leading run axis (as a sweep returns them), each with
    a SWAG state collected from a synthetic iterate trajectory θ_t = θ_seed + 0.05·ε_t (what the
    collector does with the iterates is test_swag.py's subject; here they only need to differ).
    No training: every compile saved counts on a shared 2-core machine."""
    x, _ = _data()
    variables = init_variables(MODEL, x[:2], runs=3)
    params, model_state = variables["params"], {"batch_stats": variables["batch_stats"]}
    rng = np.random.default_rng(1)
    steps = 31
    noise = jax.tree_util.tree_map(lambda p: 0.05 * rng.standard_normal((3, steps) + p.shape[1:]).astype(np.float32),
                                   params)

    def collect(theta, eps):
        def body(state, inputs):
            e, t = inputs
            return COLLECTOR.update(state, jax.tree_util.tree_map(jnp.add, theta, e), t), None

        return jax.lax.scan(body, COLLECTOR.init(theta), (eps, jnp.arange(steps)))[0]

    swag_state = jax.jit(jax.vmap(collect))(params, noise)
    return x, (params, model_state, swag_state)


def test_ensemble_predictive_equals_per_member(members):
    x, (params, model_state, swag_state) = members
    assert np.all(np.asarray(swag_state.n) == 11)
    assert not np.allclose(params["Dense_0"]["kernel"][0], params["Dense_0"]["kernel"][1])
    apply_fn = lambda v, xb: MODEL.apply(v, xb, train=False)
    pred = jax.jit(lambda v: ensemble_predict(apply_fn, v, x, batch_size=20))({"params": params, **model_state})
    assert pred.sample_logits.shape == (3, 48, 3)
    member_fn = jax.jit(apply_fn)
    for m in range(3):
        v = select_members({"params": params, **model_state}, [m])
        v = jax.tree_util.tree_map(lambda l: l[0], v)
        np.testing.assert_allclose(pred.sample_logits[m], member_fn(v, x), rtol=1e-5, atol=1e-6)
    probs = np.mean(np.asarray(jax.nn.softmax(pred.sample_logits, axis=-1)), axis=0)
    np.testing.assert_allclose(pred.probs, probs, rtol=1e-6)


def test_multiswag_vmapped_equals_per_seed(members):
    """SWAG predictive (sampling + BN refresh per sample + BMA) vmapped over seeds equals each seed
    alone."""
    x, (_, model_state, swag_state) = members

    def predictive(state, ms, key):
        return bma.swag_predictive(MODEL, state, ms, x, key, method="swag", num_samples=4, x_refresh=x,
                                   refresh_batch_size=16).sample_logits

    keys = jax.random.split(jax.random.key(7), 3)
    batched = Predictive(jax.jit(jax.vmap(predictive))(swag_state, model_state, keys))
    single = jax.jit(predictive)
    for s in range(3):
        pick = lambda t: jax.tree_util.tree_map(lambda l: l[s], t)
        np.testing.assert_allclose(batched.sample_logits[s], single(pick(swag_state), pick(model_state), keys[s]),
                                   rtol=1e-4, atol=1e-5)
    multi = pool_runs(batched)  # MultiSWAG: 3 seeds × 4 samples in one mixture
    assert multi.sample_logits.shape == (12, 48, 3)
    # Posterior samples differ from each other, and from the SWA mean.
    assert not np.allclose(multi.sample_logits[0], multi.sample_logits[1])


def test_bma_chunking_does_not_change_the_average():
    """Sample s uses the same key whether samples run in chunks and inputs in batches or not."""
    x, _ = _data()
    w = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)
    apply_fn = lambda v, xb: xb @ v
    sample_fn = lambda k: w + 0.3 * jax.random.normal(k, w.shape)

    @jax.jit
    def run(key):
        full = bma.bayesian_model_average(apply_fn, sample_fn, key, x, num_samples=6)
        chunked = bma.bayesian_model_average(apply_fn, sample_fn, key, x, num_samples=6, chunk_size=4, batch_size=20)
        return full.sample_logits, chunked.sample_logits

    full, chunked = run(jax.random.key(0))
    assert full.shape == (6, 48, 3)
    np.testing.assert_allclose(full, chunked, rtol=1e-5, atol=1e-6)


def test_swag_predictive_requires_refresh_inputs_for_batchnorm():
    with pytest.raises(ValueError, match="x_refresh"):
        bma.swag_predictive(MODEL, None, {"batch_stats": {"BatchNorm_0": {"mean": jnp.zeros(4)}}},
                            jnp.zeros((2, 4)), None)
