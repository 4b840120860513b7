"""Benchmark: the curvature measures against the JAX libraries a user would pick instead.

Same problems, same answers, ratios measured in one run (the machine is noisy; only ratios from the
same run count). Needs the ``bench`` extra (matfree, laplax; kfac-jax in an interpreter whose jax it
supports, ``--kfac-python``). Run: ``python benchmarks/bench_curvature_peers.py [--quick]
[--kfac-python PATH]``; writes ``results/benchmarks/curvature_peers.json``.

Problems: tanh MLPs on MNIST-1D trained by full-batch GD (η = 0.1, cross-entropy, mean over the
training set; one run per seed, the runs of one vmapped sweep):

* ``small``: 40-16-16-10 (1098 parameters), 200 examples, seed 0, everything in float64 against the
  dense ``jax.hessian`` and its ``eigh`` (the exact answers);
* ``standard``: 40-100-100-10 (15 210 parameters), 1000 examples, float32, ``--runs`` (16) seeds:
  agreement with our code and seconds per call, one run and vmapped over the runs.

Every method uses the same Hessian-vector product (``measures.hvp``, forward-over-reverse) and,
where the algorithm allows, the same start vectors, so the comparison is of the algorithms:

1. **matfree** (Krämer et al.): Lanczos top-5 eigenvalues (``eig.eigh_partial(decomp.tridiag_sym(m))``,
   full reorthogonalization) vs ``measures.lanczos`` from the same start; SLQ quadrature nodes and
   weights from ``tridiag_sym`` on the same Rademacher probes as ``measures.slq``, both smoothed by
   ``measures.gaussian_density`` on one grid; Hutchinson (``stochtrace.monte_carlo_trace``,
   Rademacher) and XTrace (``leave_one_out_xtrace``, sphere probes) vs ``hutchinson_trace`` and
   ``xtrace_estimate`` at equal matvec budgets (relative RMS error over replicates against the
   exact trace); matfree has no Hutch++ (ours is listed alone).
2. **kfac-jax**: K-FAC factors of the GGN and a K-FAC product, vs ``measures.kfac_factors`` /
   ``kfac_operator`` (child process ``peers_kfac.py``, run with this interpreter and with
   ``--kfac-python``).
3. **laplax**: last-layer Laplace with the full GGN of the last layer, prior precision τ from our
   evidence maximization, linearized predictive with the mean-field (extended probit) link, vs
   ``fit_laplace(structure="full", subset="last_layer")`` + ``laplace_predictive(method=
   "extended_probit")``: test-set probabilities and NLL, one run; seconds of fit + predictive.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from dl_course import measures, results  # noqa: E402
from dl_course.train import default_config, sweep  # noqa: E402
from dl_course.train.build import load_data, make_model  # noqa: E402
from dl_course.uncertainty import fit_laplace, laplace_predictive, optimize_prior_precision  # noqa: E402

TOP_K = 5
HANG_S = 600  # a vmapped call that has not returned by then is reported as hung (the process exits)
# Not run vmapped over the runs, with the reason (jaxlib 0.10.2 on CPU; see dl_course/linalg.py).
VMAP_DEADLOCKS = {("xtrace", "matfree"): (
    "not run: vmapped, matfree's XTrace (jnp.linalg.qr + triangular solve, batched LAPACK) deadlocked on this "
    "2-core CPU with jaxlib 0.10.2 (gdb: both tf_XLAEigen threads in BlockingCounter::Wait under "
    "jax::ParallelBatchMap, in lapack_dorgqr_ffi and lapack_dtrsm_ffi), 20 replicates in float64")}


# ------------------------------------------------------------------------------------------------
# Problems.


def train(width: int, num_train: int, steps: int, runs: int):
    """``(model, stacked params [runs, ...], data)``: full-batch GD, cross-entropy, tanh MLP."""
    c = default_config()
    c.dataset, c.model, c.loss, c.optimizer = "mnist1d", "mlp", "cross_entropy", "sgd"
    c.dataset_options.num_train = num_train
    c.model_options.width, c.model_options.depth, c.model_options.activation = width, 2, "tanh"
    c.batch_size, c.steps, c.eval_every = 0, steps, steps
    c.seeds, c.learning_rates = list(range(runs)), [0.1]
    res = sweep(c)
    data = load_data(c)
    return make_model(c, data), res.params, data, c


def loss_of(model, x, y):
    def loss_fn(p):
        logits = model.apply({"params": p}, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
    return loss_fn


def interleaved_medians(fns: dict, reps: int) -> dict:
    """Median seconds per call of zero-argument jitted calls, compiled first, calls interleaved."""
    for f in fns.values():
        jax.block_until_ready(f())
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f())
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def guarded(label: str, fn):
    """``fn()`` with a watchdog: a call that hangs (e.g. a deadlocked batched LAPACK call) makes the
    process print where it hangs and exit instead of waiting forever."""
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        return fn()
    finally:
        faulthandler.cancel_dump_traceback_later()


# ------------------------------------------------------------------------------------------------
# 1. matfree.


def operators(loss_fn, params):
    matvec, flat, _ = measures.flat_operator(measures.hessian_operator(loss_fn, params), params)
    return matvec, flat


def rademacher_probes(key, num, d, dtype):
    """The probes of ``measures.slq`` (signs of the first of two Gaussian rows per ``fold_in``)."""
    g = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (2, d), dtype)[0])(jnp.arange(num))
    return jnp.where(g >= 0, 1.0, -1.0).astype(dtype)


def matfree_methods(m: int, probes: int, budget: int):
    """``{name: (ours(loss_fn, params, key), matfree(loss_fn, params, key))}``; every function is
    jittable and vmappable over ``(params, key)``."""
    from matfree import decomp, eig, stochtrace

    tridiag = decomp.tridiag_sym(m, reortho="full")
    eigh = eig.eigh_partial(tridiag)

    def top_ours(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        v0 = jax.random.normal(key, flat.shape, flat.dtype)
        return measures.lanczos(matvec, v0, m).ritz_values[-TOP_K:]

    def top_matfree(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        v0 = jax.random.normal(key, flat.shape, flat.dtype)
        return eigh(matvec, v0)[0][-TOP_K:]

    def slq_ours(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        rule = measures.slq(matvec, flat.shape[0], flat.dtype, key=key, num_probes=probes, num_iters=m)
        return rule.nodes, rule.weights

    def slq_matfree(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        z = rademacher_probes(key, probes, flat.shape[0], flat.dtype)

        def one(v):
            vals, vecs = eigh(matvec, v)  # rows of vecs: Ritz vectors; weight = (first coordinate)^2
            return vals, (vecs @ (v / jnp.linalg.norm(v))) ** 2

        return jax.vmap(one)(z)

    def hutch_ours(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        return measures.hutchinson_trace(matvec, flat.shape[0], flat.dtype, key=key, num_samples=budget,
                                         batch_size=budget)[0]

    def hutch_matfree(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        est = stochtrace.estimator_monte_carlo(stochtrace.monte_carlo_trace(),
                                               stochtrace.sampler_signs(flat, num=budget))
        return est(matvec, key)

    def xtrace_ours(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        return measures.xtrace_estimate(matvec, flat.shape[0], flat.dtype, key=key, num_matvecs=budget)[0]

    def xtrace_matfree(loss_fn, params, key):  # num samples = budget / 2: Y = AΩ and Z = AQ
        matvec, flat = operators(loss_fn, params)
        est = stochtrace.estimator_leave_one_out(stochtrace.leave_one_out_xtrace(),
                                                 stochtrace.sampler_sphere(flat, num=budget // 2))
        return est(matvec, key)

    def hutchpp_ours(loss_fn, params, key):
        matvec, flat = operators(loss_fn, params)
        return measures.hutchpp(matvec, flat.shape[0], flat.dtype, key=key, num_matvecs=budget)

    return {"lanczos_top5": (top_ours, top_matfree), "slq": (slq_ours, slq_matfree),
            "hutchinson": (hutch_ours, hutch_matfree), "xtrace": (xtrace_ours, xtrace_matfree),
            "hutchpp": (hutchpp_ours, None)}


def density_on(grid, sigma, rule):
    return measures.gaussian_density(measures.SLQResult(*rule), grid, sigma)


def matfree_small(model, params, x, y, args) -> dict:
    """float64 agreement on the small problem against the dense Hessian."""
    loss_fn = loss_of(model, x, y)
    flat, unravel = ravel_pytree(params)
    hess = np.asarray(jax.jit(jax.hessian(lambda f: loss_fn(unravel(f))))(flat), np.float64)
    lam = np.linalg.eigvalsh(0.5 * (hess + hess.T))
    exact_top, exact_trace = lam[-TOP_K:], float(np.trace(hess))
    methods = matfree_methods(args.lanczos_iters, args.probes, args.budget)
    key = jax.random.key(1)
    out = {"params": int(flat.size), "exact_top5": exact_top.tolist(), "exact_trace": exact_trace,
           "matvecs": {"lanczos": args.lanczos_iters, "slq_per_probe": args.lanczos_iters, "slq_probes": args.probes,
                       "trace_budget": args.budget}}
    top = {k: np.asarray(jax.jit(lambda p, k_, f=f: f(loss_fn, p, k_))(params, key), np.float64)
           for k, f in zip(("ours", "matfree"), methods["lanczos_top5"])}
    out["lanczos_top5"] = {
        "ours": top["ours"].tolist(), "matfree": top["matfree"].tolist(),
        "max_rel_diff_ours_matfree": float(np.max(np.abs(top["ours"] - top["matfree"]) / np.abs(exact_top))),
        "max_rel_error_ours_vs_dense": float(np.max(np.abs(top["ours"] - exact_top) / np.abs(exact_top))),
        "max_rel_error_matfree_vs_dense": float(np.max(np.abs(top["matfree"] - exact_top) / np.abs(exact_top)))}
    rules = {k: jax.jit(lambda p, k_, f=f: f(loss_fn, p, k_))(params, key) for k, f in zip(("ours", "matfree"),
                                                                                         methods["slq"])}
    sigma = 0.01 * (lam[-1] - lam[0])
    grid = jnp.linspace(lam[0] - 8 * sigma, lam[-1] + 8 * sigma, 2048)
    dens = {k: np.asarray(density_on(grid, sigma, r), np.float64) for k, r in rules.items()}
    exact_rule = (jnp.asarray(lam)[None], jnp.full((1, lam.size), 1.0 / lam.size))
    exact_d = np.asarray(density_on(grid, sigma, exact_rule), np.float64)
    dx = float(grid[1] - grid[0])
    out["slq"] = {
        "sigma": float(sigma), "grid_points": int(grid.size),
        "max_abs_diff_ours_matfree_over_max_density": float(np.max(np.abs(dens["ours"] - dens["matfree"]))
                                                             / np.max(dens["ours"])),
        "max_abs_diff_nodes": float(np.max(np.abs(np.asarray(rules["ours"][0]) - np.asarray(rules["matfree"][0])))),
        "l1_ours_vs_dense_smoothed": float(np.sum(np.abs(dens["ours"] - exact_d)) * dx),
        "l1_matfree_vs_dense_smoothed": float(np.sum(np.abs(dens["matfree"] - exact_d)) * dx)}
    keys = jax.random.split(jax.random.key(2), args.replicates)
    traces = {"replicates": args.replicates, "budget_matvecs": args.budget}
    for name in ("hutchinson", "xtrace", "hutchpp"):
        row = {}
        for lib, f in zip(("ours", "matfree"), methods[name]):
            if f is None:
                row[lib] = None
                continue
            # lax.map, not vmap, over replicates: matfree's XTrace vmapped over 20 keys deadlocked here
            # (batched float64 QR and triangular solve, each waiting in jaxlib's ParallelBatchMap).
            vals = np.asarray(jax.jit(lambda ks, f=f: jax.lax.map(lambda k_: f(loss_fn, params, k_), ks))(keys),
                              np.float64)
            row[lib] = {"rel_rms_error": float(np.sqrt(np.mean((vals - exact_trace) ** 2)) / abs(exact_trace)),
                        "rel_bias": float((np.mean(vals) - exact_trace) / abs(exact_trace))}
        traces[name] = row
    traces["hutchpp"]["matfree"] = "not provided by matfree"
    out["traces"] = traces
    return out


def matfree_standard(model, stacked, x, y, args) -> dict:
    """float32 agreement and seconds per call, one run and vmapped over the runs."""
    loss_fn = loss_of(model, x, y)
    methods = matfree_methods(args.lanczos_iters, args.probes, args.budget)
    runs = jax.tree_util.tree_leaves(stacked)[0].shape[0]
    p0 = jax.tree_util.tree_map(lambda t: t[0], stacked)
    key = jax.random.key(1)
    keys = jax.random.split(key, runs)
    out = {"runs": runs}
    for name, pair in methods.items():
        calls = {}
        for lib, f in zip(("ours", "matfree"), pair):
            if f is None:
                continue
            one = jax.jit(lambda p, k_, f=f: f(loss_fn, p, k_))
            many = jax.jit(jax.vmap(lambda p, k_, f=f: f(loss_fn, p, k_)))
            calls[lib] = lambda one=one: one(p0, key)
            if (name, lib) not in VMAP_DEADLOCKS:
                calls[f"{lib}_vmap{runs}"] = lambda many=many: many(stacked, keys)
        t = guarded(name, lambda: interleaved_medians(calls, args.reps))
        row = {"seconds": t}
        if (name, "matfree") in VMAP_DEADLOCKS:
            row[f"matfree_vmap{runs}"] = VMAP_DEADLOCKS[(name, "matfree")]
        if "matfree" in calls:
            row["matfree_over_ours"] = t["matfree"] / t["ours"]
            if f"matfree_vmap{runs}" in t:
                row[f"matfree_over_ours_vmap{runs}"] = t[f"matfree_vmap{runs}"] / t[f"ours_vmap{runs}"]
                a, b = (calls[k]() for k in (f"ours_vmap{runs}", f"matfree_vmap{runs}"))
            else:
                a, b = calls["ours"](), calls["matfree"]()  # run 0 only
            if name == "lanczos_top5":
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                row["max_rel_diff_ours_matfree"] = float(np.max(np.abs(a - b) / np.abs(a)))
            elif name == "slq":
                lo = float(min(jnp.min(a[0]), jnp.min(b[0])))
                hi = float(max(jnp.max(a[0]), jnp.max(b[0])))
                sigma = 0.01 * (hi - lo)
                grid = jnp.linspace(lo - 8 * sigma, hi + 8 * sigma, 1024)
                da = np.asarray(jax.vmap(lambda *r: density_on(grid, sigma, r))(*a))
                db = np.asarray(jax.vmap(lambda *r: density_on(grid, sigma, r))(*b))
                row["max_abs_diff_ours_matfree_over_max_density"] = float(np.max(np.abs(da - db)) / np.max(da))
            else:  # different random probes: the two estimates differ by their sampling error
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                row["median_rel_diff_ours_matfree"] = float(np.median(np.abs(a - b) / np.abs(a)))
        out[name] = row
    return out


# ------------------------------------------------------------------------------------------------
# 2. kfac-jax (child process).


def kfac_compare(model, stacked, x, y, args, python: str) -> dict:
    names = list(jax.tree_util.tree_map(lambda t: t[0], stacked))
    p0 = jax.tree_util.tree_map(lambda t: t[0], stacked)
    flat, unravel = ravel_pytree(p0)
    v = unravel(jax.random.normal(jax.random.key(3), flat.shape, flat.dtype))
    fac_fn = jax.jit(lambda p: measures.kfac_factors(model, p, x, loss="cross_entropy"))
    fac = fac_fn(p0)
    prod_fn = jax.jit(lambda f, u: measures.kfac_operator(f)(u))
    ours = {"factors_s": None, "product_s": None}
    t = interleaved_medians({"factors": lambda: fac_fn(p0), "product": lambda: prod_fn(fac, v)}, args.reps)
    ours["factors_s"], ours["product_s"] = t["factors"], t["product"]
    runs = jax.tree_util.tree_leaves(stacked)[0].shape[0]
    fac_v = jax.jit(jax.vmap(lambda p: measures.kfac_factors(model, p, x, loss="cross_entropy")))
    ours[f"factors_vmap{runs}_s"] = interleaved_medians({"v": lambda: fac_v(stacked)}, max(1, args.reps // 2))["v"]
    ours_prod = prod_fn(fac, v)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {"x": np.asarray(x), "y": np.asarray(y), "reps": args.reps}
        for i, n in enumerate(names):
            for prefix, tree in (("", stacked), ("v_", v)):
                arrays[f"{prefix}kernel_{i}"] = np.asarray(tree[n]["kernel"])
                arrays[f"{prefix}bias_{i}"] = np.asarray(tree[n]["bias"])
        np.savez(Path(tmp) / "in.npz", **arrays)
        child = Path(__file__).with_name("peers_kfac.py")
        done = subprocess.run([python, str(child), str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.json")],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode != 0 or not (Path(tmp) / "out.json").exists():
            return {"python": python, "error": (done.stderr or done.stdout).strip().splitlines()[-1:], "ours": ours}
        k = json.loads((Path(tmp) / "out.json").read_text())
    row = {"python": python, "versions": {key: k[key] for key in ("jax", "jaxlib", "kfac_jax")}, "ours": ours}
    logits = np.asarray(model.apply({"params": p0}, x[:8]))
    row["same_network_max_abs_logit_diff"] = float(np.max(np.abs(logits - np.asarray(k["logits_run0"]))))
    if "error" in k:
        row["error"] = k["error"]
        return row
    layers = {}
    for i, n in enumerate(names):
        a_o, g_o = np.asarray(fac.A[n], np.float64), np.asarray(fac.G[n], np.float64)
        a_k, g_k = np.asarray(k["A"][i]), np.asarray(k["G"][i])
        # ||A⊗G − B⊗H||_F² = ||A||²||G||² + ||B||²||H||² − 2 tr(AB) tr(GH) (symmetric factors): the
        # Kronecker block, invariant to how a scalar is split between the two factors.
        n_o = np.sum(a_o**2) * np.sum(g_o**2)
        diff = n_o + np.sum(a_k**2) * np.sum(g_k**2) - 2 * np.sum(a_o * a_k) * np.sum(g_o * g_k)
        scale = float(np.sum(g_o * g_k) / np.sum(g_o * g_o))  # the best c in G_kfac_jax ≈ c G_ours
        layers[n] = {"kron_block_rel_frobenius_diff": float(np.sqrt(max(diff, 0.0) / n_o)),
                     "A_rel_diff": float(np.linalg.norm(a_o - a_k) / np.linalg.norm(a_o)),
                     "G_rel_diff": float(np.linalg.norm(g_o - g_k) / np.linalg.norm(g_o)),
                     "G_best_scale": scale,
                     "G_rel_diff_after_scale": float(np.linalg.norm(scale * g_o - g_k) / np.linalg.norm(g_k))}
    # The last layer's G in closed form: the mean output Hessian of the cross-entropy, mean(diag p − ppᵀ).
    prob = np.asarray(jax.nn.softmax(model.apply({"params": p0}, x)), np.float64)
    g_exact = np.mean(jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(prob), axis=0)
    g_exact = np.asarray(g_exact)
    row["last_layer_G_rel_error_vs_closed_form"] = {
        "ours": float(np.linalg.norm(np.asarray(fac.G[names[-1]], np.float64) - g_exact) / np.linalg.norm(g_exact)),
        "kfac_jax": float(np.linalg.norm(np.asarray(k["G"][-1]) - g_exact) / np.linalg.norm(g_exact))}
    ours_flat = np.concatenate([np.ravel(np.asarray(ours_prod[n][p])) for n in names for p in ("kernel", "bias")])
    k_flat = np.concatenate([np.ravel(np.asarray(k["product"][i][j])) for i in range(len(names)) for j in (0, 1)])
    row.update(layers=layers, product_rel_diff=float(np.linalg.norm(ours_flat - k_flat) / np.linalg.norm(ours_flat)),
               kfac_jax={key: k[key] for key in k if key.endswith("_s") or key.endswith("_error")})
    if k.get("factors_s"):
        row["kfac_jax_over_ours_factors"] = k["factors_s"] / ours["factors_s"]
        row["kfac_jax_over_ours_product"] = k["product_s"] / ours["product_s"]
    return row


# ------------------------------------------------------------------------------------------------
# 3. laplax.


def laplace_compare(model, params, data, args) -> dict:
    import laplax

    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    xt, yt = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    last = list(params)[-1]

    def ours():
        la = optimize_prior_precision(fit_laplace(model, params, x, y, structure="full", subset="last_layer"))
        return la, laplace_predictive(la, model, xt, method="extended_probit").probs

    ours_jit = jax.jit(ours)
    la, p_ours = ours_jit()
    tau = float(la.prior_precision)

    def model_fn(input, params):  # noqa: A002 - laplax's argument names; one example (laplax vmaps over data)
        return model.apply({"params": {**{k: v for k, v in frozen.items() if k != last}, last: params}}, input[None])[0]

    frozen = params

    # laplax 0.0.2's own metrics="classification" raises a TypeError (its NLL lambda receives ``map``):
    # a metric that passes its inputs through, so evaluation() builds the predictive and runs it once.
    def no_metric(results, aux, **kwargs):
        return results, aux

    def theirs():  # fit, then laplax's evaluation on the test set
        posterior_fn, _ = laplax.laplace(model_fn, params[last], {"input": x, "target": y},
                                            loss_fn="cross_entropy", curv_type="full")
        _, prob_predictive = laplax.evaluation(posterior_fn, model_fn, params[last], {"prior_prec": tau},
                                               {"input": xt, "target": yt}, metrics=[no_metric],
                                               predictive_type="mean_field_0", pushforward_type="linear")
        return prob_predictive

    pred = theirs()
    p_theirs = np.asarray(jax.vmap(lambda xi: pred(xi)["pred_act"])(xt))
    t = interleaved_medians({"ours": lambda: ours_jit()[1], "laplax": lambda: theirs()(xt[0])["pred_act"]},
                            max(1, args.reps // 2))
    nll = lambda p: float(-np.mean(np.log(np.asarray(p)[np.arange(yt.size), np.asarray(yt)])))  # noqa: E731
    row = {"prior_precision": tau, "last_layer": last, "test_examples": int(yt.size),
           "max_abs_prob_diff": float(np.max(np.abs(np.asarray(p_ours) - p_theirs))),
           "nll_ours": nll(p_ours), "nll_laplax": nll(p_theirs), "seconds": t,
           "laplax_over_ours": t["laplax"] / t["ours"],
           "laplax_version": laplax.__version__}
    try:  # is laplax's curvature estimate jittable / vmappable?
        jax.jit(lambda p: laplax.laplace(model_fn, p, {"input": x, "target": y}, loss_fn="cross_entropy",
                                         curv_type="full")[1])(params[last])
        row["laplace_call_jittable"] = True
    except Exception as err:  # noqa: BLE001
        row["laplace_call_jittable"] = f"no: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return row


# ------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not the benchmark)")
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kfac-python", default=None, help="an interpreter with kfac-jax on a jax it supports")
    ap.add_argument("--only", default="matfree,kfac,laplax")
    ap.add_argument("--out", default="results/benchmarks/curvature_peers.json")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.steps, args.reps = min(args.runs, 2), 50, 1
    args.lanczos_iters, args.probes, args.budget = (12, 3, 12) if args.quick else (40, 4, 60)
    args.replicates = 4 if args.quick else 20
    only = args.only.split(",")
    width, num_train = (32, 200) if args.quick else (100, 1000)
    model, stacked, data, _ = train(width, num_train, args.steps, args.runs)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    out = {"device": results.device_info(), "versions": results.package_versions(),
           "conventions": {"loss": "softmax cross-entropy, mean over the training set", "model": "tanh MLP",
                           "data": "MNIST-1D", "training": f"full-batch GD, eta 0.1, {args.steps} steps",
                           "hvp": "forward-over-reverse (measures.hvp), the same operator for every library",
                           "timing": f"median of {args.reps} interleaved calls, jitted, compile excluded"},
           "problems": {"standard": {"model": f"mlp 40-{width}-{width}-10 tanh", "examples": num_train,
                                     "dtype": "float32", "runs": args.runs}}}
    for lib in ("matfree", "laplax", "kfac-jax"):
        try:
            out["versions"][lib] = __import__("importlib.metadata").metadata.version(lib)
        except Exception:  # noqa: BLE001
            out["versions"][lib] = None
    if "matfree" in only:
        small_model, small_params, small_data, _ = train(16, 200, args.steps, 1)
        jax.config.update("jax_enable_x64", True)
        p64 = jax.tree_util.tree_map(lambda t: jnp.asarray(t[0], jnp.float64), small_params)
        sx = jnp.asarray(small_data.x_train, jnp.float64)
        out["problems"]["small"] = {"model": "mlp 40-16-16-10 tanh", "examples": 200, "dtype": "float64"}
        out["matfree"] = {"small_float64": matfree_small(small_model, p64, sx, jnp.asarray(small_data.y_train), args)}
        jax.config.update("jax_enable_x64", False)
        results.write_json(Path(args.out), {**out, "partial": True})
        out["matfree"]["standard_float32"] = matfree_standard(model, stacked, x, y, args)
        results.write_json(Path(args.out), {**out, "partial": True})
    if "kfac" in only:
        out["kfac_jax"] = {"this_interpreter": kfac_compare(model, stacked, x, y, args, sys.executable)}
        if args.kfac_python:
            out["kfac_jax"]["kfac_python"] = kfac_compare(model, stacked, x, y, args, args.kfac_python)
        results.write_json(Path(args.out), {**out, "partial": True})
    if "laplax" in only:
        p0 = jax.tree_util.tree_map(lambda t: t[0], stacked)
        out["laplax"] = laplace_compare(model, p0, data, args)
    out["host_load_average_1_5_15_min"] = list(os.getloadavg())
    out["quick"] = args.quick
    print(json.dumps(out, indent=1, default=str)[:6000])
    results.write_json(Path(args.out), out)


if __name__ == "__main__":
    main()
