"""Ensemble members and their predictives: one sweep over seeds gives SGD, SWA, SWAG, MultiSWAG and
the deep ensemble; a dropout twin gives MC dropout (Maddox et al. 2019, "A simple baseline for
Bayesian uncertainty in deep learning"; Lakshminarayanan et al. 2017; Gal & Ghahramani 2016; Guo
et al. 2017).

Training. ONE ``dl_course.train.sweep`` over the seeds of the engine config trains every member at
once: the seeds axis is the deep ensemble, and ``swag_hook`` collects the SWAG moments of every
run in the same program (SWAG per seed; MultiSWAG = SWAG pooled over seeds). MC dropout needs a
network with dropout, trained in a second sweep over the same seeds.

Methods (``METHODS``); "per seed" methods give one predictive per seed, "pooled" ones one for all:

* ``sgd`` (MAP): the final iterate, S = 1;
* ``temp_scaling``: ``sgd`` logits / T, T fitted on validation data (Guo et al. 2017);
* ``swa``: the SWAG mean θ̄ (Izmailov et al. 2018), the plain average of the collected iterates;
  ``temp_swa``: ``swa`` logits / T, T fitted on validation data — the control for SWAG's sampling
  (does SWAG beat a recalibrated weight average?); ``swag_diag``, ``swag``: S posterior samples
  θ_s = θ̄ + Σ^{1/2} z_s (diagonal, or diagonal + low rank D D^T / (K − 1));
* ``multiswag``: the S·M samples of the M seeds' SWAG posteriors in one mixture (pooled);
* ``ensemble``: the M final iterates (pooled; p(y|x) = (1/M) Σ_m softmax f(x; θ_m));
* ``mc_dropout``: T dropout masks at test time on the dropout network;
* ``laplace``: a Laplace posterior at each seed's final iterate (MacKay 1992; Daxberger et al.
  2021): by default the practitioner's choice of Laplace Redux — last-layer K-FAC GGN, prior
  precision τ maximizing each member's Laplace evidence, the (extended) probit predictive
  ``softmax(μ_k / √(1 + π S_kk / 8))`` of the linearized network (S = 1; :func:`fit_laplaces`);
  ``prior="validation"`` picks τ per member by the validation NLL of that predictive instead;
* ``multilaplace``: the M seeds' Laplace predictives in one mixture (pooled; Eschenhagen et al.
  2021, "Mixtures of Laplace approximations").

Replicates. The seeds may be cut into ``replicates`` equal consecutive groups: each group is one
independent replicate of the pooled methods (its own ensemble, MultiSWAG and MultiLaplace of
distinct member seeds), so that pooled methods get an error bar over replicates as the per-seed
methods get one over seeds (:func:`replicate_groups`).

Predictions over members are ``jax.vmap``-ed (one compiled program per method), posterior samples
``lax.map``-ed inside.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dl_course.errors import ConfigError
from dl_course.train import sweep
from dl_course.train.build import make_model
from dl_course.uncertainty import calibration
from dl_course.uncertainty import ood as ood_lib
from dl_course.uncertainty.bma import swag_predictive
from dl_course.uncertainty.laplace import STRUCTURES, fit_laplace, optimize_prior_precision
from dl_course.uncertainty.laplace_predictives import METHODS as LAPLACE_PREDICTIVES
from dl_course.uncertainty.laplace_predictives import laplace_predictive, validation_nll
from dl_course.uncertainty.mc_dropout import mc_dropout_predict
from dl_course.uncertainty.predictive import Predictive
from dl_course.uncertainty.swag import swag_hook, swag_schedule
from dl_course.uncertainty.temperature import fit_temperature

METHODS = ("sgd", "temp_scaling", "swa", "temp_swa", "swag_diag", "swag", "multiswag", "ensemble", "mc_dropout",
           "laplace", "multilaplace")
POOLED = ("multiswag", "ensemble", "multilaplace")
PRIORS = ("evidence", "validation", "fixed")
TEMPERED = {"temp_scaling": "sgd", "temp_swa": "swa"}  # method -> the predictive its temperature divides
LAPLACE_DEFAULTS = {"structure": "kfac", "subset": "last_layer", "prior": "evidence", "prior_precision": 1.0,
                    "predictive": "probit", "num_samples": 20, "batch_size": 500,
                    "validation_grid": [-2.0, 6.0, 33]}

CONVENTIONS = {
    **{k: calibration.CONVENTIONS[k] for k in ("nll", "brier", "ece")},
    "accuracy": "top-1 of the model average",
    "evaluation_mode": "eval mode (train=False); MC dropout turns only the dropout layers on",
    "model_average": "p(y|x) = (1/S) sum_s softmax(f(x; theta_s)); S = 1 for sgd, temp_scaling, swa, temp_swa and the "
                     "probit laplace (its one row of logits: mu_k / sqrt(1 + pi S_kk / 8), S = J Sigma J^T)",
    "laplace": "q(theta) = N(theta*, (G + tau I)^-1) at each seed's final iterate, G the GGN (Fisher) of the "
               "summed training NLL (the study's training split), eval mode; structure / subset / prior / "
               "predictive: config.laplace and headline.laplace",
    "per_seed_vs_pooled": "per-seed methods have one row per seed; pooled methods (multiswag, ensemble, "
                          "multilaplace) one row per replicate (seed null, 'members': its non-diverged seeds); "
                          "'replicate': the index of the seed group (distinct member seeds per replicate)",
    "shift_level": "0 = clean test set (corruption 'none'); 1..5 = increasing intensity of one corruption",
    "dtype": "float32",
}


def check_methods(methods) -> tuple[str, ...]:
    """``methods`` as a tuple; unknown or no names raise ``ConfigError`` listing ``METHODS``."""
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ConfigError(f"unknown methods {bad}; valid: {', '.join(METHODS)}")
    return methods


def replicate_groups(seeds, replicates: int) -> list[list[int]]:
    """The seeds cut into ``replicates`` equal consecutive groups (one independent ensemble each);
    ``ConfigError`` unless ``replicates`` divides the number of seeds."""
    seeds, r = list(seeds), int(replicates)
    if r < 1 or len(seeds) % r:
        raise ConfigError(f"replicates {replicates} must be >= 1 and divide the number of seeds ({len(seeds)})")
    m = len(seeds) // r
    return [seeds[i * m:(i + 1) * m] for i in range(r)]


class Members(NamedTuple):
    """The trained members: ``result`` (SGD + SWAG sweep), ``dropout`` (MC-dropout sweep or None),
    their flax ``model`` / ``dropout_model``, and the SWAG collection schedule."""

    result: Any
    dropout: Any
    model: Any
    dropout_model: Any
    swag: dict

    @property
    def seeds(self) -> list[int]:
        return [g["seed"] for g in self.result.grid]


def train_members(train, data, *, swag: dict, dropout_rate: float = 0.0, checkpoint_dir=None,
                  resume: bool = False, progress: bool = True) -> Members:
    """Both sweeps over the seeds of the engine config ``train`` at its single learning rate.

    ``swag``: ``start_fraction``, ``collect_every``, ``num_deviations`` (see :func:`swag_schedule`);
    ``dropout_rate > 0`` also trains the dropout twin (``model_options.dropout = dropout_rate``);
    ``checkpoint_dir``: a directory, whose ``sgd/`` and ``dropout/`` hold the two sweeps' checkpoints.
    """
    if len(train.learning_rates) != 1:
        raise ConfigError(f"uncertainty studies train one learning rate (got {list(train.learning_rates)}); "
                          "the seeds axis is the ensemble")
    sched = swag_schedule(train.steps, train.batch_size, data.n_train, start_fraction=swag["start_fraction"],
                          collect_every=swag.get("collect_every", 0), num_deviations=swag.get("num_deviations", 20))
    hook = swag_hook(sched["num_deviations"], collect_every=sched["collect_every"], start_step=sched["start_step"])
    ckpt = (lambda name: None) if checkpoint_dir is None else (lambda name: checkpoint_dir / name)
    res = sweep(train, hooks={"swag": hook}, data=data, checkpoint_dir=ckpt("sgd"), resume=resume, progress=progress)
    dropout, dropout_model = None, None
    if dropout_rate > 0:
        dcfg = copy.deepcopy(train)
        dcfg.model_options.dropout = float(dropout_rate)
        dropout = sweep(dcfg, data=data, checkpoint_dir=ckpt("dropout"), resume=resume, progress=progress)
        dropout_model = make_model(dcfg, data)
    return Members(res, dropout, make_model(train, data), dropout_model, sched)


@functools.partial(jax.jit, static_argnames=("model",))
def member_logits(model, params, model_state, x):
    """Eval-mode logits ``[R, N, K]`` of the R members stacked along the leading axis of ``params`` /
    ``model_state`` (vmapped)."""
    return jax.vmap(lambda p, ms: model.apply({"params": p, **ms}, x, train=False))(params, model_state)


@jax.jit
def member_metrics(logits, labels) -> dict:
    """Per member (vmapped over the leading axis of ``logits [R, N, K]``): accuracy, NLL (mean
    −log softmax(z)_y, nats), ECE (15 equal-width bins) and Brier score of a single network."""
    def one(z):
        lp = jax.nn.log_softmax(z)
        p = jnp.exp(lp)
        return {"accuracy": calibration.accuracy(p, labels), "nll": calibration.nll(lp, labels),
                "ece": calibration.expected_calibration_error(p, labels), "brier": calibration.brier_score(p, labels)}
    return jax.vmap(one)(logits)


@functools.partial(jax.jit, static_argnames=("names",))
def member_ood_scores(logits, names: tuple[str, ...]) -> dict:
    """``[M, S, N, K]`` per-sample logits of M predictives -> score name -> ``[M, N]`` (higher = more
    OOD; ``dl_course.uncertainty.ood.ood_scores``)."""
    return jax.vmap(lambda lg: ood_lib.ood_scores(Predictive(lg), names))(logits)


@jax.jit
def predictive_accuracy(logits, labels):
    """``[M, S, N, K]`` -> ``[M]``: top-1 accuracy of each predictive's model average."""
    return jax.vmap(lambda lg: calibration.accuracy(Predictive(lg).probs, labels))(logits)


