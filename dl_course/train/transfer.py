"""Transfer-learning variants of one network trained side by side: from scratch, with
augmentation, fine-tuned from pretrained features, and a linear probe on frozen features.

Yosinski et al. (2014), "How transferable are features in deep neural networks?" (fine-tuning and
frozen features); Simard et al. (2003) and Shorten & Khoshgoftaar (2019) for augmentation. The
variants are independent copies of the network inside ONE Task (parameters stacked on a variant
axis, ``vmap`` over it); the loss is the sum of the copies' losses, so their gradients decouple
exactly, and a per-coordinate rule such as Adam moves each copy exactly as if it were trained
alone. The linear probe's frozen layers get an exactly zero gradient through ``stop_gradient``.
All variants see the same minibatches and start from the same random head (paired comparisons).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.models.conv import with_conv_impl
from dl_course.train import losses
from dl_course.train.task import Task

VARIANTS = ("scratch", "augment", "finetune", "linear_probe")

def head_name(params) -> str:
    """The classifier head: the ``Dense_i`` layer with the largest ``i`` (the last linear layer of
    ``cnn1d`` / ``cnn2d``)."""
    dense = [k for k in params if k.startswith("Dense_")]
    if not dense:
        raise ValueError(f"no Dense layer among {sorted(params)}")
    return max(dense, key=lambda k: int(k.split("_")[1]))

def variants_task(model, num_classes: int, variants, pretrained, augmentation, conv_impl: str = "auto") -> Task:
    """A Task training one independent copy of ``model`` per variant (see module docstring).

    ``pretrained``: params of ``model`` trained on the source task (their head is not used).
    Metrics: ``accuracy_<variant>`` and ``loss_<variant>``; the loss is the sum over variants.
    """
    variants = tuple(variants)
    nv = len(variants)
    per_example = losses.get("cross_entropy")
    use_pre = np.array([v in ("finetune", "linear_probe") for v in variants])
    frozen = np.array([v == "linear_probe" for v in variants])
    augmented = [v == "augment" for v in variants]
    head = head_name(pretrained)

    def _bcast(mask, leaf):
        return jnp.asarray(mask).reshape((nv,) + (1,) * (leaf.ndim - 1))

    def init(key, x):
        p = model.init({"params": key, "dropout": key}, x)["params"]
        stacked = jax.tree.map(lambda a: jnp.broadcast_to(a, (nv,) + a.shape), p)
        out = {}
        for name, sub in stacked.items():
            if name == head:
                out[name] = sub
            else:
                out[name] = jax.tree.map(lambda a, q: jnp.where(_bcast(use_pre, a), jnp.asarray(q)[None], a),
                                         sub, pretrained[name])
        return out, {}

    def _effective(params):
        return {name: sub if name == head else
                jax.tree.map(lambda a: jnp.where(_bcast(frozen, a), jax.lax.stop_gradient(a), a), sub)
                for name, sub in params.items()}

    def _logits(params, xs):
        return jax.vmap(lambda p, xv: model.apply({"params": p}, xv))(params, xs)

    def loss(params, model_state, batch, key, train):
        x = batch["x"]
        if train and any(augmented):
            xa = augmentation(jax.random.split(key)[0], x)
            xs = jnp.stack([xa if a else x for a in augmented])
        else:
            xs = jnp.broadcast_to(x, (nv,) + x.shape)
        out = _logits(_effective(params), xs)  # [V, B, C]
        per = jax.vmap(lambda o: jnp.mean(per_example(o, batch["y"], num_classes)))(out)
        acc = jax.vmap(lambda o: jnp.mean(losses.correct(o, batch["y"])))(out)
        metrics = {**{f"accuracy_{v}": acc[i] for i, v in enumerate(variants)},
                   **{f"loss_{v}": per[i] for i, v in enumerate(variants)}}
        return jnp.sum(per), (model_state, metrics)

    def apply(params, model_state, x):
        return _logits(params, jnp.broadcast_to(x, (nv,) + x.shape))

    return with_conv_impl(Task(init=init, loss=loss, apply=apply), conv_impl)
