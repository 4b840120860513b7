"""Random ReLU features fitted by minimum-norm least squares: the model of double descent.

Belkin, Hsu, Ma & Mandal (2019, PNAS), "Reconciling modern machine-learning practice and the
classical bias–variance trade-off", §2 and Fig. 2: with ``p`` random features and ``n`` training
examples, the minimum-norm least-squares predictor's test risk rises to a peak at the
interpolation threshold ``p ≈ n`` and falls again for ``p ≫ n``; the norm of the solution peaks
there too. (Also Hastie, Montanari, Rosset & Tibshirani 2022 for the exact asymptotics; Advani &
Saxe 2017 for linear networks.)

Features: ``φ_j(x) = relu(w_jᵀx + b_j) / √p`` with ``w_j ~ N(0, I/d)``, ``b_j ~ N(0, 1)``, drawn
once per seed; the first ``p`` of them form the ``p``-feature model, so models along the sweep
are nested. Targets: one-hot class vectors ``Y`` (``n × K``). The estimator

    β̂ = Φ⁺ Y = argmin { ‖β‖_F : β minimizes ‖Φβ − Y‖_F² },

is the least-squares solution for ``p < n`` and the minimum-norm interpolant for ``p ≥ n``.
``dl_course.linalg.lstsq(relu_features(f, x, p), Y)`` computes it from an SVD of ``Φ`` (the
primal form, as ``numpy.linalg.lstsq``). ``feature_count_sweep`` uses the dual (kernel) form, exact for every
``p`` because ``Φ⁺ = Φᵀ (ΦΦᵀ)⁺``: with ``K = ΦΦᵀ`` (``n × n``) the predictions are
``f(X') = Φ' Φᵀ K⁺ Y`` and ``‖β̂‖_F² = tr(Yᵀ K⁺ Y)``. ``K`` is accumulated over blocks of
features as ``p`` grows, so the whole sweep costs one pass over the features plus one ``n × n``
eigendecomposition per feature count, and runs vmapped over seeds; ``feature_count_curve``
runs it in float64 for several feature draws and returns the train/test squared loss, 0–1 error
and ‖β̂‖ per draw and count.

Numerics: run it in float64 (``jax.experimental.enable_x64``). ``K``'s eigenvalues carry an
absolute error of about ``n·ε·λ_max``, so eigenvalues below ``rcond² · λ_max`` are treated as zero
with ``rcond = √(n ε) · 10`` by default (``3·10⁻⁷`` for ``n = 1000`` in float64): singular values of
``Φ`` smaller than that relative to the largest are dropped, where ``lstsq`` (``rcond = ε·max(n,p)``)
would keep them. For ``p < n``, ``K`` has exactly ``n − p`` zero eigenvalues, which this removes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import linalg


class ReluFeatures(NamedTuple):
    """Random first-layer weights ``w`` (``d × P``) and biases ``b`` (``P``) of ``P`` features."""

    w: jax.Array
    b: jax.Array


def draw_features(key, input_dim: int, num_features: int, dtype=jnp.float32) -> ReluFeatures:
    """``w_j ~ N(0, I/d)`` and ``b_j ~ N(0, 1)`` for ``j < num_features`` (Rahimi & Recht 2008
    style random features with a ReLU, as in Belkin et al. 2019, §2)."""
    kw, kb = jax.random.split(key)
    w = jax.random.normal(kw, (input_dim, num_features), dtype) / jnp.sqrt(jnp.asarray(input_dim, dtype))
    b = jax.random.normal(kb, (num_features,), dtype)
    return ReluFeatures(w, b)


def relu_features(features: ReluFeatures, x, num_features: int | None = None):
    """``Φ[i, j] = relu(w_jᵀ x_i + b_j) / √p`` for the first ``p = num_features`` features
    (default all), inputs flattened: ``(n, p)``."""
    w, b = features
    if num_features is not None:
        w, b = w[:, :num_features], b[:num_features]
    x = x.reshape(x.shape[0], -1).astype(w.dtype)
    return jax.nn.relu(x @ w + b) / jnp.sqrt(jnp.asarray(w.shape[1], w.dtype))


class SweepFit(NamedTuple):
    """Per feature count (leading axis, in the order of the counts): predictions and the norm."""

    train_pred: jax.Array  # (num_counts, n, K)
    test_pred: jax.Array  # (num_counts, m, K)
    coef_norm: jax.Array  # (num_counts,) ‖β̂‖_F
    rank: jax.Array  # (num_counts,) numerical rank of Φ used


def _check_counts(counts) -> np.ndarray:
    counts = np.asarray(counts, int)
    if counts.ndim != 1 or len(counts) == 0 or counts[0] < 1 or np.any(np.diff(counts) <= 0):
        raise ValueError("feature counts must be a non-empty strictly increasing list of positive ints, "
                         f"got {counts.tolist()}")
    return counts


def feature_count_sweep(features: ReluFeatures, x_train, y_train, x_test, counts, *, block: int = 128,
                        rcond: float | None = None) -> SweepFit:
    """The min-norm fits with the first ``p`` features for every ``p`` in ``counts`` (increasing).

    Dual form (module docstring): ``K_p = Φ_p Φ_pᵀ`` and ``K'_p = Φ'_p Φ_pᵀ`` are accumulated
    block by block (``block`` features at a time, the last block of a segment masked) while ``p``
    walks through ``counts``; at each count, ``K_p = U diag(λ) Uᵀ`` gives ``α = K_p⁺ Y``, the
    train predictions ``K_p α``, the test predictions ``K'_p α`` and ``‖β̂‖² = tr(Yᵀ α)``.
    The ``1/√p`` feature scale is applied at each count (``K_p`` divided by ``p``). Jit-able and
    vmappable over ``features`` (one seed per draw). ``y_train``: one-hot ``(n, K)``.
    """
    counts = _check_counts(counts)
    w, b = features
    if counts[-1] > w.shape[1]:
        raise ValueError(f"largest count {counts[-1]} exceeds the {w.shape[1]} features drawn")
    dtype = w.dtype
    n = x_train.shape[0]
    x_tr = x_train.reshape(n, -1).astype(dtype)
    x_te = x_test.reshape(x_test.shape[0], -1).astype(dtype)
    y = y_train.astype(dtype)
    pad = block
    w = jnp.pad(w, ((0, 0), (0, pad)))
    b = jnp.pad(b, (0, pad))
    tol = (10.0 * np.sqrt(n * float(jnp.finfo(dtype).eps))) ** 2 if rcond is None else rcond**2

    def add_block(start, stop, carry):
        k_tr, k_te = carry
        wb = jax.lax.dynamic_slice_in_dim(w, start, block, axis=1)
        bb = jax.lax.dynamic_slice_in_dim(b, start, block)
        mask = (start + jnp.arange(block) < stop).astype(dtype)
        f_tr = jax.nn.relu(x_tr @ wb + bb) * mask
        f_te = jax.nn.relu(x_te @ wb + bb) * mask
        return k_tr + f_tr @ f_tr.T, k_te + f_te @ f_tr.T

    def at_count(carry, bounds):
        lo, hi = bounds
        num_blocks = (hi - lo + block - 1) // block
        carry = jax.lax.fori_loop(0, num_blocks, lambda i, c: add_block(lo + i * block, hi, c), carry)
        k_tr, k_te = carry
        scale = hi.astype(dtype)
        lam, u = linalg.eigh(k_tr / scale)
        keep = lam > tol * lam[-1]
        inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
        alpha = u @ (inv[:, None] * (u.T @ y))
        fit = SweepFit(train_pred=(k_tr / scale) @ alpha, test_pred=(k_te / scale) @ alpha,
                       coef_norm=jnp.sqrt(jnp.maximum(jnp.sum(y * alpha), 0.0)), rank=jnp.sum(keep))
        return carry, fit

    zeros = (jnp.zeros((n, n), dtype), jnp.zeros((x_te.shape[0], n), dtype))
    bounds = (jnp.asarray(np.concatenate([[0], counts[:-1]]), jnp.int32), jnp.asarray(counts, jnp.int32))
    _, fits = jax.lax.scan(at_count, zeros, bounds)
    return fits


def squared_loss(pred, y_onehot):
    """Mean over examples of ``‖f(x) − y‖²`` (summed over the ``K`` outputs)."""
    return jnp.mean(jnp.sum((pred - y_onehot) ** 2, axis=-1), axis=-1)


def zero_one_error(pred, labels):
    """Fraction of examples whose largest output is not the label."""
    return jnp.mean(jnp.argmax(pred, axis=-1) != labels, axis=-1)


def feature_count_curve(x_train, y_train, x_test, y_test, num_classes: int, counts, seeds, *,
                        block: int = 128) -> dict[str, np.ndarray]:
    """Min-norm fits on one-hot targets for every count in ``counts`` and every feature draw
    ``PRNGKey(seed)``, in one ``jax.jit(jax.vmap(...))`` float64 program (see the numerics note
    above): dict of ``[seed, count]`` arrays ``train_mse``, ``test_mse`` (:func:`squared_loss`),
    ``train_error``, ``test_error`` (:func:`zero_one_error`), ``coef_norm`` (‖β̂‖_F) and ``rank``.
    ``y_train`` / ``y_test`` are integer labels."""
    counts = _check_counts(counts)
    with jax.enable_x64(True):
        x_tr = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
        x_te = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
        y_tr, y_te = np.eye(num_classes)[y_train], np.eye(num_classes)[y_test]

        def one(key):
            feats = draw_features(key, x_tr.shape[1], int(counts[-1]), jnp.float64)
            fit = feature_count_sweep(feats, x_tr, y_tr, x_te, counts, block=block)
            return {"train_mse": squared_loss(fit.train_pred, y_tr), "test_mse": squared_loss(fit.test_pred, y_te),
                    "train_error": zero_one_error(fit.train_pred, y_train),
                    "test_error": zero_one_error(fit.test_pred, y_test), "coef_norm": fit.coef_norm, "rank": fit.rank}

        keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
        return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(keys).items()}
