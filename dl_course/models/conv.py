"""Convolutions as strided slices and one matrix product, for XLA's CPU backend.

XLA:CPU's convolution is slow for the small shapes of this course's CNNs, and slower still inside
the engine's ``lax.scan`` training loop. Measured on this project's 2-core machine: 500 Adam steps
x 4 runs of ``cnn1d`` on MNIST-1D (batch 100) took 122 CPU-s with ``lax.conv_general_dilated``
and 9.2 CPU-s sliced; 200 steps x 2 runs of ``resnet`` on digits 92 CPU-s with XLA's convolution.
The sliced form computes the same linear map (tests/models/test_conv.py checks forward and
gradient against ``lax.conv_general_dilated`` for every conv model). On accelerators XLA's
convolution (cuDNN etc.) is the right choice, hence ``conv_impl="auto"``.

The engine applies it through ``config.conv_impl`` (``dl_course.train.build``); any Task can be
wrapped with :func:`with_conv_impl`.
"""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

CONV_IMPLS = ("auto", "sliced", "xla")


def _channels_last(dn, nd: int) -> bool:
    spatial = tuple(range(1, nd + 1))
    return (tuple(dn.lhs_spec) == (0, nd + 1) + spatial and tuple(dn.out_spec) == (0, nd + 1) + spatial
            and tuple(dn.rhs_spec) == (nd + 1, nd) + tuple(range(nd)))


def sliced_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                                dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
    r"""Drop-in for ``lax.conv_general_dilated`` computing the convolution as ``prod(k)`` strided
    slices and one matrix product (im2col).

    For channels-last input ``x`` ``[N, *S, C]`` (zero-padded as ``padding`` says), kernel ``w``
    ``[*k, C, F]`` and strides ``s``:

    .. math:: y[n, o, f] = \sum_{\delta \in \prod_i \{0..k_i-1\}} \sum_c x[n, s \odot o + \delta, c]\, w[\delta, c, f]

    The slices ``x[:, s*o + delta, :]`` are stacked to ``[N, *O, prod(k), C]`` and contracted with
    ``w`` reshaped to ``[prod(k), C, F]``. Anything else (dilations, feature groups, other
    layouts) falls back to ``lax.conv_general_dilated``. Used as
    ``nn.Conv(..., conv_general_dilated=sliced_conv_general_dilated)``.
    """
    nd = lhs.ndim - 2
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    plain = (feature_group_count == 1 and kwargs.get("batch_group_count", 1) == 1
             and all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (rhs_dilation or ())))
    if not (plain and _channels_last(dn, nd)):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kwargs)
    k = rhs.shape[:nd]
    strides = tuple(window_strides)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:-1], k, strides, padding)
    x = jnp.pad(lhs, [(0, 0), *[tuple(p) for p in padding], (0, 0)])
    out = [(x.shape[1 + i] - k[i]) // strides[i] + 1 for i in range(nd)]
    taps = [x[(slice(None),) + tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, strides, out))]
            for offset in itertools.product(*(range(ki) for ki in k))]
    patches = jnp.stack(taps, axis=-2)  # [N, *O, prod(k), C], taps in row-major kernel order
    return jnp.einsum("...kc,kcf->...f", patches, rhs.reshape((-1,) + rhs.shape[-2:]), precision=precision)


def _sliced_conv_interceptor(next_fun, args, kwargs, context):
    """``nn.intercept_methods`` hook: every plain ``nn.Conv`` called inside uses the sliced conv."""
    m = context.module
    if (context.method_name == "__call__" and isinstance(m, nn.Conv) and m.conv_general_dilated is None
            and m.conv_general_dilated_cls is None):
        # Modules are frozen dataclasses; this instance lives only for the current apply/init.
        object.__setattr__(m, "conv_general_dilated", sliced_conv_general_dilated)
    return next_fun(*args, **kwargs)


def with_sliced_conv(fn):
    """``fn`` run with every plain ``nn.Conv`` inside computing its convolution sliced."""

    def wrapped(*args, **kwargs):
        with nn.intercept_methods(_sliced_conv_interceptor):
            return fn(*args, **kwargs)

    return wrapped


def resolve_conv_impl(conv_impl: str) -> str:
    """``"auto"`` -> ``"sliced"`` on the CPU backend, ``"xla"`` on accelerators (cuDNN etc.)."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv_impl {conv_impl!r}; valid: {', '.join(CONV_IMPLS)}")
    if conv_impl == "auto":
        return "sliced" if jax.default_backend() == "cpu" else "xla"
    return conv_impl


def with_conv_impl(task, conv_impl: str):
    """``task`` (any NamedTuple of functions ``init``/``loss``/``apply``, e.g. a
    ``dl_course.train.Task``) with every plain ``nn.Conv`` inside computed by
    :func:`sliced_conv_general_dilated` when ``conv_impl`` resolves to ``"sliced"``; unchanged
    otherwise."""
    if resolve_conv_impl(conv_impl) != "sliced":
        return task
    return task._replace(**{f: with_sliced_conv(getattr(task, f)) for f in ("init", "loss", "apply")
                            if getattr(task, f) is not None})
