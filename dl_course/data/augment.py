"""Label-preserving data augmentations as pure, keyed, jittable JAX functions.

Every augmentation maps ``(key, x) -> x'`` with ``x'`` of the same shape and dtype, draws one
independent transformation per example from ``key``, and takes its strengths (shift ranges,
noise scales, probabilities) as arguments that may be traced arrays, so they can be vmapped or
swept without recompiling. They are applied to a *training minibatch inside the jitted step*
(a fresh draw every step, keyed by the step's PRNG key), never to the stored dataset.

1D signals (MNIST-1D, ``[n, L]`` or ``[n, L, C]``):
  * ``random_translate_1d``: circular shift by ``s ~ U{-m, ..., m}``; ``x'[t] = x[(t - s) mod L]``.
    MNIST-1D's generator itself translates its templates circularly (``np.roll``-like), so the
    augmentation stays on the data manifold of the generator.
  * ``gaussian_noise``: ``x' = x + sigma * eps``, ``eps ~ N(0, I)`` (the generator's iid noise).
Images (NHWC, ``[n, H, W, C]``):
  * ``random_shift_2d``: shift by ``(s_y, s_x) ~ U{-m..m}^2`` with zero fill, i.e. zero-pad by
    ``m`` and take a random ``H x W`` crop -- the "pad and random crop" of He et al. 2016 for
    CIFAR-10 (``m = 4``) and a one-pixel jitter for 8x8 digits (``m = 1``).
  * ``random_flip_lr``: mirror left-right with probability ``p`` (CIFAR-10 only: a mirrored
    digit is not the same digit).

``make(kind, **options)`` builds the composite augmentation of a dataset family;
``augmented_loss`` wraps a training loss so that it augments its minibatch in train mode.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]


def _integer_shifts(key, n: int, max_shift, dims: int = 1):
    """``[n, dims]`` integer shifts, uniform on ``{-m, ..., m}`` (``m`` may be traced)."""
    m = jnp.asarray(max_shift, jnp.int32)
    return jax.random.randint(key, (n, dims), -m, m + 1)


def random_translate_1d(key, x, max_shift) -> jax.Array:
    """Circularly shift each signal by an independent ``s ~ U{-max_shift, ..., max_shift}``.

    ``x'[i, t] = x[i, (t - s_i) mod L]`` along axis 1 of ``x`` (``[n, L]`` or ``[n, L, C]``).
    ``max_shift = 0`` is the identity.
    """
    n, length = x.shape[0], x.shape[1]
    s = _integer_shifts(key, n, max_shift)[:, 0]
    idx = jnp.mod(jnp.arange(length)[None, :] - s[:, None], length)  # [n, L]
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


def gaussian_noise(key, x, scale) -> jax.Array:
    """``x + scale * eps`` with ``eps ~ N(0, I)`` of the shape of ``x`` (``scale = 0``: identity)."""
    return x + jnp.asarray(scale, x.dtype) * jax.random.normal(key, x.shape, x.dtype)


def random_shift_2d(key, x, max_shift) -> jax.Array:
    """Shift each NHWC image by independent ``(s_y, s_x) ~ U{-m..m}^2``, filling with zeros.

    ``x'[i, r, c] = x[i, r - s_y, c - s_x]`` where the source pixel exists, else 0: the same as
    zero-padding by ``m`` and cropping a uniformly placed ``H x W`` window.
    """
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    s = _integer_shifts(key, n, max_shift, dims=2)
    rows = jnp.arange(h)[None, :] - s[:, :1]  # [n, H]
    cols = jnp.arange(w)[None, :] - s[:, 1:]  # [n, W]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]

    def one(img, r, c):
        return img[jnp.clip(r, 0, h - 1)][:, jnp.clip(c, 0, w - 1)]

    out = jax.vmap(one)(x, rows, cols)
    return jnp.where(valid[..., None], out, jnp.zeros((), x.dtype))


def random_flip_lr(key, x, prob=0.5) -> jax.Array:
    """Mirror each NHWC image left-right with probability ``prob``."""
    flip = jax.random.bernoulli(key, jnp.asarray(prob, jnp.float32), (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def compose(*augmentations: Augmentation) -> Augmentation:
    """Apply augmentations in order, each with its own key ``fold_in(key, position)``."""

    def apply(key, x):
        for i, aug in enumerate(augmentations):
            x = aug(jax.random.fold_in(key, i), x)
        return x

    return apply


def mnist1d_augmentation(max_shift=4, noise=0.1) -> Augmentation:
    """Random circular translation by up to ``max_shift`` samples, then iid Gaussian noise of
    scale ``noise`` (MNIST-1D is standardized to unit variance, so 0.1 is 10% of its std)."""
    return compose(lambda k, x: random_translate_1d(k, x, max_shift), lambda k, x: gaussian_noise(k, x, noise))


def image_augmentation(max_shift=1, flip=False) -> Augmentation:
    """Random zero-filled shift (pad-and-crop) by up to ``max_shift`` pixels, then, if ``flip``,
    a random left-right mirror (natural images only)."""
    augs = [lambda k, x: random_shift_2d(k, x, max_shift)]
    if flip:
        augs.append(lambda k, x: random_flip_lr(k, x, 0.5))
    return compose(*augs)


KINDS = {"mnist1d": mnist1d_augmentation, "image": image_augmentation}


def make(kind: str, **options) -> Augmentation:
    """The augmentation of family ``kind`` (``mnist1d`` or ``image``) with its ``options``."""
    if kind not in KINDS:
        raise ValueError(f"unknown augmentation {kind!r}; valid: {', '.join(sorted(KINDS))}")
    return KINDS[kind](**options)


def kind_for(input_shape: tuple) -> str:
    """The augmentation family of inputs of shape ``input_shape``: 1D signals ``[L]`` or
    ``[L, C]`` get ``mnist1d``, images ``[H, W, C]`` get ``image``."""
    return "image" if len(input_shape) == 3 else "mnist1d"


def augmented_loss(loss: Callable, augmentation: Augmentation) -> Callable:
    """Wrap a training loss ``loss(params, model_state, batch, key, train)`` (a Task's) so that in
    train mode the minibatch inputs are augmented first.

    The step key is split into ``(k_aug, k_rest)``: ``k_aug`` draws the augmentation (a fresh one
    every step, since the engine folds the step into the key) and ``k_rest`` goes to ``loss``
    (dropout). Eval mode (``train=False``) sees the clean inputs, so reported train/test metrics
    are on un-augmented data. Use as ``task._replace(loss=augmented_loss(task.loss, aug))``.
    """

    def wrapped(params, model_state, batch, key, train, **model_kwargs):
        if train:
            k_aug, key = jax.random.split(key)
            batch = {**batch, "x": augmentation(k_aug, batch["x"])}
        return loss(params, model_state, batch, key, train, **model_kwargs)

    return wrapped