@functools.partial(jax.jit, static_argnames=("model", "method", "num_samples"))
def _swag_all(model, states, model_state, x, x_refresh, keys, method, num_samples):
    def one(state, ms, key):
        return swag_predictive(model, state, ms, x, key, method=method, num_samples=num_samples,
                               x_refresh=x_refresh).sample_logits
    return jax.vmap(one)(states, model_state, keys)


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def _dropout_all(model, params, model_state, x, keys, num_samples):
    def one(p, ms, key):
        return mc_dropout_predict(model, {"params": p, **ms}, x, key, num_samples).sample_logits
    return jax.vmap(one)(params, model_state, keys)


@functools.partial(jax.jit, static_argnames=("model", "structure", "subset", "evidence", "batch_size"))
def _fit_all(model, params, model_state, x, y, tau, structure, subset, evidence, batch_size):
    def one(p, ms):
        la = fit_laplace(model, p, x, y, structure=structure, subset=subset, prior_precision=tau, model_state=ms,
                         batch_size=batch_size)
        return optimize_prior_precision(la) if evidence else la
    return jax.vmap(one)(params, model_state)


@functools.partial(jax.jit, static_argnames=("model", "method", "batch_size"))
def _validation_nll_all(model, stacked, x_val, y_val, grid, method, batch_size):
    return jax.vmap(lambda la: validation_nll(la, model, x_val, y_val, grid, method=method,
                                              batch_size=batch_size))(stacked)


