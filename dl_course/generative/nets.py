"""Score networks ``net(x, t, train=False) -> array shaped like x`` (flax.linen).

* ``ScoreMLP``: for flat data (2D toys, MNIST-1D's 40 features, flattened digits). Each hidden
  layer adds a learned projection of the time embedding before the activation.
* ``ScoreUNet``: a small U-Net (Ronneberger et al. 2015) in the style of the DDPM / NCSN++ models
  (Ho et al. 2020; Song et al. 2021): residual blocks with GroupNorm and SiLU, the time embedding
  added inside every block, stride-2 convolutions down and nearest-neighbour upsampling up, skip
  connections by concatenation. ``channels=(32, 64)`` suits 8x8 digits; ``(32, 64, 128)`` 28x28
  MNIST. Spatial sizes must be divisible by ``2^(len(channels) - 1)``.

Time enters through a Gaussian random Fourier embedding (Tancik et al. 2020; Song et al. 2021,
NCSN++): ``[sin(2 pi w t), cos(2 pi w t)]`` with fixed frequencies ``w ~ N(0, scale^2)``. The
frequencies are drawn from a fixed key inside the module (a constant, not a parameter): they are not
trained, and weight decay or the optimizer never touch them.

The raw output is turned into a score by ``losses.make_score_fn`` (noise prediction by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class GaussianFourierProjection(nn.Module):
    """``t [batch] -> [sin(2 pi w t), cos(2 pi w t)] [batch, embed_dim]``, ``w ~ N(0, scale^2)`` fixed."""

    embed_dim: int = 64
    scale: float = 16.0
    seed: int = 0

    def __call__(self, t):
        w = self.scale * jax.random.normal(jax.random.key(self.seed), (self.embed_dim // 2,), jnp.float32)
        proj = 2.0 * jnp.pi * t[:, None].astype(jnp.float32) * w[None, :]
        return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], axis=-1)


class TimeEmbedding(nn.Module):
    """Fourier features of ``t`` followed by ``Dense -> SiLU -> Dense`` (``embed_dim`` wide)."""

    embed_dim: int = 64
    fourier_scale: float = 16.0

    @nn.compact
    def __call__(self, t):
        h = GaussianFourierProjection(self.embed_dim, self.fourier_scale)(t)
        h = nn.silu(nn.Dense(self.embed_dim)(h))
        return nn.Dense(self.embed_dim)(h)


def _times(t, x):
    return jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])


class ScoreMLP(nn.Module):
    """MLP score network on flattened inputs: ``h <- SiLU(W h + V emb(t))`` per hidden layer."""

    hidden_dims: Sequence[int] = (128, 128, 128)
    embed_dim: int = 64
    fourier_scale: float = 16.0

    @nn.compact
    def __call__(self, x, t, train: bool = False):
        emb = nn.silu(TimeEmbedding(self.embed_dim, self.fourier_scale)(_times(t, x)))
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden_dims:
            h = nn.silu(nn.Dense(width)(h) + nn.Dense(width)(emb))
        out = nn.Dense(math.prod(x.shape[1:]))(h)
        return out.reshape(x.shape).astype(x.dtype)


def _groups(channels, num_groups):
    return math.gcd(channels, num_groups)


class ResBlock(nn.Module):
    """``x + Conv(SiLU(GN(Conv(SiLU(GN(x))) + Dense(emb))))`` (1x1 conv on the skip if widths differ)."""

    channels: int
    num_groups: int = 8

    @nn.compact
    def __call__(self, x, emb):
        h = nn.silu(nn.GroupNorm(_groups(x.shape[-1], self.num_groups))(x))
        h = nn.Conv(self.channels, (3, 3))(h)
        h = h + nn.Dense(self.channels)(emb)[:, None, None, :]
        h = nn.silu(nn.GroupNorm(_groups(self.channels, self.num_groups))(h))
        h = nn.Conv(self.channels, (3, 3))(h)
        skip = x if x.shape[-1] == self.channels else nn.Conv(self.channels, (1, 1))(x)
        return h + skip


class ScoreUNet(nn.Module):
    """Small U-Net score network for images ``[batch, H, W, C]`` (module docstring)."""

    channels: Sequence[int] = (32, 64)
    embed_dim: int = 64
    fourier_scale: float = 16.0
    num_groups: int = 8

    @nn.compact
    def __call__(self, x, t, train: bool = False):
        if x.ndim != 4:
            raise ValueError(f"ScoreUNet expects images [batch, H, W, C], got shape {x.shape}")
        factor = 2 ** (len(self.channels) - 1)
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(f"spatial size {x.shape[1:3]} not divisible by {factor} "
                             f"(len(channels) = {len(self.channels)})")
        emb = nn.silu(TimeEmbedding(self.embed_dim, self.fourier_scale)(_times(t, x)))
        h = nn.Conv(self.channels[0], (3, 3))(x)
        skips = []
        for i, c in enumerate(self.channels):
            h = ResBlock(c, self.num_groups)(h, emb)
            skips.append(h)
            if i < len(self.channels) - 1:
                h = nn.Conv(c, (3, 3), strides=(2, 2))(h)
        h = ResBlock(self.channels[-1], self.num_groups)(h, emb)
        for i in reversed(range(len(self.channels))):
            h = jnp.concatenate([h, skips.pop()], axis=-1)
            h = ResBlock(self.channels[i], self.num_groups)(h, emb)
            if i > 0:
                b, hh, ww, c = h.shape
                h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest")
                h = nn.Conv(self.channels[i - 1], (3, 3))(h)
        h = nn.silu(nn.GroupNorm(_groups(h.shape[-1], self.num_groups))(h))
        return nn.Conv(x.shape[-1], (3, 3))(h).astype(x.dtype)


SCORE_NETS = {"score_mlp": ScoreMLP, "score_unet": ScoreUNet}


def get_score_net(name: str, **kwargs) -> nn.Module:
    """Score network by name (``score_mlp``, ``score_unet``); unknown names raise listing valid ones."""
    if name not in SCORE_NETS:
        raise ValueError(f"unknown score network {name!r}; valid: {', '.join(sorted(SCORE_NETS))}")
    return SCORE_NETS[name](**kwargs)
