"""Variational autoencoders (Kingma & Welling 2014; Rezende et al. 2014) with the importance-weighted
bound (Burda, Grosse & Salakhutdinov 2016) and the beta-VAE objective (Higgins et al. 2017).

Model: ``z ~ N(0, I_q)``, ``x | z ~ p_theta(x | z)``; Gaussian encoder ``q_phi(z | x) = N(mu(x),
diag(sigma(x)^2))``. With ``z = mu + sigma * eps``, ``eps ~ N(0, I)`` (reparameterisation):

    ELBO(x)   = E_q[log p(x | z)] - KL(q(z | x) || N(0, I))  <=  log p(x),
    KL        = (1/2) sum_j (mu_j^2 + sigma_j^2 - 1 - 2 log sigma_j),
    IWAE_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)],  z_i ~ q i.i.d.,

with ``ELBO = IWAE_1 <= IWAE_k <= IWAE_K <= log p(x)`` for ``k <= K`` (Burda et al., Thm. 1) and
``IWAE_k -> log p(x)`` as ``k -> inf``. Training maximises the beta-ELBO ``E_q[log p(x|z)] - beta
KL``: ``beta`` trades distortion ``D = -E_q[log p(x|z)]`` for rate ``R = KL`` (Alemi et al. 2018);
``beta = 1`` is the ELBO.

Decoders (``decoder=``):

* ``"categorical"``: each pixel an independent categorical over its ``K`` levels (logits from the
  network), for data stored on the grid ``low + (high - low) k / (K - 1)`` (as ``dequantize``
  expects). The bound is then on the *discrete* log-likelihood and its bits/dim,
  ``-bound / (D ln 2)``, upper-bounds the discrete negative log-likelihood, as does the dequantised
  bits/dim of a continuous model (Theis et al. 2016): the same quantity, bounded from above twice.
* ``"gaussian"``: ``N(m(z), s^2 I)`` with one learned ``s`` (for continuous data; with linear
  encoder and decoder this is probabilistic PCA, Tipping & Bishop 1999, whose MLE the ELBO reaches
  at its optimum: ``tests/generative/test_generative_vae.py``).

Everything is per example, jit- and vmap-friendly; ``make_task`` wraps the beta-ELBO for
``dl_course.train.sweep``, with ``beta`` a grid key (``Task.hparams``): a rate-distortion curve is
one vmapped sweep over ``beta``, one compilation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dl_course.generative.likelihood import grid_index
from dl_course.train import Task

DECODERS = ("categorical", "gaussian")
_LOG_2PI = math.log(2 * math.pi)


class VAE(nn.Module):
    """Encoder ``x -> (mu, log_sigma)`` and decoder ``z -> p(x | z)``, MLPs with ``hidden_dims``
    (empty: linear maps). ``dim`` = D (inputs ``[n, ...]`` are flattened), ``latent_dim`` = q.
    ``dropout_rate``: dropout on the hidden layers with ``train=True`` (``rngs={"dropout": ...}``);
    the bounds are evaluated with ``train=False``."""

    dim: int
    latent_dim: int = 16
    hidden_dims: Sequence[int] = (256,)
    decoder: str = "categorical"
    num_levels: int = 17
    low: float = 0.0
    high: float = 1.0
    dropout_rate: float = 0.0

    def setup(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; valid: {', '.join(DECODERS)}")
        self.enc_hidden = [nn.Dense(w, name=f"enc_{i}") for i, w in enumerate(self.hidden_dims)]
        self.enc_out = nn.Dense(2 * self.latent_dim, name="enc_out")
        self.dec_hidden = [nn.Dense(w, name=f"dec_{i}") for i, w in enumerate(reversed(self.hidden_dims))]
        width = self.dim * self.num_levels if self.decoder == "categorical" else self.dim
        self.dec_out = nn.Dense(width, name="dec_out")
        self.drop = nn.Dropout(self.dropout_rate)
        if self.decoder == "gaussian":
            self.log_noise_std = self.param("log_noise_std", nn.initializers.zeros, ())

    def _hidden(self, h, layer, train):
        return self.drop(nn.silu(layer(h)), deterministic=not train or self.dropout_rate == 0.0)

    def encode(self, x, train: bool = False):
        """``(mu [n, q], log_sigma [n, q])`` of ``q(z | x)``."""
        h = x.reshape(x.shape[0], -1)
        for layer in self.enc_hidden:
            h = self._hidden(h, layer, train)
        mu, log_sigma = jnp.split(self.enc_out(h), 2, axis=-1)
        return mu, log_sigma

    def decode(self, z, train: bool = False):
        """Decoder output: logits ``[n, D, K]`` (categorical) or the mean ``[n, D]`` (gaussian)."""
        h = z
        for layer in self.dec_hidden:
            h = self._hidden(h, layer, train)
        out = self.dec_out(h)
        return out.reshape(z.shape[0], self.dim, self.num_levels) if self.decoder == "categorical" else out

    def log_likelihood(self, x, z, train: bool = False):
        """``log p(x | z)`` per example (nats), summed over the D pixels."""
        out = self.decode(z, train)
        flat = x.reshape(x.shape[0], -1)
        if self.decoder == "categorical":
            k = grid_index(flat, self.num_levels, self.low, self.high)
            log_probs = jax.nn.log_softmax(out, axis=-1)
            return jnp.sum(jnp.take_along_axis(log_probs, k[..., None], axis=-1)[..., 0], -1)
        s = self.log_noise_std
        return -0.5 * jnp.sum(((flat - out) * jnp.exp(-s)) ** 2 + 2 * s + _LOG_2PI, -1)

    def __call__(self, x):
        mu, _ = self.encode(x)
        return self.log_likelihood(x, mu)


def _gaussian_logpdf(z, mu, log_sigma):
    """``log N(z; mu, diag(exp(2 log_sigma)))`` summed over the last axis."""
    return -0.5 * jnp.sum(((z - mu) * jnp.exp(-log_sigma)) ** 2 + 2 * log_sigma + _LOG_2PI, -1)


def kl_to_standard_normal(mu, log_sigma):
    """``KL(N(mu, diag sigma^2) || N(0, I)) = (1/2) sum_j (mu_j^2 + sigma_j^2 - 1 - 2 log sigma_j)``."""
    return 0.5 * jnp.sum(mu ** 2 + jnp.exp(2 * log_sigma) - 1.0 - 2 * log_sigma, -1)


def elbo_terms(model: VAE, params, x, key, train: bool = False):
    """One-sample reparameterised ``(reconstruction log p(x|z), KL)`` per example, ``z = mu + sigma eps``;
    ``ELBO = reconstruction - KL`` (unbiased; the KL is analytic). ``train=True`` turns dropout on
    (masks drawn from ``key``)."""
    k_eps, k_enc, k_dec = jax.random.split(key, 3)
    mu, log_sigma = model.apply({"params": params}, x, train, method=model.encode, rngs={"dropout": k_enc})
    z = mu + jnp.exp(log_sigma) * jax.random.normal(k_eps, mu.shape, mu.dtype)
    rec = model.apply({"params": params}, x, z, train, method=model.log_likelihood, rngs={"dropout": k_dec})
    return rec, kl_to_standard_normal(mu, log_sigma)


def elbo(model: VAE, params, x, key, beta=1.0):
    """``E_q[log p(x|z)] - beta KL`` per example, one reparameterised sample (module docstring)."""
    rec, kl = elbo_terms(model, params, x, key)
    return rec - beta * kl


def log_importance_weights(model: VAE, params, x, key, num_samples: int):
    """``log w_i = log p(x | z_i) + log N(z_i; 0, I) - log q(z_i | x)``, ``z_i ~ q`` i.i.d.;
    shape ``[num_samples, n]``."""
    mu, log_sigma = model.apply({"params": params}, x, method=model.encode)
    eps = jax.random.normal(key, (num_samples,) + mu.shape, mu.dtype)
    z = mu + jnp.exp(log_sigma) * eps

    def one(z_i):
        rec = model.apply({"params": params}, x, z_i, method=model.log_likelihood)
        return rec + _gaussian_logpdf(z_i, 0.0, jnp.zeros_like(z_i)) - _gaussian_logpdf(z_i, mu, log_sigma)

    return jax.lax.map(one, z)


def iwae_bound(model: VAE, params, x, key, num_samples: int):
    """``IWAE_k = log (1/k) sum_i w_i`` per example (Burda et al. 2016, Eq. (8)), ``k = num_samples``;
    an estimate of a lower bound on ``log p(x)`` that tightens with ``k``."""
    log_w = log_importance_weights(model, params, x, key, num_samples)
    return jax.scipy.special.logsumexp(log_w, axis=0) - jnp.log(num_samples)


def sample(model: VAE, params, key, num_samples: int, *, mean: bool = True):
    """Images from the prior: ``z ~ N(0, I)``, then the decoder's mean (``mean=True``: for the
    categorical decoder the expected grid value ``sum_k p_k (low + (high - low) k / (K - 1))``) or a
    draw of ``p(x | z)`` (``mean=False``). Returns ``[num_samples, D]``."""
    k_z, k_x = jax.random.split(key)
    z = jax.random.normal(k_z, (num_samples, model.latent_dim))
    out = model.apply({"params": params}, z, method=model.decode)
    if model.decoder == "categorical":
        grid = model.low + (model.high - model.low) * jnp.arange(model.num_levels) / (model.num_levels - 1)
        if mean:
            return jnp.sum(jax.nn.softmax(out, -1) * grid, -1)
        return grid[jax.random.categorical(k_x, out, axis=-1)]
    if mean:
        return out
    noise_std = jnp.exp(params["log_noise_std"])
    return out + noise_std * jax.random.normal(k_x, out.shape, out.dtype)


def discrete_bits_per_dim(log_p, num_dims: int):
    """``-log p / (D ln 2)``: bits per dimension of a log-probability of discrete data (nats)."""
    return -log_p / (num_dims * jnp.log(2.0))


def make_task(model: VAE, *, beta: float = 1.0) -> Task:
    """beta-VAE Task for ``dl_course.train.sweep``: loss ``-mean_n [rec_n - beta KL_n] / D`` (nats per
    dimension; ``beta = 1``: the negative ELBO), one reparameterised sample per example from the
    step's key. Metrics (batch means): ``rate`` (KL, nats), ``distortion`` (``-rec``, nats),
    ``elbo_bits_per_dim`` (the beta = 1 ELBO in bits/dim, ``discrete_bits_per_dim`` for the
    categorical decoder). ``beta``: the value of runs that do not sweep it; a sweep with a ``beta``
    grid key trains each run with its own (traced: no recompilation); evaluation-mode losses use
    the Task's ``beta`` (the engine passes grid keys in train mode only; ``rate`` and
    ``distortion`` do not depend on it). Build the Task once and pass the same object to every
    sweep: compiled programs are cached per Task object (``dl_course.train.sweep``).
    ``apply(params, {}, x)`` returns the encoder's ``(mu, log_sigma)``. ``batch["y"]`` is ignored."""

    default_beta = beta

    def init(key, x):
        return model.init(key, x)["params"], {}

    def apply(params, model_state, x):
        return model.apply({"params": params}, x, method=model.encode)

    def loss(params, model_state, batch, key, train, beta=None):
        x = batch["x"]
        d = int(np.prod(x.shape[1:]))
        rec, kl = elbo_terms(model, params, x, key, train)
        metrics = {"rate": jnp.mean(kl), "distortion": -jnp.mean(rec),
                   "elbo_bits_per_dim": jnp.mean(discrete_bits_per_dim(rec - kl, d))}
        b = default_beta if beta is None else beta
        return -jnp.mean(rec - b * kl) / d, (model_state, metrics)

    return Task(init=init, loss=loss, apply=apply, hparams=("beta",))