def fit_laplaces(members: Members, x_train, y_train, *, structure: str = "kfac", subset: str = "last_layer",
                 prior: str = "evidence", prior_precision: float = 1.0, batch_size: int | None = 500,
                 validation=None, validation_grid=(-2.0, 6.0, 33), predictive: str = "probit"):
    """One Laplace posterior per seed (a stacked ``Laplace``, leading run axis), fitted at the
    final iterates on the training inputs ``(x_train, y_train)`` in eval mode (vmapped
    :func:`dl_course.uncertainty.laplace.fit_laplace`): ``q_m(θ) = N(θ_m*, (G_m + τ_m I)⁻¹)``.

    The defaults are Daxberger et al. 2021's recommendation: the last layer (``subset``), a K-FAC
    GGN (``structure``: ``diag`` / ``kfac`` / ``ekfac`` / ``full``), and ``prior="evidence"``: each
    member's τ_m maximizes its own Laplace evidence — the root of the log marginal likelihood's
    gradient in log τ, ``½(Σ λ_i/(λ_i+τ) − τ‖θ*‖²)``, by bisection, vmapped over the members
    (:func:`~dl_course.uncertainty.laplace.optimize_prior_precision`). ``prior="validation"``: each
    member's τ_m minimizes the validation NLL of its ``predictive`` on ``validation = (x_val,
    y_val)`` over ``validation_grid = (lo, hi, num)``, i.e. ``τ ∈ logspace(lo, hi, num)`` (Daxberger
    et al.'s ``gridsearch``; the grid reaches τ large enough that the predictive is the MAP's, so the
    choice cannot lose to the MAP on the validation split). ``prior="fixed"``: ``prior_precision``
    for all. ``batch_size`` bounds memory only."""
    if structure not in STRUCTURES:
        raise ConfigError(f"unknown laplace.structure {structure!r}; valid: {', '.join(STRUCTURES)}")
    if prior not in PRIORS:
        raise ConfigError(f"unknown laplace.prior {prior!r}; valid: {', '.join(PRIORS)}")
    if prior == "validation" and validation is None:
        raise ConfigError("laplace.prior 'validation' needs a validation split (x_val, y_val)")
    res = members.result
    bs = None if not batch_size else int(batch_size)
    try:
        stacked = _fit_all(members.model, res.params, res.state.model_state, jnp.asarray(x_train),
                           jnp.asarray(y_train), float(prior_precision), structure, subset, prior == "evidence", bs)
    except ValueError as e:  # a subset that is not a params key, a layer K-FAC does not cover
        raise ConfigError(f"laplace: {str(e).splitlines()[0]}") from None
    if prior != "validation":
        return stacked
    lo, hi, num = validation_grid
    grid = jnp.logspace(float(lo), float(hi), int(num))
    nll = _validation_nll_all(members.model, stacked, jnp.asarray(validation[0]), jnp.asarray(validation[1]), grid,
                              "probit" if predictive not in ("probit", "extended_probit") else predictive, bs)
    return stacked.with_prior_precision(grid[jnp.argmin(nll, axis=1)])


