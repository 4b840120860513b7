"""Weight EMA against the explicit weighted average of the parameter trajectory, standalone and
carried through the engine by its hook."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.generative.ema import ema, ema_hook, ema_params


def _explicit(thetas, decay):
    """sum_i decay^(n-i) theta_i / sum_i decay^(n-i), float64."""
    n = len(thetas)
    w = decay ** np.arange(n - 1, -1, -1.0)
    return np.tensordot(w, thetas, axes=1) / w.sum()


def test_ema_equals_the_explicit_weighted_average_and_vmaps_over_decays():
    """float64: after 30 updates (averaging from step 5 on), the state equals the closed-form debiased
    average of theta_5..theta_30 to 1e-12; the first averaged update gives theta itself; vmapped over
    two decays it equals the separate runs."""
    with jax.enable_x64(True):
        thetas = np.random.default_rng(0).normal(size=(30, 3))

        def run(decay):
            avg = ema(decay, start_step=5)
            state = avg.init({"w": jnp.zeros(3)})
            states = []
            for step in range(1, 31):
                state = avg.update(state, {"w": jnp.asarray(thetas[step - 1])}, step)
                states.append(state)
            return states

        for decay in (0.9, 0.5):
            states = run(decay)
            np.testing.assert_allclose(ema_params(states[3])["w"], 0.0)       # step 4: not yet averaging
            np.testing.assert_allclose(ema_params(states[4])["w"], thetas[4], rtol=1e-12)
            np.testing.assert_allclose(ema_params(states[-1])["w"], _explicit(thetas[4:], decay), rtol=1e-12)
            assert int(states[-1].count) == 26
        both = jax.vmap(lambda d: run(d)[-1].average["w"])(jnp.array([0.9, 0.5]))
        np.testing.assert_allclose(both[1], _explicit(thetas[4:], 0.5), rtol=1e-12)


def test_ema_hook_in_a_sweep_matches_the_recorded_trajectory():
    """Through ``sweep`` (2 learning rates vmapped), the hook's final average equals the explicit
    average of the parameters recorded after every step by ``trajectory_hook`` (float32, 1e-5)."""
    from dl_course.train import default_config, sweep, trajectory_hook

    steps = 12
    c = default_config()
    c.dataset, c.model, c.model_options = "separable", "linear", {}
    c.loss, c.optimizer = "logistic", "sgd"
    c.steps, c.eval_every, c.batch_size = steps, steps, 0
    c.seeds, c.learning_rates = [0], [0.1, 0.5]
    res = sweep(c, hooks={"ema": ema_hook(0.8), "traj": trajectory_hook(list(range(1, steps + 1)))})
    traj = np.asarray(res.state.extras["traj"], np.float64)                   # [run, step, d]
    flat = lambda tree: np.concatenate([np.ravel(v) for v in jax.tree.leaves(tree)])
    for r in range(2):
        avg = flat(jax.tree.map(lambda v: v[r], ema_params(res.state.extras["ema"])))
        np.testing.assert_allclose(avg, _explicit(traj[r], 0.8), rtol=1e-5, atol=1e-6)
