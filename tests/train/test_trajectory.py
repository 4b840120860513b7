"""The trajectory hook: it records exactly the parameters the engine trained, at the steps asked."""

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_course.train import record_steps, stream, supervised_task, sweep, trajectory_hook
from dl_course.train.build import make_model
from tests.train.conftest import tiny_config


def test_record_steps_and_bad_input():
    s = record_steps(100, 5, spacing="linear", include_init=True)
    assert s[0] == 0 and s[-1] == 100 and np.all(np.diff(s) > 0)
    assert record_steps(1000, 10)[-1] == 1000
    with pytest.raises(ValueError, match="spacing"):
        record_steps(10, 3, spacing="cubic")
    with pytest.raises(ValueError, match="strictly increasing"):
        trajectory_hook([3, 3, 5])


def test_trajectory_hook_records_the_trained_parameters(small_mnist1d):
    """Row 0 is the initialization the engine drew, the
    last row the final parameters, for every run of a vmapped sweep."""
    config = tiny_config(steps=40, eval_every=20, seeds=[0, 1], learning_rates=[0.1])
    steps = [0, 7, 40]
    res = sweep(config, data=small_mnist1d, hooks={"traj": trajectory_hook(steps)})
    traj = np.asarray(res.state.extras["traj"])
    assert traj.shape[:2] == (2, 3)
    final = np.stack([ravel_pytree(jax.tree.map(lambda x: x[r], res.params))[0] for r in range(2)])
    np.testing.assert_array_equal(traj[:, -1], final)
    # The engine initialises run r from stream(PRNGKey(seed), "init") (dl_course.train.program).
    task = supervised_task(make_model(config, small_mnist1d), config.loss, small_mnist1d.num_classes)
    for r, seed in enumerate([0, 1]):
        params0, _ = task.init(stream(jax.random.PRNGKey(seed), "init"), small_mnist1d.x_train[:1])
        # Eager vs jitted-and-vmapped initializers round differently (observed: 1 ulp, 3e-5 relative).
        np.testing.assert_allclose(traj[r, 0], ravel_pytree(params0)[0], rtol=1e-4, atol=1e-7)
    assert np.all(np.any(traj[:, 1] != traj[:, 0], axis=1)) and np.all(np.any(traj[:, 1] != traj[:, 2], axis=1))


def test_trajectory_task_unravels_the_recorded_layout_and_rejects_batch_norm(small_mnist1d):
    from dl_course.train import ConfigError
    from dl_course.train.trajectory import trajectory_task

    config = tiny_config(steps=20, eval_every=20, seeds=[0], learning_rates=[0.1])
    res = sweep(config, data=small_mnist1d, hooks={"traj": trajectory_hook([20])})
    _, unravel = trajectory_task(config, small_mnist1d, "a study")
    final = unravel(np.asarray(res.state.extras["traj"])[0, 0])
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b[0]), final, res.params)
    config.model_options.batch_norm = True
    with pytest.raises(ConfigError, match="a study records parameters only"):
        trajectory_task(config, small_mnist1d, "a study")


def test_trajectory_hook_is_one_object_per_steps():
    """Equal steps give the same hook (so the sweep's compile cache, keyed by hook identity, is hit
    when a study runs again); other steps give another."""
    assert trajectory_hook([0, 5, 9]) is trajectory_hook(np.array([0, 5, 9]))
    assert trajectory_hook([0, 5, 9]) is not trajectory_hook([0, 5, 10])
