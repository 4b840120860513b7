"""A small pre-activation-free ResNet (He et al. 2016) for small images, with optional batch norm."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from dl_course.models.common import activation


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (1x1 projection when the shape changes)."""

    channels: int
    stride: int = 1
    norm: bool = True
    act: str = "relu"

    @nn.compact
    def __call__(self, x, train: bool = False):
        act = activation(self.act)

        def norm(h):
            return nn.BatchNorm(use_running_average=not train, momentum=0.9)(h) if self.norm else h

        y = act(norm(nn.Conv(self.channels, (3, 3), strides=(self.stride, self.stride), padding="SAME",
                             use_bias=not self.norm)(x)))
        y = norm(nn.Conv(self.channels, (3, 3), padding="SAME", use_bias=not self.norm)(y))
        if x.shape[-1] != self.channels or self.stride != 1:
            x = norm(nn.Conv(self.channels, (1, 1), strides=(self.stride, self.stride), use_bias=not self.norm)(x))
        return act(x + y)


class ResNet(nn.Module):
    """Stem conv, one residual block per stage (stride 2 from the second stage), global average pool
    and a linear head. ``norm=True`` uses BatchNorm (statistics in the ``batch_stats`` collection,
    carried by the engine; eval mode uses running averages)."""

    stage_channels: Sequence[int] = (16, 32, 64)
    num_outputs: int = 10
    norm: bool = True
    activation: str = "relu"

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim == 3:
            x = x[..., None]
        act = activation(self.activation)
        x = nn.Conv(self.stage_channels[0], (3, 3), padding="SAME", use_bias=not self.norm)(x)
        if self.norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = act(x)
        for i, c in enumerate(self.stage_channels):
            x = ResidualBlock(c, stride=1 if i == 0 else 2, norm=self.norm, act=self.activation)(x, train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_outputs)(x)