@functools.partial(jax.jit, static_argnames=("model", "method", "num_samples", "batch_size"))
def _laplace_all(model, stacked, x, keys, method, num_samples, batch_size):
    def one(la, key):
        return laplace_predictive(la, model, x, method=method, key=key, num_samples=num_samples,
                                  batch_size=batch_size).sample_logits
    return jax.vmap(one)(stacked, keys)


def _keys(seed: int, method: str, seeds) -> jax.Array:
    base = jax.random.fold_in(jax.random.PRNGKey(seed), METHODS.index(method))
    return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))


def fit_temperatures(members: Members, x_val, y_val, x_train=None, methods=tuple(TEMPERED)) -> dict:
    """``method -> [M]``: one temperature per seed for each tempered method of ``methods``
    (``temp_scaling`` divides the SGD logits, ``temp_swa`` the SWA logits), ``T = argmin_T
    NLL(softmax(z / T))`` on the validation split (Guo et al. 2017; vmapped bisection).
    ``x_train`` refreshes the batch statistics of the SWA weights (default: ``x_val``)."""
    res, x_val = members.result, jnp.asarray(x_val)
    fit = jax.jit(jax.vmap(fit_temperature, in_axes=(0, None)))
    out = {}
    for m in [m for m in TEMPERED if m in methods]:
        if m == "temp_scaling":
            logits = member_logits(members.model, res.params, res.state.model_state, x_val)
        else:
            logits = _swag_all(members.model, res.state.extras["swag"], res.state.model_state, x_val,
                               x_val if x_train is None else jnp.asarray(x_train),
                               _keys(0, "swa", members.seeds), "swa", 1)[:, 0]
        out[m] = np.asarray(fit(logits, jnp.asarray(y_val)).temperature)
    return out


