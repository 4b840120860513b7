"""Convolutional networks: a 1D CNN for MNIST-1D and a LeNet-style 2D CNN."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from dl_course.models.common import activation


class CNN1D(nn.Module):
    """1D CNN for MNIST-1D in the spirit of Greydanus & Kobak (3 conv layers, then a linear head).

    Input ``[n, length]`` or ``[n, length, channels]``. Each conv layer: kernel ``kernel_size``,
    ``channels`` filters, stride ``stride``, activation. The paper's CNN (25 channels, kernel 5,
    stride 2 after the first layer) reaches about 94% test accuracy on MNIST-1D.
    """

    channels: Sequence[int] = (25, 25, 25)
    kernel_size: int = 5
    strides: Sequence[int] = (1, 2, 2)
    num_outputs: int = 10
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim == 2:
            x = x[..., None]
        act = activation(self.activation)
        for c, s in zip(self.channels, self.strides):
            x = nn.Conv(c, (self.kernel_size,), strides=(s,), padding="SAME")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = act(x)
        x = x.reshape((x.shape[0], -1))
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs)(x)


class CNN2D(nn.Module):
    """LeNet-style 2D CNN: [conv 3x3 -> act -> 2x2 avg-pool] per entry of ``channels``, a hidden
    dense layer of ``hidden`` units, and a linear head. Input ``[n, H, W, C]`` (NHWC)."""

    channels: Sequence[int] = (16, 32)
    hidden: int = 128
    num_outputs: int = 10
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        act = activation(self.activation)
        for c in self.channels:
            x = nn.Conv(c, (3, 3), padding="SAME")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = act(x)
            if x.shape[1] >= 2 and x.shape[2] >= 2:
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = act(nn.Dense(self.hidden)(x))
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs)(x)
