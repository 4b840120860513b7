"""Many independent one-hidden-layer networks of different widths in one module (for studies of
approximation vs width, e.g. universality: Cybenko 1989, Hornik 1991).

Each block is a standalone network; the blocks share no parameter and the loss of the stacked
outputs is the sum of the blocks' losses, so gradients decouple exactly and a per-coordinate rule
such as Adam moves each block exactly as if it were trained alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dl_course.models.common import activation


class WidthBlocks(nn.Module):
    """Independent one-hidden-layer networks ``f_j(x) = sum_{i in block j} v_i act(a_i . x + b_i) + c_j``,
    one block per (width, target) pair, blocks ordered width-major: output ``j = w_idx * T + t``.

    All hidden units form one ``[d, H]`` layer, ``H = sum_j width_j`` (one matmul); the read-out
    multiplies by ``v`` and sums each block's own units (a constant 0/1 ``[H, J]`` assignment
    matrix), so no parameter is shared between blocks. Initialisation per block, as for a
    standalone network of that width: ``a_i ~ N(0, I/d)`` (LeCun), ``v_i ~ N(0, 1/width)`` (LeCun for
    the read-out's fan-in), ``c_j = 0``, and ``b_i = -a_i . p_i`` with ``p_i`` uniform in the input box
    ``[-1, 1]^d``, so each unit's kink passes through a random point of the domain at every width.
    """

    widths: Sequence[int]
    num_targets: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        d = x.shape[1]
        sizes = [w for w in self.widths for _ in range(self.num_targets)]
        h_total = int(sum(sizes))
        a = self.param("hidden_kernel", nn.initializers.lecun_normal(), (d, h_total))

        def bias_init(key, shape):
            return -jnp.sum(a * jax.random.uniform(key, (d, h_total), minval=-1.0, maxval=1.0), axis=0)

        b = self.param("hidden_bias", bias_init, (h_total,))
        scale = jnp.asarray(np.repeat(1.0 / np.sqrt(sizes), sizes), jnp.float32)
        v = self.param("readout", lambda k, s: scale * jax.random.normal(k, s), (h_total,))
        c = self.param("readout_bias", nn.initializers.zeros, (len(sizes),))
        # block assignment: unit i belongs to block j = column of its 1 (a constant, not a parameter)
        assign = jnp.asarray(np.repeat(np.eye(len(sizes), dtype=np.float32), sizes, axis=0))  # [H, J]
        return (activation(self.activation)(x @ a + b) * v) @ assign + c

def block_index(width_idx: int, target_idx: int, num_targets: int) -> int:
    """Output column of the network of ``widths[width_idx]`` fitting ``targets[target_idx]``."""
    return width_idx * num_targets + target_idx