def _pool(logits, ok, groups: list[list[int]]):
    """``[M, S, N, K]`` -> ``[R, m·S, N, K]``: each replicate group's non-diverged members pooled
    (groups cut to the smallest group's count of non-diverged members, so the replicates stack)."""
    keep = [[i for i in g if ok[i]] for g in groups]
    size = min(len(k) for k in keep)
    if size == 0:
        raise ValueError("every member of a replicate diverged")
    return jnp.stack([logits[np.asarray(k[:size])].reshape((-1,) + logits.shape[2:]) for k in keep])


def predictives(members: Members, x, x_train, *, methods=METHODS, temperatures=None, eval_seed: int = 0,
                swag_samples: int = 20, dropout_samples: int = 20, laplace=None, laplace_predictive_method="probit",
                laplace_samples: int = 20, batch_size: int | None = 500, replicates: int = 1) -> dict:
    """``method -> Predictive`` with logits ``[M, S, N, K]``: M = number of seeds for per-seed
    methods, ``replicates`` for pooled ones (each over the non-diverged seeds of its group,
    :func:`replicate_groups`); ``temperatures`` (:func:`fit_temperatures`: method -> per-seed T) for
    ``temp_scaling`` / ``temp_swa``; ``x_train`` refreshes batch statistics of sampled weights. MultiSWAG pools
    the very samples of ``swag``, MultiLaplace those of ``laplace``; ``eval_seed`` keys the
    posterior samples and dropout masks. ``laplace``: the stacked posteriors of
    :func:`fit_laplaces`, predicted with ``laplace_predictive_method`` (``probit``,
    ``extended_probit``, ``mc``, ``nn_mc``; ``laplace_samples`` for the MC ones) in input batches
    of ``batch_size`` (memory only)."""
    res, seeds = members.result, members.seeds
    x, x_train = jnp.asarray(x), jnp.asarray(x_train)
    ok = ~np.asarray(res.diverged)
    groups = [[seeds.index(s) for s in g] for g in replicate_groups(seeds, replicates)]
    cache = {}

    def base(name):
        if name not in cache:
            if name == "sgd":
                cache[name] = member_logits(members.model, res.params, res.state.model_state, x)[:, None]
            elif name in ("swa", "swag_diag", "swag"):
                cache[name] = _swag_all(members.model, res.state.extras["swag"], res.state.model_state, x, x_train,
                                        _keys(int(eval_seed), name, seeds), name,
                                        1 if name == "swa" else int(swag_samples))
            elif name == "laplace":
                if laplace is None:
                    raise ConfigError("methods laplace / multilaplace need the fitted posteriors (fit_laplaces)")
                if laplace_predictive_method not in LAPLACE_PREDICTIVES:
                    raise ConfigError(f"unknown laplace.predictive {laplace_predictive_method!r}; "
                                      f"valid: {', '.join(LAPLACE_PREDICTIVES)}")
                cache[name] = _laplace_all(members.model, laplace, x, _keys(int(eval_seed), name, seeds),
                                           laplace_predictive_method, int(laplace_samples),
                                           None if not batch_size else int(batch_size))
            else:
                d = members.dropout
                if d is None:
                    raise ConfigError("method mc_dropout needs members trained with dropout_rate > 0")
                cache[name] = _dropout_all(members.dropout_model, d.params, d.state.model_state, x,
                                           _keys(int(eval_seed), name, seeds), int(dropout_samples))
        return cache[name]

    out = {}
    for m in check_methods(methods):
        logits = base({**TEMPERED, "ensemble": "sgd", "multiswag": "swag", "multilaplace": "laplace"}.get(m, m))
        if m in TEMPERED:
            if temperatures is None or m not in temperatures:
                raise ConfigError(f"method {m} needs its fitted temperatures (fit_temperatures)")
            logits = logits / jnp.asarray(temperatures[m])[:, None, None, None]
        if m in POOLED:
            logits = _pool(logits, ok, groups)
        out[m] = Predictive(logits)
    return out


