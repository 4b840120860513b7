"""Patches of a flax ``nn.Conv`` input, for K-FAC on convolutions (KFC: Grosse & Martens 2016).

A convolution is a Dense layer shared over output positions: at position ``r`` the pre-activation
is ``s_r = patch_r · W̃`` with ``W̃ = [reshape(kernel, (Π k · C_in, C_out)); bias]``. K-FAC then
treats the ``R`` output positions of an example as the shared axis of the "expand" convention
(:mod:`dl_course.measures.curvature.kfac`): ``A = (1/(NR)) Σ_{n,r} ã_nr ã_nrᵀ`` over the patches, ``G = (1/N)
Σ_{n,r,c} g_nrc g_nrcᵀ`` over the output gradients (KFC's spatially-uncorrelated-derivatives and
spatial-homogeneity approximations, Grosse & Martens 2016 §3.1).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.linear import canonicalize_padding

_SPATIAL = "DHW"


def _tuple(v, nd, default=1):
    if v is None:
        return (default,) * nd
    if isinstance(v, int):
        return (v,) * nd
    return tuple(v)


def conv_patches(module: nn.Conv, x: jax.Array) -> jax.Array:
    """``[N, R, Π kernel_size · C_in]`` input patches of ``module`` on ``x`` (``[N, *spatial,
    C_in]``), ordered like ``module``'s kernel flattened row-major (spatial offsets, then input
    channel), ``R`` = number of output positions. Supports strides, input / kernel dilation and
    ``SAME`` / ``VALID`` / explicit padding; not grouped convolutions or circular / causal padding."""
    nd = len(module.kernel_size)
    if module.feature_group_count != 1:
        raise ValueError("K-FAC patches do not support grouped convolutions")
    padding = canonicalize_padding(module.padding, nd)
    if isinstance(padding, str) and padding not in ("SAME", "VALID"):
        raise ValueError(f"K-FAC patches support SAME / VALID / explicit padding, not {padding!r}")
    spatial = _SPATIAL[-nd:]
    spec = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    patches = jax.lax.conv_general_dilated_patches(
        x,
        tuple(module.kernel_size),
        _tuple(module.strides, nd),
        padding,
        lhs_dilation=_tuple(module.input_dilation, nd),
        rhs_dilation=_tuple(module.kernel_dilation, nd),
        dimension_numbers=spec,
        precision=jax.lax.Precision.HIGHEST,
    )  # features ordered (C_in, *kernel)
    n, cin, k = x.shape[0], x.shape[-1], math.prod(module.kernel_size)
    patches = patches.reshape((n, -1, cin, k))
    return jnp.swapaxes(patches, -1, -2).reshape((n, -1, k * cin))
