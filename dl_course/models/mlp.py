"""Fully connected networks: the MLP and the linear model."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_course.models.common import activation, scaled_init


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, then a linear read-out of ``num_outputs``.

    Inputs are flattened. ``init_scale`` multiplies the LeCun-normal kernel initialisation
    (variance ``init_scale^2 / fan_in``): small scales give the "rich"/feature-learning regime,
    large scales the "lazy" regime (Chizat et al. 2019). Optional ``dropout`` after each hidden
    activation (rng stream ``"dropout"``) and optional ``batch_norm`` before each activation.
    ``dropout_rate`` (a call argument, may be traced) overrides ``dropout`` in train mode, so a
    grid can vmap over it: each unit is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)`` (inverted dropout, Srivastava et al. 2014); rate 0 is the identity.
    """

    width: int = 512
    depth: int = 2
    num_outputs: int = 10
    activation: str = "relu"
    init_scale: float = 1.0
    use_bias: bool = True
    dropout: float = 0.0
    batch_norm: bool = False
    widths: Sequence[int] | None = None  # overrides width/depth with explicit hidden widths

    @nn.compact
    def __call__(self, x, train: bool = False, dropout_rate=None):
        x = x.reshape((x.shape[0], -1))
        act = activation(self.activation)
        hidden = tuple(self.widths) if self.widths is not None else (self.width,) * self.depth
        for h in hidden:
            x = nn.Dense(h, use_bias=self.use_bias, kernel_init=scaled_init(self.init_scale))(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = act(x)
            if dropout_rate is not None:
                x = traced_dropout(self, x, dropout_rate, train)
            elif self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=scaled_init(self.init_scale))(x)


def traced_dropout(module: nn.Module, x, rate, train: bool):
    """Inverted dropout at a rate that may be a traced value (``nn.Dropout`` needs a Python
    float): ``x * m / (1 - rate)`` with ``m ~ Bernoulli(1 - rate)`` from the ``"dropout"`` stream in
    train mode, ``x`` in eval mode."""
    if not train:
        return x
    keep = 1.0 - jnp.asarray(rate, x.dtype)
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, x.shape)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class Linear(nn.Module):
    """Linear model ``f(x) = W x (+ b)`` on flattened inputs; ``num_outputs=1`` for binary tasks.

    ``init_scale=0`` starts from the origin, the setting of Soudry et al. 2018.
    """

    num_outputs: int = 10
    use_bias: bool = True
    init_scale: float = 1.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=scaled_init(self.init_scale))(x)
