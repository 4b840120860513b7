"""The controls of the uncertainty study: SWA is the plain mean of the iterates the SWAG hook
collects (read back from a recorded trajectory of the same sweep), and the last-layer Laplace
with its prior precision tuned per member on validation NLL does not lose to the MAP network on
held-out NLL, while a deliberately absurd prior (τ = 1e-4: a posterior far wider than the data
allow) does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_course.data.shifted_sets import split_validation
from dl_course.train import default_config, sweep, trajectory_hook
from dl_course.train.build import load_data, make_model
from dl_course.uncertainty import members as mem
from dl_course.uncertainty.swag import swag_hook


def _train(steps, seeds, data, **options):
    t = default_config()
    t.dataset, t.model, t.optimizer = "digits", "mlp", "momentum"
    t.model_options.width, t.model_options.depth = 32, 1
    t.optimizer_options.momentum = 0.9
    t.steps, t.batch_size, t.eval_every, t.seeds, t.learning_rates = steps, 50, steps, seeds, [0.1]
    for k, v in options.items():
        setattr(t, k, v)
    return t


@pytest.fixture(scope="module")
def data():
    d = load_data(_cfg())
    return split_validation(d, 0.2, 0)


def _cfg():
    t = _train(1, [0], None)
    t.dataset_options = {"test_fraction": 0.8}  # 359 training images: a MAP that overfits
    return t


def test_swa_equals_the_mean_of_the_collected_iterates(data):
    train_data = data[0]
    t = _train(24, [0, 1], train_data)
    sched = mem.swag_schedule(t.steps, t.batch_size, train_data.n_train, start_fraction=0.5, collect_every=3,
                              num_deviations=4)
    res = sweep(t, data=train_data, progress=False, hooks={
        "swag": swag_hook(4, collect_every=sched["collect_every"], start_step=sched["start_step"]),
        "traj": trajectory_hook(np.arange(1, t.steps + 1))})
    collected = [s for s in range(1, t.steps + 1)
                 if s >= sched["start_step"] and (s - sched["start_step"]) % sched["collect_every"] == 0]
    assert len(collected) == sched["num_snapshots"] == 5  # steps 12, 15, ..., 24
    model = make_model(t, train_data)
    members = mem.Members(res, None, model, None, sched)
    x = jnp.asarray(train_data.x_test[:50])
    swa = mem.predictives(members, x, train_data.x_train, methods=("swa",))["swa"].sample_logits[:, 0]
    unravel = jax.flatten_util.ravel_pytree(jax.tree_util.tree_map(lambda v: v[0], res.params))[1]
    for i in range(2):
        iterates = np.asarray(res.state.extras["traj"][i])[np.asarray(collected) - 1]  # row s-1 = step s
        mean = unravel(jnp.asarray(iterates.mean(0)))
        ref = model.apply({"params": mean}, x, train=False)
        # float32 Welford mean vs a float32 numpy two-pass mean of 5 iterates: ~1e-6 relative.
        np.testing.assert_allclose(swa[i], ref, rtol=1e-4, atol=1e-5)
        # ... and it is not the final iterate (the test could not pass by returning theta_T).
        final = model.apply({"params": jax.tree_util.tree_map(lambda v, i=i: v[i], res.params)}, x, train=False)
        assert np.max(np.abs(np.asarray(final) - np.asarray(ref))) > 1e-3


def _nll(logits, y):
    lp = jax.nn.log_softmax(jnp.asarray(logits), -1)
    return float(-jnp.mean(jnp.take_along_axis(lp, jnp.asarray(y)[:, None], axis=1)))


def test_tuned_laplace_prior_does_not_lose_to_the_map_and_an_absurd_one_does(data):
    train_data, x_val, y_val = data
    t = _train(1000, [0, 1], train_data)  # 175 epochs of 287 images, no weight decay: an overconfident MAP
    res = sweep(t, data=train_data, progress=False)
    members = mem.Members(res, None, make_model(t, train_data), None, {})
    x_test, y_test = jnp.asarray(train_data.x_test), train_data.y_test
    fit = lambda **kw: mem.fit_laplaces(members, train_data.x_train, train_data.y_train, **kw)
    tuned = fit(prior="validation", validation=(x_val, y_val), validation_grid=(-2.0, 6.0, 17))
    absurd = fit(prior="fixed", prior_precision=1e-4)
    preds = lambda la: mem.predictives(members, x_test, train_data.x_train, methods=("sgd", "laplace"),
                                       laplace=la)
    p_tuned, p_absurd = preds(tuned), preds(absurd)
    for i in range(2):
        map_nll = _nll(p_tuned["sgd"].sample_logits[i, 0], y_test)
        tuned_nll = _nll(p_tuned["laplace"].sample_logits[i, 0], y_test)
        absurd_nll = _nll(p_absurd["laplace"].sample_logits[i, 0], y_test)
        # Measured (seeds 0, 1): MAP 0.262 / 0.282, tuned (tau = 10) 0.238 / 0.249, absurd 2.23 (near
        # log 10: the probit flattens every prediction); the evidence tau (0.34) gives 0.70. The
        # tuned tau is interior (below the grid's top, where the predictive is the MAP's), so the
        # first bound is a real improvement, not a tie with the MAP.
        assert tuned_nll <= map_nll - 0.01, (i, tuned_nll, map_nll)
        assert absurd_nll > map_nll + 1.0, (i, absurd_nll, map_nll)
        assert float(tuned.prior_precision[i]) < 1e5
