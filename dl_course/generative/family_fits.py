"""Training and evaluating the VAE and RealNVP families on K-level images with the engine, for the
``generative_models`` study: per run, bits/dim of the test images and samples; the VAE's
rate-distortion curve (Kingma & Welling 2014; Burda et al. 2016, IWAE; Dinh et al. 2017, RealNVP;
Alemi et al. 2018, rate and distortion). Each family is one engine sweep (``dl_course.train.sweep``)
over seeds with its own learning rate and step count (``config.<family>``).
"""

from __future__ import annotations

import copy
import time

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import data as data_lib
from dl_course.generative import vae as vae_lib
from dl_course.generative.flow import RealNVP
from dl_course.generative.flow import make_task as make_flow_task
from dl_course.generative.likelihood import bits_per_dim
from dl_course.generative.vae import VAE, iwae_bound
from dl_course.generative.vae import make_task as make_vae_task
from dl_course.train import sweep


def family_train_config(config, family: str):
    """``config.train`` with the family's learning rate and number of steps (0: the shared one)."""
    t = copy.deepcopy(config.train)
    f = config[family]
    t.learning_rates = [float(f.learning_rate)]
    if int(f.steps) > 0:
        t.steps = int(f.steps)
        t.eval_every = min(int(t.eval_every), int(f.steps))
    return t


def run_params(res, i):
    """Run ``i``'s parameters of a sweep result, as device arrays."""
    return jax.tree.map(lambda a: jnp.asarray(a[i]), res.params)


def timed_sweep(t, task, data, run_dir, name, hooks=None, **grid):
    """``sweep(t, task=task, data=data, hooks=hooks, **grid)`` with its wall time, printed with the
    final train losses; returns ``(result, seconds)``."""
    start = time.perf_counter()
    res = sweep(t, task=task, data=data, hooks=hooks, progress=True, **grid)
    seconds = time.perf_counter() - start
    print(f"{name}: {len(res.grid)} run(s), {t.steps} steps, final train loss "
          f"{np.round(res.metrics['train_loss'][:, -1], 4).tolist()}, {seconds:.0f}s", flush=True)
    return res, seconds


def images01(x, low, high):
    """Model-scale images back to ``[0, 1]``, clipped (the classifier's and the grids' scale)."""
    return np.clip((np.asarray(x, np.float64) - low) / (high - low), 0.0, 1.0)


def vae_model(config, raw):
    """The VAE of ``config.vae`` for ``raw``'s images: MLP encoder/decoder, a categorical decoder over
    the ``config.num_levels`` pixel levels (Kingma & Welling 2014)."""
    c = config.vae
    return VAE(dim=int(np.prod(raw.input_shape)), latent_dim=int(c.latent_dim), hidden_dims=tuple(c.hidden_dims),
               decoder="categorical", num_levels=int(config.num_levels), low=0.0, high=1.0,
               dropout_rate=float(c.dropout_rate))


def vae_evaluator(config, model, x_test):
    """Jitted ``(params, key) -> (ELBO, IWAE-k, rate, distortion)`` per test example (nats); the ELBO,
    rate and distortion averaged over ``elbo_samples`` reparameterised draws."""
    c = config.vae
    x = jnp.asarray(x_test)

    @jax.jit
    def evaluate(params, key):
        k_e, k_i = jax.random.split(key)
        rec, kl = jax.vmap(lambda k: vae_lib.elbo_terms(model, params, x, k))(
            jax.random.split(k_e, int(c.elbo_samples)))
        rec, kl = rec.mean(0), kl.mean(0)
        return rec - kl, iwae_bound(model, params, x, k_i, int(c.iwae_samples)), kl, -rec

    return evaluate


def vae_family(config, raw, run_dir, num_samples):
    """Train the beta = 1 VAE; per run: ELBO and IWAE-k bits/dim of the (discrete) test images, samples
    (the decoder's mean image of prior draws)."""
    model = vae_model(config, raw)
    res, seconds = timed_sweep(family_train_config(config, "vae"), make_vae_task(model, beta=1.0), raw, run_dir,
                               "VAE (beta=1)")
    evaluate = vae_evaluator(config, model, raw.x_test)
    dims = int(np.prod(raw.input_shape))
    out = []
    for i, g in enumerate(res.grid):
        k_e, k_s = jax.random.split(jax.random.fold_in(jax.random.key(int(g["seed"])), 2))
        elbo_v, iwae_v, rate, dist = (np.asarray(v) for v in evaluate(run_params(res, i), k_e))
        xs = np.asarray(vae_lib.sample(model, run_params(res, i), k_s, num_samples, mean=True)).reshape(
            (-1,) + raw.input_shape)
        out.append({"bpd": np.asarray(vae_lib.discrete_bits_per_dim(iwae_v, dims)), "samples": np.clip(xs, 0, 1),
                    "extra": {"elbo_bits_per_dim": float(np.mean(vae_lib.discrete_bits_per_dim(elbo_v, dims))),
                              "test_rate": float(rate.mean()), "test_distortion": float(dist.mean())}})
    return res, seconds, out, evaluate


