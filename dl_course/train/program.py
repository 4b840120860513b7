"""The per-run training program: init, one optimizer step, evaluation, and a compiled chunk.

Everything here is written for ONE run; ``dl_course.train.sweep`` vmaps it over the grid. The
step loop is a ``lax.scan`` over ``eval_every`` steps nested in a scan over evaluation intervals,
so a chunk of training with its evaluations is a single XLA program.

Minibatches: at epoch ``e`` the training set is permuted by ``order(fold_in(data_key, e), n)``
(``SHUFFLES[config.shuffle]``: the sort-free ``dl_course.data.index_shuffle`` by default, or
``jax.random.permutation``) and consumed in order; the last incomplete batch of an epoch is
dropped. ``batch_size = 0`` is
full-batch gradient descent. The permutation is kept in the state and redrawn only at epoch
boundaries, under a ``lax.cond`` on the step counter shared by all runs of a sweep (an unbatched
predicate, so vmap keeps it a real branch: a vmapped sort per step would cost more than a small
model's step).
Divergence: a run whose loss or state (parameters, optimizer state, model state) becomes non-finite
— or whose parameters' squared norm overflows (:func:`finite_state`) — is flagged ``diverged`` and
frozen at its last finite state (its step counter still advances).
Training does not pay for that check per step: inside a chunk every step is applied unconditionally
(``train_step(..., guard=False)``: no per-step select of new or old state behind a reduction over
the update, which cost 8-9% of a step, ``benchmarks/bench_step_anatomy.py``). Per step only the
finiteness of the already computed loss is accumulated; at each evaluation point a run whose loss
was non-finite in the interval, or whose state is non-finite now, is set back to its ``anchor`` (its
state at the interval's start) and marked ``pending`` and ``diverged``, and
``dl_course.train.exact_stop`` replays it from the anchor with the check after every step
(``guard=True``), which finds the exact last finite state. A non-finite value does not leave the
state by arithmetic (NaN and inf propagate through every rule of ``dl_course.optim``), so the
per-interval check sees every non-finite step the per-step check would reject; a parameter norm
past the overflow that came back under it within the interval (never seen) would be missed. Runs
that are already frozen (diverged, stopped, pending) also take the interval's steps and are set
back to their anchor before the evaluation, so they are evaluated in their frozen state, as before.
Target stop: at an evaluation point where a run's train loss is <= the target (and/or its train
accuracy >= the target; ``targets`` of ``run_chunk``, traced, 0 = off) the run is frozen like a
diverged one — parameters, optimizer and model state no longer change, while the other runs of the
sweep continue in the same program — and marked ``pending``; it keeps, as ``anchor``, its state at
the previous evaluation point. ``dl_course.train.exact_stop`` later replays the pending runs from
their anchors with a check after every step, so a converged run ends at the FIRST step whose train
loss meets the target (``stopped_at``), not at the evaluation point after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dl_course.data.index_shuffle import shuffled_range
from dl_course.train.gradient_penalty import sub_batch_gradient_penalty
from dl_course.train.hooks import HookContext
from dl_course.train.state import TrainState, anchor_of, stream

# Hyperparameters the engine itself consumes (all others go to the optimizer factory).
ENGINE_HPARAMS = ("learning_rate", "random_label_fraction", "l2", "sgd_regularizer", "dropout_rate")
#: Grid keys the engine hands to the model's call in train mode (``task.loss(..., **kwargs)``); a
#: Task adds its own (``Task.hparams``).
MODEL_HPARAMS = ("dropout_rate",)


def _permutation(key, n):
    return jax.random.permutation(key, n)


#: ``config.shuffle`` -> (key, n) -> the epoch's order of the n training examples.
#: ``index_shuffle`` (default): a keyed pseudo-random permutation computed elementwise without a
#: sort (``dl_course.data.index_shuffle``; ~20x cheaper on CPU). ``permutation``: a uniform
#: permutation by ``jax.random.permutation`` (sorts of random keys; on CPU ~0.7 ms per 4000
#: examples). The two give different (equally valid) example orders, so results differ.
SHUFFLES = {"index_shuffle": shuffled_range, "permutation": _permutation}


@dataclasses.dataclass(frozen=True)
class Program:
    """Static description of a run's computation (hashable parts only in the jit cache keys)."""

    task: Any
    factory: Callable  # optimizer factory(learning_rate, **hparams)
    optimizer_options: dict
    schedule: Callable  # step -> multiplier
    hooks: dict
    n_train: int
    batch_size: int  # 0: full batch
    eval_every: int
    num_classes: int
    eval_chunk_train: int
    eval_chunk_test: int
    num_eval_train: int
    num_eval_test: int
    shuffle: Callable = shuffled_range  # (key, n) -> the epoch's order; a value of SHUFFLES
    regularizer_batch_size: int = 0  # sub-batch size of the sgd_regularizer term (0: the whole batch)


