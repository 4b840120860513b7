"""A normalising flow for vectors: RealNVP affine couplings (Dinh, Sohl-Dickstein & Bengio 2017) with
Glow's activation normalisation and invertible linear mixing (Kingma & Dhariwal 2018).

A flow is an invertible ``f: x -> z`` with tractable Jacobian; by the change of variables

    log p(x) = log N(f(x); 0, I) + log |det df/dx|,

exactly, and ``x = f^{-1}(z)``, ``z ~ N(0, I)`` samples. Each bijector returns ``(y, log|det|)``
per example and has an exact ``inverse``:

* ``LogitTransform`` (RealNVP, Sec. 4.1): data in ``[low, high]`` to ``u in [0, 1]``, then
  ``y = logit(alpha + (1 - 2 alpha) u)``; ``log|det| = sum_i [log(1 - 2 alpha) - log(high - low)
  - log p_i - log(1 - p_i)]`` with ``p = alpha + (1 - 2 alpha) u``.
* ``ActNorm``: ``y = x exp(log_scale) + bias``, ``log|det| = sum log_scale``, initialised to the
  identity (Glow initialises from a data batch; the engine's ``Task.init`` sees one example).
* ``InvertibleLinear``: ``y = W x`` with ``W = P L (U + diag(sign(s) exp(log|s|)))`` (Glow's LU
  parameterisation of the 1x1 convolution, here on vectors): ``log|det| = sum log|s|``; ``P`` and
  the initial ``W`` (a random rotation) are fixed constants of the module.
* ``AffineCoupling``: with a binary mask ``m``, ``y = m x + (1 - m) (x exp(s(m x)) + t(m x))``,
  ``log|det| = sum_i (1 - m_i) s_i``; ``s, t`` come from an MLP of the masked input, ``s =
  scale * tanh(.)`` bounded for stability; the last layer starts at zero so the flow starts at the
  identity. Masks alternate between even and odd coordinates.

``RealNVP`` chains them: ``[logit] -> {actnorm -> linear -> coupling} x num_couplings``. For discrete
data, train and evaluate on uniformly dequantised inputs (``likelihood.dequantize``); ``make_task``
does so with fresh noise at every step, and bits/dim follow from ``likelihood.bits_per_dim``.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from dl_course.generative.likelihood import bits_per_dim, dequantize
from dl_course.train import Task

_LOG_2PI = float(np.log(2 * np.pi))


def standard_normal_logpdf(z):
    """``log N(z; 0, I)`` per example of ``z [n, D]``: ``-(||z||^2 + D log 2 pi) / 2``."""
    return -0.5 * (jnp.sum(z ** 2, -1) + z.shape[-1] * _LOG_2PI)


class LogitTransform(nn.Module):
    """``[low, high] -> R``: ``y = logit(alpha + (1 - 2 alpha)(x - low)/(high - low))`` (module docstring)."""

    alpha: float = 0.05
    low: float = 0.0
    high: float = 1.0

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        u = (x - self.low) / (self.high - self.low)
        p = self.alpha + (1 - 2 * self.alpha) * u
        y = jnp.log(p) - jnp.log1p(-p)
        logdet = jnp.sum(np.log(1 - 2 * self.alpha) - np.log(self.high - self.low) - jnp.log(p) - jnp.log1p(-p), -1)
        return y, logdet

    def inverse(self, y):
        u = (jax.nn.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        return self.low + (self.high - self.low) * u


class ActNorm(nn.Module):
    """``y = x exp(log_scale) + bias`` per coordinate, identity at initialisation."""

    dim: int = 0

    def setup(self):
        self.log_scale = self.param("log_scale", nn.initializers.zeros, (self.dim,))
        self.bias = self.param("bias", nn.initializers.zeros, (self.dim,))

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return x * jnp.exp(self.log_scale) + self.bias, jnp.broadcast_to(jnp.sum(self.log_scale), x.shape[:1])

    def inverse(self, y):
        return (y - self.bias) * jnp.exp(-self.log_scale)


def _lu_init(dim: int, seed: int):
    """``P, L, U, s`` of a random rotation ``W0 = P L (U + diag(s))`` (strictly triangular ``L - I``, ``U``)."""
    w0 = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))[0]
    p, lower, upper = scipy.linalg.lu(w0)
    s = np.diag(upper).copy()
    return p, np.tril(lower, -1), np.triu(upper, 1), s


class InvertibleLinear(nn.Module):
    """``y = W x``, ``W = P (L + I) (U + diag(sign_s exp(log_abs_s)))`` (Kingma & Dhariwal 2018, Sec. 3.2)."""

    dim: int = 0
    seed: int = 0

    def setup(self):
        p, lower, upper, s = _lu_init(self.dim, self.seed)
        self.perm = jnp.asarray(p)
        self.sign_s = jnp.asarray(np.sign(s))
        self.lower = self.param("lower", lambda k: jnp.asarray(lower))
        self.upper = self.param("upper", lambda k: jnp.asarray(upper))
        self.log_abs_s = self.param("log_abs_s", lambda k: jnp.asarray(np.log(np.abs(s))))

    def _factors(self):
        eye = jnp.eye(self.dim)
        l_mat = jnp.tril(self.lower, -1) + eye
        u_mat = jnp.triu(self.upper, 1) + jnp.diag(self.sign_s * jnp.exp(self.log_abs_s))
        return self.perm.astype(l_mat.dtype), l_mat, u_mat

    def weight(self):
        """The matrix ``W``."""
        p, l_mat, u_mat = self._factors()
        return p @ l_mat @ u_mat

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return x @ self.weight().T, jnp.broadcast_to(jnp.sum(self.log_abs_s), x.shape[:1])

    def inverse(self, y):
        p, l_mat, u_mat = self._factors()
        v = y @ p          # rows: P^T y
        v = jax.scipy.linalg.solve_triangular(l_mat, v.T, lower=True, unit_diagonal=True)
        return jax.scipy.linalg.solve_triangular(u_mat, v, lower=False).T


class AffineCoupling(nn.Module):
    """RealNVP affine coupling with the even (``parity=0``) or odd coordinates as the fixed half."""

    dim: int = 0
    parity: int = 0
    hidden_dims: Sequence[int] = (128, 128)
    dropout_rate: float = 0.0

    def setup(self):
        self.mask = jnp.asarray(np.arange(self.dim) % 2 == self.parity, jnp.float32)
        self.hidden = [nn.Dense(h, name=f"hidden_{i}") for i, h in enumerate(self.hidden_dims)]
        self.drop = nn.Dropout(self.dropout_rate)
        self.out = nn.Dense(2 * self.dim, kernel_init=nn.initializers.zeros, name="out")
        self.scale = self.param("scale", nn.initializers.ones, (self.dim,))

    def _shift_log_scale(self, x_fixed, train):
        h = x_fixed
        for layer in self.hidden:
            h = self.drop(nn.silu(layer(h)), deterministic=not train or self.dropout_rate == 0.0)
        raw_s, t = jnp.split(self.out(h), 2, axis=-1)
        free = 1.0 - self.mask
        return free * self.scale * jnp.tanh(raw_s), free * t

    def __call__(self, x, train: bool = False):
        return self.forward(x, train)

    def forward(self, x, train: bool = False):
        s, t = self._shift_log_scale(x * self.mask, train)
        return x * jnp.exp(s) + t, jnp.sum(s, -1)

    def inverse(self, y, train: bool = False):
        s, t = self._shift_log_scale(y * self.mask, train)
        return (y - t) * jnp.exp(-s)


class RealNVP(nn.Module):
    """``[LogitTransform] -> {ActNorm -> InvertibleLinear -> AffineCoupling} x num_couplings`` on
    vectors of size ``dim`` (inputs of any shape ``[n, ...]`` are flattened). ``logit_alpha = 0``
    drops the logit step (data on R^D); ``actnorm`` / ``mixing`` switch the Glow layers off;
    ``dropout_rate`` applies dropout to the coupling networks' hidden layers with ``train=True``
    (rng stream ``"dropout"``; each dropout mask gives an exact, invertible flow; evaluation uses
    ``train=False``). Small data sets such as the 1347 8x8 digits overfit without it.

    Methods: ``forward(x) -> (z [n, D], log|det df/dx| [n])``, ``inverse(z) -> x [n, D]``,
    ``log_prob(x) -> [n]`` (nats, ``__call__``), ``sample(key, n) -> [n, D]``."""

    dim: int
    num_couplings: int = 8
    hidden_dims: Sequence[int] = (128, 128)
    actnorm: bool = True
    mixing: bool = True
    logit_alpha: float = 0.05
    low: float = 0.0
    high: float = 1.0
    dropout_rate: float = 0.0

    def setup(self):
        layers = [LogitTransform(self.logit_alpha, self.low, self.high)] if self.logit_alpha > 0 else []
        for i in range(self.num_couplings):
            if self.actnorm:
                layers.append(ActNorm(dim=self.dim))
            if self.mixing:
                layers.append(InvertibleLinear(dim=self.dim, seed=i))
            layers.append(AffineCoupling(dim=self.dim, parity=i % 2, hidden_dims=tuple(self.hidden_dims),
                                         dropout_rate=self.dropout_rate))
        self.layers = layers

    def forward(self, x, train: bool = False):
        h = x.reshape(x.shape[0], -1)
        total = jnp.zeros(h.shape[:1], h.dtype)
        for layer in self.layers:
            h, logdet = layer.forward(h, train) if isinstance(layer, AffineCoupling) else layer.forward(h)
            total = total + logdet
        return h, total

    def inverse(self, z):
        h = z
        for layer in reversed(self.layers):
            h = layer.inverse(h)
        return h

    def log_prob(self, x, train: bool = False):
        z, logdet = self.forward(x, train)
        return standard_normal_logpdf(z) + logdet

    def __call__(self, x, train: bool = False):
        return self.log_prob(x, train)

    def sample(self, key, n: int):
        return self.inverse(jax.random.normal(key, (n, self.dim)))


def make_task(model: RealNVP, *, num_levels: int = 0, low: float = 0.0, high: float = 1.0) -> Task:
    """Maximum-likelihood Task for ``dl_course.train.sweep``: loss ``-mean_n log p(x_n) / D`` (nats
    per dimension). With ``num_levels = K > 0`` every batch is uniformly dequantised with fresh noise
    from the step's key (``dequantize(key, x, K, low, high)``) and ``metrics["bits_per_dim"]`` is the
    batch's ``bits_per_dim``; with ``K = 0`` data are used as given. ``batch["y"]`` is ignored.
    ``apply(params, {}, x)`` returns ``log p(x)`` (no dequantisation, no dropout). Dropout (if the
    model has it) is active in train mode only."""

    def init(key, x):
        params = model.init(key, x.reshape(x.shape[0], -1))["params"]
        return params, {}

    def apply(params, model_state, x):
        return model.apply({"params": params}, x.reshape(x.shape[0], -1))

    def loss(params, model_state, batch, key, train):
        x = batch["x"]
        k_deq, k_drop = jax.random.split(key)
        if num_levels > 0:
            x = dequantize(k_deq, x, num_levels, low, high)
        log_p = model.apply({"params": params}, x.reshape(x.shape[0], -1), train=train, rngs={"dropout": k_drop})
        d = int(np.prod(x.shape[1:]))
        metrics = {"bits_per_dim": jnp.mean(bits_per_dim(log_p, d, num_levels, low, high))} if num_levels > 0 else {}
        return -jnp.mean(log_p) / d, (model_state, metrics)

    return Task(init=init, loss=loss, apply=apply)