def rate_distortion(config, raw, run_dir, beta_one):
    """The VAE trained at every ``beta`` of ``config.betas`` — ONE sweep, ``beta`` a vmapped grid
    key — with test rate and distortion (nats, mean over seeds) and the ELBO in bits/dim.
    ``beta_one`` (the main VAE's numbers) is reused for beta = 1."""
    model = vae_model(config, raw)
    evaluate = vae_evaluator(config, model, raw.x_test)
    dims = int(np.prod(raw.input_shape))
    betas = [float(b) for b in config.betas]
    todo = [b for b in betas if not (b == 1.0 and beta_one is not None)]
    found = {}
    if todo:
        res, _ = timed_sweep(family_train_config(config, "vae"), make_vae_task(model), raw, run_dir,
                             f"VAE (beta={', '.join(f'{b:g}' for b in todo)})", beta=todo)
        per = {b: ([], [], []) for b in todo}
        for i, g in enumerate(res.grid):
            e, _, r, d = (np.asarray(v) for v in evaluate(run_params(res, i),
                                                          jax.random.fold_in(jax.random.key(int(g["seed"])), 2)))
            rate, dist, bpd = per[float(g["beta"])]
            rate.append(r.mean()), dist.append(d.mean()), bpd.append(np.mean(vae_lib.discrete_bits_per_dim(e, dims)))
        found = {b: {"rate": float(np.mean(r)), "distortion": float(np.mean(d)), "elbo_bits_per_dim": float(np.mean(e))}
                 for b, (r, d, e) in per.items()}
    if beta_one is not None and 1.0 in betas:
        found[1.0] = beta_one
    return [{"beta": b, **found[b]} for b in betas]


def flow_family(config, raw, x_test_u, run_dir, num_samples):
    """Train RealNVP on freshly dequantised batches; per run: exact bits/dim of the dequantised test
    images, samples clipped to ``[0, 1]``."""
    c, levels = config.flow, int(config.num_levels)
    dims = int(np.prod(raw.input_shape))
    model = RealNVP(dim=dims, num_couplings=int(c.num_couplings), hidden_dims=tuple(c.hidden_dims),
                    logit_alpha=float(c.logit_alpha), dropout_rate=float(c.dropout_rate))
    res, seconds = timed_sweep(family_train_config(config, "flow"), make_flow_task(model, num_levels=levels), raw,
                               run_dir, "RealNVP")
    x = jnp.asarray(x_test_u.reshape(len(x_test_u), -1))
    log_prob = jax.jit(lambda p: model.apply({"params": p}, x))
    draw = jax.jit(lambda p, k: model.apply({"params": p}, k, num_samples, method=model.sample))
    out = []
    for i, g in enumerate(res.grid):
        bpd = np.asarray(bits_per_dim(log_prob(run_params(res, i)), dims, levels))
        xs = np.asarray(draw(run_params(res, i), jax.random.fold_in(jax.random.key(int(g["seed"])), 3)))
        out.append({"bpd": bpd, "samples": images01(xs, 0.0, 1.0).reshape((-1,) + raw.input_shape)})
    return res, seconds, out


def pooled_levels(raw, factor: int, levels: int):
    """Images average-pooled over ``factor x factor`` blocks and put back on the ``K``-level grid
    ``round(mean (K - 1)) / (K - 1)`` (a smaller version of the same digits; ``factor = 1``: unchanged)."""
    if factor == 1:
        return raw

    def pool(x):
        n, h, w, c = x.shape
        y = x.reshape(n, h // factor, factor, w // factor, factor, c).mean((2, 4))
        return np.round(y * (levels - 1)) / (levels - 1)

    return data_lib.make_dataset(pool(raw.x_train), raw.y_train, pool(raw.x_test), raw.y_test, raw.num_classes,
                                 raw.name, {**raw.info, "pooled": factor})