def _tx(prog: Program, hparams: dict, step):
    lr = hparams["learning_rate"] * prog.schedule(step)
    opt_hp = {k: v for k, v in hparams.items() if k not in ENGINE_HPARAMS and k not in prog.task.hparams}
    tx = prog.factory(learning_rate=lr, **prog.optimizer_options, **opt_hp)
    return optax.with_extra_args_support(tx)


def randomize_labels_in_graph(key, y, fraction, num_classes):
    """Exactly ``round(fraction * n)`` labels replaced by uniform random classes (traced fraction).

    The examples are the first ones of a key-determined permutation, so for one key the corrupted
    set grows monotonically with ``fraction`` (runs with p=0.2 and p=0.4 share the first 20%).
    """
    n = y.shape[0]
    k_perm, k_lab = jax.random.split(key)
    rank = jnp.argsort(jax.random.permutation(k_perm, n))
    chosen = rank < jnp.round(fraction * n)
    return jnp.where(chosen, jax.random.randint(k_lab, (n,), 0, num_classes, dtype=y.dtype), y)


def _hook_ctx(prog, state, data, key):
    ms = state.model_state
    y = data["y_train"] if state.y_train is None else state.y_train
    xm, ym = data["x_train"][: prog.num_eval_train], y[: prog.num_eval_train]
    eval_key = jax.random.PRNGKey(0)

    def batch_loss_fn(params, batch):
        return prog.task.loss(params, ms, batch, eval_key, False)[0]

    def loss_fn(params):
        return _chunked_mean(lambda b: batch_loss_fn(params, b), xm, ym, prog.eval_chunk_train)

    return HookContext(step=state.step, params=state.params, model_state=ms, opt_state=state.opt_state,
                       hparams=state.hparams, key=key, loss_fn=loss_fn, batch_loss_fn=batch_loss_fn,
                       data={"x_train": data["x_train"], "y_train": y})


