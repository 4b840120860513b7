"""The engine's configuration and its validation.

``default_config()`` holds every key the engine reads, at its top level; a study's config holds
it as its ``train`` sub-config (``dl_course.configs``). ``dl_course.train.build`` validates it
before anything is compiled and raises ``ConfigError`` with one line naming the problem and the
valid choices; keys the engine does not know are rejected (``check_keys``), so a study's own keys
cannot reach the engine or its compile cache.
"""

from __future__ import annotations

import ml_collections

from dl_course.errors import ConfigError

__all__ = ["ConfigError", "check_keys", "default_config"]  # ConfigError is dl_course.errors', re-exported


def default_config() -> ml_collections.ConfigDict:
    """Defaults: an MLP trained by minibatch SGD with cross-entropy on MNIST-1D.

    Keys:
      dataset / dataset_options: ``dl_course.data.load(dataset, **dataset_options)``.
      model / model_options: ``dl_course.models.get(model, **model_options)``; ``num_outputs`` is
        filled in from the data unless given.
      loss: per-example loss name (mean over examples).
      optimizer / optimizer_options: rule from ``dl_course.optim`` (or ``optax:<name>`` for optax's
        own); options are the rule's fixed hyperparameters (swept ones are passed as grid keys).
      schedule / schedule_options: learning-rate *shape* s(step); lr_t = learning_rate * s(step).
      steps: optimizer steps; batch_size: minibatch size, 0 for full-batch GD.
      shuffle: how each epoch's example order is drawn (``dl_course.train.program.SHUFFLES``):
        ``index_shuffle`` (default: a keyed Feistel permutation computed elementwise without a
        sort, ~20x cheaper on CPU than a sort, 1.1-1.5x faster training on dispatch-bound grids)
        or ``permutation`` (``jax.random.permutation``, exactly uniform); different orders, so
        different (equally valid) results.
      eval_every: steps between evaluations (steps must be a multiple of it).
      eval_examples: training examples used for train metrics and the measurement loss of hooks
        (0 = all); eval_batch_size: evaluation chunk size.
      chunk_evals: evaluation intervals per compiled chunk (0 = about 10 chunks per run);
        checkpoint_every: chunks between checkpoints (0 = no checkpoints).
      target_train_loss: > 0 stops each run at the first step where its train loss (eval mode, on
        the evaluation examples) is <= this target — checked at evaluation points, then the last
        interval replayed step by step (``dl_course.train.exact_stop``); a last step that would end
        below 0.98 x target is applied in part, so the final loss lies in [0.98, 1] x target. The
        run is frozen from then on (``SweepResult.converged``, ``steps_to_target``,
        ``step_fraction``); 0 = off. A dip below the target between two evaluation points that is
        above it again at the next one is not seen (``eval_every = 1`` checks every step).
        target_train_accuracy: the same on train accuracy (both given: both must hold); 0 = off.
      regularizer_batch_size: sub-batch size of the explicit SGD regularizer, the grid key
        ``sgd_regularizer`` = λ adding (λ/4)(1/m) Σ_k ‖∇L̂_k‖² over the m sub-batches of each
        minibatch (Smith et al. 2021; ``dl_course.train.gradient_penalty``); must divide the batch
        size; 0 = the whole minibatch (one term, GD's implicit regularizer). Unused without that key.
      max_parallel_runs: > 0 trains a larger grid in waves of this many runs through one compiled
        program (the last wave padded); 0 = every run at once.
      compact_runs: between chunks, move the runs still training to a program of at most half the
        size once that many have stopped (target, divergence), instead of computing frozen runs
        (``dl_course.train.compaction``; sizes are powers of two, each compiled once). Same
        per-run computation, results equal to float32 round-off; off by default.
      seeds / learning_rates: the default grid.
      dtype: parameter/compute dtype; the engine trains in float32 only (validated).
      conv_impl: how ``nn.Conv`` layers compute (``dl_course.models.conv``): ``auto`` (strided
        slices + one matmul on CPU, where XLA's convolution is ~13x slower for these shapes; XLA's
        convolution on accelerators), ``sliced`` or ``xla``. Same linear map either way.
    """
    c = ml_collections.ConfigDict()
    c.dataset = "mnist1d"
    c.dataset_options = ml_collections.ConfigDict()
    c.model = "mlp"
    c.model_options = ml_collections.ConfigDict({"width": 512, "depth": 2})
    c.loss = "cross_entropy"
    c.optimizer = "sgd"
    c.optimizer_options = ml_collections.ConfigDict()
    c.schedule = "constant"
    c.schedule_options = ml_collections.ConfigDict()
    c.steps = 1000
    c.batch_size = 128
    c.shuffle = "index_shuffle"
    c.eval_every = 100
    c.eval_examples = 0
    c.eval_batch_size = 4096
    c.chunk_evals = 0
    c.checkpoint_every = 0
    c.target_train_loss = 0.0
    c.target_train_accuracy = 0.0
    c.max_parallel_runs = 0
    c.compact_runs = False
    c.regularizer_batch_size = 0
    c.seeds = [0, 1, 2, 3]
    c.learning_rates = [0.01, 0.03, 0.1, 0.3]
    c.dtype = "float32"
    c.conv_impl = "auto"
    return c


def check_keys(config) -> None:
    """Raise ``ConfigError`` for keys of ``config`` that the engine does not know."""
    valid = set(default_config().keys())
    unknown = sorted(set(config.keys()) - valid)
    if unknown:
        raise ConfigError(f"unknown engine config keys {unknown} (a study's own keys belong outside config.train); "
                          f"valid: {', '.join(sorted(valid))}")