def train_from_config(config, data, run_dir=None, methods=METHODS) -> Members:
    """:func:`train_members` for a study config with ``train`` (the engine's), ``swag``
    (``start_fraction``, ``collect_every``, ``num_deviations``) and ``mc_dropout.rate`` (used
    when ``mc_dropout`` is among ``methods``); checkpoints in ``run_dir`` (a ``RunDir``) if given."""
    if {"laplace", "multilaplace"} & set(methods):
        check_laplace_config(config.laplace)  # before training, not after
    rate = float(config.mc_dropout.rate) if "mc_dropout" in methods else 0.0
    if "mc_dropout" in methods and rate <= 0:
        raise ConfigError("method mc_dropout needs mc_dropout.rate > 0")
    return train_members(config.train, data, swag=config.swag.to_dict(), dropout_rate=rate,
                         checkpoint_dir=None if run_dir is None else run_dir.checkpoint_dir,
                         resume=bool(run_dir is not None and run_dir.resume))


def check_laplace_config(c) -> None:
    """``ConfigError`` for an unknown ``laplace.structure``, ``laplace.prior`` or ``laplace.predictive``."""
    for key, valid in (("structure", STRUCTURES), ("prior", PRIORS),
                       ("predictive", LAPLACE_PREDICTIVES)):
        if str(c[key]) not in valid:
            raise ConfigError(f"unknown laplace.{key} {c[key]!r}; valid: {', '.join(valid)}")


def laplaces_from_config(config, members: Members, x_train, y_train, methods=METHODS, validation=None,
                         prior: str | None = None):
    """:func:`fit_laplaces` with ``config.laplace`` (``structure``, ``subset``, ``prior`` — or the
    ``prior`` given —, ``prior_precision``, ``batch_size``, ``predictive``, ``validation_grid``;
    ``validation = (x_val, y_val)`` for the validation prior) when ``laplace`` or ``multilaplace``
    is among ``methods``; else ``None``."""
    if not {"laplace", "multilaplace"} & set(methods):
        return None
    c = config.laplace
    grid = tuple(c.get("validation_grid", LAPLACE_DEFAULTS["validation_grid"]))
    return fit_laplaces(members, x_train, y_train, structure=str(c.structure), subset=str(c.subset),
                        prior=str(prior or c.prior), prior_precision=float(c.prior_precision),
                        batch_size=int(c.batch_size), validation=validation, validation_grid=grid,
                        predictive=str(c.predictive))


def laplace_summary(config, members: Members, laplace) -> dict:
    """The Laplace set-up for a headline: structure, subset, prior rule, predictive, and the prior
    precision τ of each seed (``{}`` without posteriors)."""
    if laplace is None:
        return {}
    c = config.laplace
    return {"structure": str(c.structure), "subset": str(c.subset), "prior": str(c.prior),
            "predictive": str(c.predictive),
            "prior_precision": dict(zip(map(str, members.seeds), np.asarray(laplace.prior_precision).tolist()))}


def predictives_from_config(config, members: Members, x, x_train, temperatures=None, methods=METHODS,
                            laplace=None) -> dict:
    """:func:`predictives` with ``config.eval_seed``, ``config.swag.num_samples``,
    ``config.mc_dropout.num_samples`` and ``config.laplace`` (``predictive``, ``num_samples``,
    ``batch_size``) for the posteriors ``laplace`` of :func:`laplaces_from_config`."""
    c = config.laplace
    return predictives(members, x, x_train, methods=methods, temperatures=temperatures,
                       eval_seed=int(config.eval_seed), swag_samples=int(config.swag.num_samples),
                       dropout_samples=int(config.mc_dropout.num_samples), laplace=laplace,
                       laplace_predictive_method=str(c.predictive), laplace_samples=int(c.num_samples),
                       batch_size=int(c.batch_size), replicates=int(config.get("replicates", 1)))
