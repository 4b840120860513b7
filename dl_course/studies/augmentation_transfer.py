"""Learning from few labels: data augmentation, and pretraining + fine-tuning, vs from scratch.

The variants model is :func:`variants_task` below; the labelled pools and the source/target tasks
are ``dl_course.data.few_labels``.

With ``n`` labels per class (n in {5, 10, 20, 50}) on MNIST-1D (1D CNN) and on the 8x8 digits
(2D CNN), four variants of the same network are compared:

* ``scratch``: random init, plain minibatches.
* ``augment``: random init, every minibatch augmented afresh (``dl_course.data.augment``: random
  circular translation + Gaussian noise for MNIST-1D; random one-pixel shifts for digits) --
  the invariances the labels are too few to teach (Simard et al. 2003; Shorten & Khoshgoftaar 2019).
* ``finetune``: all layers but the classifier head initialised from a network pretrained on a
  *source* task, head re-initialised, everything trained (Yosinski et al. 2014, "How transferable
  are features in deep neural networks?").
* ``linear_probe``: the same initialisation, but only the head is trained (the pretrained features
  are frozen).

Source tasks: for MNIST-1D a *differently generated* MNIST-1D (generator seed, stronger iid and
correlated noise and shear: ``config.source_generator``), all 10 classes; for digits the *other
classes*: pretrain on digits 0-4, then the target task is digits 5-9 (five classes, relabelled 0-4).

Design. The four variants are independent copies of the network inside ONE model (params stacked
on a variant axis, ``vmap`` over it); the training loss is the sum of the copies' losses, so their
gradients decouple exactly and Adam, a per-coordinate rule, moves each copy exactly as if it were
trained alone (the linear probe's frozen layers get an exactly zero gradient through
``stop_gradient`` and so an exactly zero Adam update). All variants therefore see the same
minibatches and start from the same random head (common random numbers: paired comparisons).
The ``n`` labelled examples are tiled to a fixed pool size (a multiple of ``num_classes * n`` for
every n), so all n share one compiled program; sampling minibatches from per-epoch permutations of
the tiled pool weights every labelled example equally (at most ``pool / (num_classes n)`` copies of
an example per epoch). Replicates: ``subset_seeds`` (which examples are labelled) x ``seeds`` (init,
minibatch order and augmentation draws; the runs of a sweep).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from dl_course import models as models_lib
from dl_course import results
from dl_course.data import augment as augment_lib
from dl_course.data.few_labels import labelled_pool, pool_size, source_and_target
from dl_course.models.conv import resolve_conv_impl, with_conv_impl
from dl_course.train import losses, sweep
from dl_course.train.task import Task

# --------------------------------------------------------------------------- the variants model

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


# --------------------------------------------------------------------------- study


def _dataset_config(config, dataset: str):
    cfg = copy.deepcopy(config.train)
    spec = config.per_dataset[dataset]
    cfg.model = spec.model
    cfg.model_options = copy.deepcopy(spec.model_options)
    return cfg, spec


def pretrain(cfg, spec, source, pretrain_seed: int):
    """Train the network on the source task (one sweep); return (params of run 0, source test acc)."""
    pcfg = copy.deepcopy(cfg)
    pcfg.loss = "cross_entropy"
    pcfg.steps = int(spec.pretrain_steps)
    pcfg.learning_rates = [float(spec.pretrain_learning_rate)]
    pcfg.batch_size = int(spec.pretrain_batch_size)
    pcfg.eval_every = int(spec.pretrain_steps)
    # two runs (one per CPU device; a single run would be padded to two anyway); run 0 is used
    seeds = [int(pretrain_seed), int(pretrain_seed) + 1]
    res = sweep(pcfg, seeds=seeds, learning_rates=pcfg.learning_rates, data=source, progress=True)
    params = jax.tree.map(lambda a: a[0], res.params)
    return params, float(res.metrics["test_accuracy"][0, -1])


def run(config, run_dir: results.RunDir) -> dict:
    """Pretrain per dataset, then train all variants for every (n, labelled subset); plot; write."""
    from dl_course.plotting import classification as plots

    variants = tuple(config.variants)
    rows, arrays, headline, conventions = [], {}, {"source_test_accuracy": {}}, None
    for dataset in config.datasets:
        cfg, spec = _dataset_config(config, dataset)
        source, target = source_and_target(dataset, config.source_generator.to_dict(),
                                           int(config.digits_source_classes))
        pre, src_acc = pretrain(cfg, spec, source, int(config.pretrain_seed))
        headline["source_test_accuracy"][dataset] = src_acc
        model = models_lib.get(spec.model, num_outputs=target.num_classes, **spec.model_options.to_dict())
        kind = augment_lib.kind_for(target.input_shape)
        aug = augment_lib.make(kind, **config.augment_options[kind].to_dict())
        task = variants_task(model, target.num_classes, variants, pre, aug, cfg.conv_impl)
        size = pool_size(target.num_classes, config.labels_per_class)
        for n in config.labels_per_class:
            for s in config.subset_seeds:
                data = labelled_pool(target, int(n), int(s), size)
                res = sweep(cfg, task=task, data=data, progress=True)
                conventions = conventions or dict(res.conventions)
                for i, g in enumerate(res.grid):
                    for v in variants:
                        rows.append({"dataset": dataset, "labels_per_class": int(n), "variant": v,
                                     "seed": g["seed"], "subset_seed": int(s), "learning_rate": g["learning_rate"],
                                     "diverged": bool(res.diverged[i]),
                                     "test_accuracy": float(res.metrics[f"test_accuracy_{v}"][i, -1]),
                                     "train_accuracy": float(res.metrics[f"train_accuracy_{v}"][i, -1])})
                for v in variants:
                    arrays[f"{dataset}/n{n}/subset{s}/{v}/test_accuracy"] = res.metrics[f"test_accuracy_{v}"]
                arrays["steps"] = res.steps
    summary = {}
    for dataset in config.datasets:
        summary[dataset] = {}
        for v in variants:
            acc = [[r["test_accuracy"] for r in rows if r["dataset"] == dataset and r["variant"] == v
                    and r["labels_per_class"] == int(n)] for n in config.labels_per_class]
            summary[dataset][v] = {"labels_per_class": [int(n) for n in config.labels_per_class],
                                   "mean": [float(np.mean(a)) for a in acc], "std": [float(np.std(a)) for a in acc]}
    headline["test_accuracy"] = summary
    print(f"{'dataset':>8} {'variant':>13} " + " ".join(f"n={int(n):<10d}" for n in config.labels_per_class))
    for dataset, by_v in summary.items():
        for v, s in by_v.items():
            print(f"{dataset:>8} {v:>13} " + " ".join(f"{m:.3f}±{e:.3f} " for m, e in zip(s["mean"], s["std"])))
    run_dir.figure("accuracy_vs_labels.png", plots.accuracy_vs_labels(summary, headline["source_test_accuracy"]))
    conventions.update({
        "variants": "independent copies of one network trained in one program (summed loss; Adam per coordinate "
                    "=> identical to separate training); shared minibatches and head init",
        "pool": "the n*num_classes labelled examples tiled to a fixed pool size; minibatches from its per-epoch "
                "permutations",
        "replicates": "subset_seeds (labelled examples) x seeds (init, minibatch order, augmentation)",
        "pretraining": "one network per dataset (run 0 of seeds [pretrain_seed, pretrain_seed+1]) trained on the "
                       "source task with Adam at per_dataset.<dataset>.pretrain_learning_rate; fine-tune/probe reuse "
                       "every layer except the last Dense (re-initialised)",
        "sources": {"mnist1d": f"MNIST-1D regenerated with {config.source_generator.to_dict()}",
                    "digits": f"digits classes 0..{config.digits_source_classes - 1}; target: the others, relabelled"},
        "augmentation": {k: v.to_dict() for k, v in config.augment_options.items()},
        "conv_impl": resolve_conv_impl(config.train.conv_impl),
    })
    results.write_results(run_dir, config, "augmentation_transfer", conventions, rows, headline, arrays)
    return headline

