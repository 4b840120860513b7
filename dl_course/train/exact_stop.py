"""The exact target stop: replay pending runs from their anchors, checking after every step.

During training (``dl_course.train.program.run_chunk``) the target — train loss <= ``T`` and/or
train accuracy >= ``A``, in eval mode on the evaluation examples — is checked only at evaluation
points, every ``eval_every`` steps; checking after every step would cost a full evaluation pass per
step for every run of the vmapped program. A run found at its target at evaluation point ``k`` is
frozen there, marked ``pending``, and keeps as its ``anchor`` its state at point ``k - 1``. A run
that went non-finite in the interval before point ``k`` is marked ``pending`` and ``diverged`` there
(``dl_course.train.program.settle_interval``) and replayed the same way, to its last finite state.

:func:`replay_to_target` (one vmapped program, run once per wave when any run is pending) restarts
every pending run from its anchor and repeats its steps — the same minibatches, dropout keys and
schedule, since all of them are functions of the run's key and step — evaluating the target after
each step, and freezes the run at the first step ``s`` whose state meets it: ``stopped_at = s``,
the state equal to ``s`` steps of ``train()``. The cost is one interval of steps, each followed by a
train evaluation, for the whole wave, instead of one evaluation per step during all of training.

Tolerance band. A first step at the target can still land far below it (a large minibatch step);
the protocol of Jiang et al. (2020) compares models at ONE training loss, so the stop must also be
tight from below. If the first step's loss is below ``BAND * T`` (``BAND = 0.98``), the update of
that step is applied only in part: ``w = w_{s-1} + a (w_s - w_{s-1})`` with ``a`` in (0, 1] found by
bisection so that the loss lies in ``[BAND * T, T]`` (the loss along the segment is continuous,
above ``T`` at ``a = 0`` and below ``BAND * T`` at ``a = 1``); the optimizer and model state are those
after step ``s``. ``step_fraction = a`` is recorded (1 for a whole step). With an accuracy target
alone no band applies (accuracy moves in steps of 1/n).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dl_course.train.program import Program, reached_target, train_metrics, train_step, tree_where
from dl_course.train.state import TrainState, anchor_of

#: A converged run's final train loss lies in ``[BAND * target, target]``.
BAND = 0.98
#: Bisection steps for the fraction of an overshooting last step (2^-24: float32 resolution).
NUM_BISECTIONS = 24


def replay_to_target(prog: Program, state: TrainState, data: dict, targets) -> TrainState:
    """One run (vmap it): if ``state.pending``, the state at the first step at or below the target
    (or, for a run that diverged in the interval, its last finite state).

    Restarts from ``state.anchor`` and takes up to ``prog.eval_every`` guarded steps
    (``train_step(guard=True)``: a non-finite step is rejected and sets ``diverged``), evaluating
    the target (:func:`dl_course.train.program.reached_target` on :func:`train_metrics`) after
    each; then shrinks an overshooting last step into the tolerance band (module docstring). A run
    that is not pending is returned unchanged. A pending run always met the target, or went
    non-finite, within the interval after its anchor; if float non-associativity between the two
    programs makes the replay miss it (a loss within rounding of the target, a step at the edge of
    overflow), the run stops at the interval's end — flagged ``diverged`` if that is what the
    interval check saw. A run that meets the target in the replay before the step that diverged
    stops there (the first step at the target comes first).
    """
    replaying = state.pending
    diverging = replaying & state.diverged  # found non-finite by the per-interval check
    a = state.anchor
    start = state._replace(step=a.step, params=a.params, model_state=a.model_state, opt_state=a.opt_state,
                           extras=a.extras, batch_order=a.batch_order, pending=jnp.zeros((), bool),
                           diverged=jnp.zeros((), bool))
    start = tree_where(replaying, start, state._replace(pending=jnp.zeros((), bool)))

    def body(carry, _):
        s, before, live = carry
        new, _ = train_step(prog, s, data, s.step, active=live)
        new = new._replace(step=jnp.where(live, new.step, s.step))
        hit = live & ~new.diverged & reached_target(train_metrics(prog, new, data), targets)
        new = new._replace(stopped_at=jnp.where(hit, new.step, new.stopped_at))
        before = tree_where(hit, s.params, before)
        return (new, before, live & ~hit & ~new.diverged), None

    (s, before, missed), _ = jax.lax.scan(body, (start, start.params, replaying), None, length=prog.eval_every)
    # a missed target stops at the interval's end; a missed divergence is still one (it was seen)
    s = s._replace(stopped_at=jnp.where(missed & ~diverging, s.step, s.stopped_at),
                   diverged=s.diverged | (missed & diverging))
    s = _shrink_last_step(prog, s, before, data, targets, replaying & ~missed & ~s.diverged)
    # a diverged run's step counter runs on to the live one (it advances while frozen)
    s = s._replace(step=jnp.where(s.diverged, state.step, s.step))
    s = s._replace(anchor=anchor_of(s))
    # runs that were not pending: exactly as they came (their flags included)
    return tree_where(replaying, s, state)


def _shrink_last_step(prog: Program, s: TrainState, before, data, targets, eligible) -> TrainState:
    """Apply only a fraction ``a`` of the last update when the full update overshoots the band."""
    loss_t = targets[0]
    after = s.params

    def point(frac):
        return jax.tree.map(lambda w0, w1: w0 + jnp.asarray(frac, w0.dtype) * (w1 - w0), before, after)

    def classify(frac):
        m = train_metrics(prog, s, data, params=point(frac))
        in_band = reached_target(m, targets) & (m["train_loss"] >= BAND * loss_t)
        too_far = m["train_loss"] < BAND * loss_t
        return in_band, too_far

    _, overshoot = classify(1.0)
    need = eligible & (loss_t > 0) & overshoot

    def bisect(carry, _):
        lo, hi, best, found = carry
        mid = 0.5 * (lo + hi)
        in_band, too_far = classify(mid)
        newly = ~found & in_band
        best = jnp.where(newly, mid, best)
        hi = jnp.where(~found & ~in_band & too_far, mid, hi)
        lo = jnp.where(~found & ~in_band & ~too_far, mid, lo)
        return (lo, hi, best, found | in_band), None

    init = (jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32), jnp.ones((), jnp.float32), ~need)
    (_, hi, best, found), _ = jax.lax.scan(bisect, init, None, length=NUM_BISECTIONS)
    frac = jnp.where(need, jnp.where(found, best, hi), 1.0)
    return s._replace(params=tree_where(need, point(frac), after), step_fraction=frac)