def _chunked_mean(fn, x, y, chunk):
    """Mean of ``fn(batch)`` over equal chunks of size ``chunk`` (which divides ``len(x)``)."""
    n = x.shape[0]
    if chunk >= n:
        return fn({"x": x, "y": y})
    xs = x.reshape((n // chunk, chunk) + x.shape[1:])
    ys = y.reshape((n // chunk, chunk) + y.shape[1:])
    return jax.tree.map(lambda v: jnp.mean(v, 0), jax.lax.map(lambda b: fn({"x": b[0], "y": b[1]}), (xs, ys)))


def init_run(prog: Program, seed, hparams: dict, data: dict) -> TrainState:
    """Initialise one run from its seed (root key ``PRNGKey(seed)``) and hyperparameters."""
    key = jax.random.PRNGKey(seed)
    params, model_state = prog.task.init(stream(key, "init"), data["x_train"][:1])
    tx = _tx(prog, hparams, jnp.zeros((), jnp.int32))
    y_train = None
    if "random_label_fraction" in hparams:
        y_train = randomize_labels_in_graph(stream(key, "labels"), data["y_train"], hparams["random_label_fraction"],
                                            prog.num_classes)
    order = None if prog.batch_size == 0 else _epoch_order(prog, key, 0)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                       opt_state=tx.init(params), hparams=hparams, key=key, extras={},
                       diverged=jnp.zeros((), bool), y_train=y_train, batch_order=order,
                       stopped_at=jnp.full((), -1, jnp.int32), pending=jnp.zeros((), bool),
                       step_fraction=jnp.ones((), jnp.float32))
    ctx = _hook_ctx(prog, state, data, jax.random.fold_in(stream(key, "hooks"), 2**32 - 1))
    state = state._replace(extras={name: h.init(ctx) for name, h in prog.hooks.items()})
    return state._replace(anchor=anchor_of(state))


def _epoch_order(prog: Program, key, epoch):
    return prog.shuffle(jax.random.fold_in(stream(key, "data"), epoch), prog.n_train).astype(jnp.int32)


def _batch(prog: Program, state: TrainState, data: dict, t) -> tuple[dict, TrainState]:
    """The minibatch of shared step ``t`` (and the state with this epoch's order)."""
    y = data["y_train"] if state.y_train is None else state.y_train
    if prog.batch_size == 0:
        return {"x": data["x_train"], "y": y}, state
    per_epoch = prog.n_train // prog.batch_size
    epoch, pos = t // per_epoch, t % per_epoch
    order = jax.lax.cond((pos == 0) & (t > 0), lambda: _epoch_order(prog, state.key, epoch),
                         lambda: state.batch_order)
    idx = jax.lax.dynamic_slice_in_dim(order, pos * prog.batch_size, prog.batch_size)
    return {"x": data["x_train"][idx], "y": y[idx]}, state._replace(batch_order=order)


def is_active(state: TrainState) -> jax.Array:
    """Whether the run still trains: not diverged, not stopped at its target, not pending."""
    return ~state.diverged & (state.stopped_at < 0) & ~state.pending


def train_step(prog: Program, state: TrainState, data: dict, t, active=None,
               guard: bool = True) -> tuple[TrainState, jax.Array]:
    """One optimizer step of one run at step ``t`` (the step counter shared by all runs; equal to
    ``state.step``); returns the new state and the minibatch loss.

    ``guard=True``: the step is applied only if the run is ``active`` (bool, default
    :func:`is_active`) and the step is finite (its loss, and :func:`finite_state` of the new
    parameters, optimizer and model state); otherwise the run keeps its state, and a non-finite
    step of an active run sets ``diverged``. ``guard=False`` (:func:`run_chunk`): the step is
    applied unconditionally; the caller restores frozen runs and detects divergence per interval.
    """
    batch, state = _batch(prog, state, data, t)
    dkey = jax.random.fold_in(stream(state.key, "dropout"), state.step)
    l2 = state.hparams.get("l2", 0.0)
    model_kw = {k: state.hparams[k] for k in MODEL_HPARAMS + tuple(prog.task.hparams) if k in state.hparams}

    def objective(params):
        loss, (ms, _) = prog.task.loss(params, state.model_state, batch, dkey, True, **model_kw)
        if "l2" in state.hparams:
            loss = loss + 0.5 * l2 * optax.tree.norm(params, squared=True)
        if "sgd_regularizer" in state.hparams:  # Smith et al. (2021): (λ/4)(1/m) Σ_k ‖∇L̂_k‖² over sub-batches
            sub = prog.regularizer_batch_size or jax.tree.leaves(batch)[0].shape[0]
            penalty = sub_batch_gradient_penalty(
                lambda p, b: prog.task.loss(p, state.model_state, b, dkey, True, **model_kw)[0], params, batch, sub)
            loss = loss + 0.25 * state.hparams["sgd_regularizer"] * penalty
        return loss, ms

    (loss, new_ms), grads = jax.value_and_grad(objective, has_aux=True)(state.params)

    def grad_fn(params):
        return jax.grad(lambda p: objective(p)[0])(params)

    tx = _tx(prog, state.hparams, state.step)
    updates, new_opt = tx.update(grads, state.opt_state, state.params, grad_fn=grad_fn)
    new_params = optax.apply_updates(state.params, updates)
    if not guard:
        new_state = state._replace(step=state.step + 1, params=new_params, model_state=new_ms, opt_state=new_opt)
        return _hooks_on_step(prog, new_state, state, data, None), loss
    active = is_active(state) if active is None else active
    finite = jnp.isfinite(loss) & finite_state(new_params, new_opt, new_ms)
    ok = active & finite
    new_state = state._replace(step=state.step + 1, params=tree_where(ok, new_params, state.params),
                               model_state=tree_where(ok, new_ms, state.model_state),
                               opt_state=tree_where(ok, new_opt, state.opt_state),
                               diverged=state.diverged | (active & ~finite))
    return _hooks_on_step(prog, new_state, state, data, ok), loss


def tree_where(pred, new, old):
    """``jnp.where(pred, new, old)`` leaf by leaf (``pred`` a scalar bool of one run)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def finite_state(params, opt_state, model_state) -> jax.Array:
    """Whether a run's state counts as finite: ``Σ params²`` is finite (no inf/NaN entry, and no
    parameter beyond ~1e19 in float32, where the squared norm overflows: a run that far out has
    diverged even while its entries are representable) and every optimizer / model state entry is
    finite. One bool."""
    flags = [jnp.isfinite(optax.tree.norm(params, squared=True))]
    flags += [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves((opt_state, model_state))]
    return jnp.stack(flags).all()


def _hooks_on_step(prog: Program, new_state: TrainState, state: TrainState, data: dict, ok) -> TrainState:
    """The hooks' ``on_step`` on ``new_state`` (kept only where ``ok``: a frozen run's hook state
    is frozen too; ``ok=None``: always, the caller restores)."""
    if not prog.hooks:
        return new_state
    ctx = _hook_ctx(prog, new_state, data, jax.random.fold_in(stream(state.key, "hooks"), state.step))
    extras = {name: (h.on_step(new_state.extras[name], ctx) if h.on_step is not None else new_state.extras[name])
              for name, h in prog.hooks.items()}
    return new_state._replace(extras=extras if ok is None else tree_where(ok, extras, new_state.extras))


def _metrics_on(prog: Program, params, model_state, x, y, chunk) -> dict:
    eval_key = jax.random.PRNGKey(0)

    def fn(b):
        loss, (_, m) = prog.task.loss(params, model_state, b, eval_key, False)
        return {"loss": loss, **m}

    return _chunked_mean(fn, x, y, chunk)


def train_metrics(prog: Program, state: TrainState, data: dict, params=None) -> dict:
    """``train_loss`` (and ``train_accuracy``, task metrics) in eval mode on the evaluation
    examples — the quantities the target stop compares; ``params`` overrides ``state.params``."""
    y = data["y_train"] if state.y_train is None else state.y_train
    n = prog.num_eval_train
    m = _metrics_on(prog, state.params if params is None else params, state.model_state, data["x_train"][:n], y[:n],
                    prog.eval_chunk_train)
    return {f"train_{k}": v for k, v in m.items()}


def evaluate(prog: Program, state: TrainState, data: dict) -> tuple[TrainState, dict]:
    """Train/test loss (and accuracy, and task metrics) in eval mode, plus the hooks' ``on_eval``."""
    n_te = prog.num_eval_test
    test = _metrics_on(prog, state.params, state.model_state, data["x_test"][:n_te], data["y_test"][:n_te],
                       prog.eval_chunk_test)
    out = {**train_metrics(prog, state, data), **{f"test_{k}": v for k, v in test.items()}}
    extras = dict(state.extras)
    if prog.hooks:
        ctx = _hook_ctx(prog, state, data, jax.random.fold_in(stream(state.key, "hooks"), state.step))
        for name, h in prog.hooks.items():
            if h.on_eval is not None:
                extras[name], m = h.on_eval(extras[name], ctx)
                clash = set(m) & set(out)
                if clash:
                    raise ValueError(f"hook {name!r} returns metric names already in use: {sorted(clash)}")
                out.update(m)
    return state._replace(extras=extras), out


def reached_target(metrics: dict, targets) -> jax.Array:
    """Whether evaluation ``metrics`` meet ``targets = (train loss, train accuracy)`` (0 = off;
    both set: both must hold; both off: never)."""
    loss_t, acc_t = targets[0], targets[1]
    ok_loss = (loss_t <= 0) | (metrics["train_loss"] <= loss_t)
    ok_acc = (acc_t <= 0) | (metrics.get("train_accuracy", jnp.zeros(())) >= acc_t)
    return ok_loss & ok_acc & ((loss_t > 0) | (acc_t > 0))


def stop_at_target(state: TrainState, metrics: dict, targets) -> TrainState:
    """Freeze an active run whose ``metrics`` (of its current state) meet ``targets``: this step
    is its exact stop (``stopped_at``). Used where every step is checked (the start, the replay)."""
    newly = is_active(state) & reached_target(metrics, targets)
    return state._replace(stopped_at=jnp.where(newly, state.step, state.stopped_at))


def mark_pending(state: TrainState, metrics: dict, targets) -> TrainState:
    """At an evaluation point: freeze an active run whose ``metrics`` meet ``targets`` and mark it
    ``pending`` (its first step at the target lies after its ``anchor``; the replay finds it)."""
    return state._replace(pending=state.pending | (is_active(state) & reached_target(metrics, targets)))


def settle_interval(state: TrainState, was_active, loss_ok) -> TrainState:
    """After an interval of unguarded steps: the per-interval divergence check and freezing.

    A run active at the interval's start whose loss was non-finite at some step (``loss_ok``
    False) or whose state is not :func:`finite_state` now has diverged inside the interval: it is marked
    ``diverged`` and ``pending`` (the replay of ``dl_course.train.exact_stop`` finds its last finite
    state). It, and every run that was frozen at the start (``was_active`` False), is set back to
    its ``anchor``: parameters, model, optimizer and hook state (its step counter and epoch order
    advance, as a frozen run's do).
    """
    bad = was_active & ~(loss_ok & finite_state(state.params, state.opt_state, state.model_state))
    back = ~was_active | bad
    a = state.anchor
    return state._replace(params=tree_where(back, a.params, state.params),
                          model_state=tree_where(back, a.model_state, state.model_state),
                          opt_state=tree_where(back, a.opt_state, state.opt_state),
                          extras=tree_where(back, a.extras, state.extras),
                          diverged=state.diverged | bad, pending=state.pending | bad)


def train_interval(prog: Program, state: TrainState, data: dict, t, length: int):
    """``length`` unguarded steps from shared step ``t`` (``train_step(guard=False)``, the loss's
    finiteness accumulated), then :func:`settle_interval`; returns the state and the next step."""

    def step(carry, _):
        s, t, loss_ok = carry
        s, loss = train_step(prog, s, data, t, guard=False)
        return (s, t + 1, loss_ok & jnp.isfinite(loss)), None

    (s, t, loss_ok), _ = jax.lax.scan(step, (state, t, jnp.ones((), bool)), None, length=length)
    return settle_interval(s, is_active(state), loss_ok), t


def run_chunk(prog: Program, num_intervals: int, state: TrainState, data: dict, t0, targets):
    """``num_intervals`` x (``eval_every`` steps, then evaluate) as one scan, from shared step ``t0``.

    ``targets``: float32 ``[2]`` (train-loss target, train-accuracy target; 0 = off), checked at
    every evaluation (:func:`mark_pending`); before each interval a run's ``anchor`` is set to its
    state (kept while it is ``pending``); the interval is :func:`train_interval`. Returns the new
    state and metrics stacked over the ``num_intervals`` evaluation points.
    """

    def interval(carry, _):
        s, t = carry
        s, t = train_interval(prog, s._replace(anchor=tree_where(s.pending, s.anchor, anchor_of(s))), data, t,
                              prog.eval_every)
        s, m = evaluate(prog, s, data)
        return (mark_pending(s, m, targets), t), m

    (state, _), metrics = jax.lax.scan(interval, (state, jnp.asarray(t0, jnp.int32)), None, length=num_intervals)
    return state, metrics
