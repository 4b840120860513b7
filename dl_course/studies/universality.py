"""Universal approximation in practice: one-hidden-layer ReLU networks of growing width fitting
smooth and non-smooth functions of one and two variables.

Cybenko (1989) and Hornik (1991): a single hidden layer of enough units approximates any continuous
function on a compact set uniformly (and any L2 function in L2). How fast the error falls with the
width ``w`` depends on the target's smoothness: a one-dimensional ReLU network is a free-knot
linear spline with ~w knots, whose best L2 error is O(w^-2) for a twice-differentiable target
(MSE ~ w^-4) but only O(w^-1/2) across a jump (MSE ~ w^-1: the jump can be resolved only to a
knot spacing ~ 1/w). In d dimensions the same smoothness buys less per unit (rates degrade with d).
Trained networks do not reach the best approximation, but the ordering of the curves survives.

Protocol: targets on ``[-1, 1]^d``: ``sin1d = sin(2 pi x)``, ``square1d = sign(sin(2 pi x))`` (jumps),
``smooth2d = sin(pi x) cos(pi y)``, ``disk2d = +1 inside the disk r^2 < 1/2, -1 outside``. Training
points uniform in the box (noise-free targets), test points on a regular grid. For every input
dimension ONE model holds an independent one-hidden-layer network for every (width, target) pair
(``dl_course.models.width_blocks.WidthBlocks``; targets in ``dl_course.data.approximation``): they share no
parameter and the loss is the sum of their losses, so gradients
decouple exactly, and Adam -- a per-coordinate rule -- moves each network exactly as if it were
trained alone (the tests check the decoupling). All widths and targets of a dimension are thus one
compiled, vmapped program; seeds are the sweep's run axis. Full-batch Adam with a cosine decay.
``train_mse`` / ``test_mse`` are plain means of ``(f(x) - y)^2`` per network.

Reading the result: the smooth targets' test error keeps falling over the whole width range; the
discontinuous ones level off at large width, a limit set by the finite training sample, not by the
network: noise-free samples locate a jump only to within the spacing of the training points (1D),
and 512 points pin the disk's boundary only coarsely (2D), where wide networks also interpolate
the training set (train MSE below test MSE).
"""

from __future__ import annotations

import jax
import numpy as np

from dl_course import results
from dl_course.data.approximation import TARGETS, make_data
from dl_course.measures.statistics import intervals
from dl_course.models.width_blocks import WidthBlocks, block_index
from dl_course.train import supervised_task, sweep

# Approximation-theory rates of the best width-w one-hidden-layer ReLU network (free-knot linear
# splines): smooth targets MSE ~ h^4 with knot spacing h ~ w^(-1/d), i.e. w^(-4/d); a jump costs the
# measure of a band of width h around it, MSE ~ h = w^(-1/d).
THEORY_SLOPES = {"sin1d": -4.0, "smooth2d": -2.0, "square1d": -1.0, "disk2d": -0.5}


def slope_cis(arrays, widths, targets, from_width: int) -> dict:
    """Per target: the least-squares slope of log test MSE and of log train MSE vs log width (widths
    >= ``from_width``) of every seed, their means with 95% t intervals, the theory rate, and the
    ratio test / train MSE at the largest width (≈ 1: the network fits what it can, the shortfall
    to the theory rate is the fit — optimization — not sampling; ≫ 1: the training sample limits)."""
    tail = np.asarray(widths) >= int(from_width)
    lw = np.log(np.asarray(widths)[tail])
    out = {}
    for t in targets:
        per = {k: [float(np.polyfit(lw, np.log(row[tail]), 1)[0]) for row in arrays[f"{t}/{k}_mse"]]
               for k in ("test", "train")}
        ci = {k: intervals.mean_ci(v) if len(v) > 1 else {"estimate": v[0], "ci": None} for k, v in per.items()}
        ratio = float(np.mean(arrays[f"{t}/test_mse"][:, -1]) / np.mean(arrays[f"{t}/train_mse"][:, -1]))
        out[t] = {"test": ci["test"], "train": ci["train"], "theory": THEORY_SLOPES.get(t),
                  "test_over_train_at_max_width": ratio}
    return out


def run(config, run_dir: results.RunDir) -> dict:
    """Fit every target at every width (one program per input dimension); plot; write."""
    from dl_course.plotting import approximation as plots

    widths = [int(w) for w in config.widths]
    rows, arrays, fits, conventions = [], {}, {}, None
    for d in (1, 2):
        targets = [t for t in config.targets if TARGETS[t][0] == d]
        if not targets:
            continue
        n_train = int(config.n_train_1d if d == 1 else config.n_train_2d)
        per_axis = int(config.test_per_axis_1d if d == 1 else config.test_per_axis_2d)
        data, f_train, f_test = make_data(targets, widths, n_train, per_axis, int(config.data_seed))
        model = WidthBlocks(widths=tuple(widths), num_targets=len(targets), activation=config.activation)
        task = supervised_task(model, "mse", 0)
        res = sweep(config.train, task=task, data=data, progress=True)
        conventions = conventions or dict(res.conventions)
        apply = jax.jit(jax.vmap(lambda p, x: model.apply({"params": p}, x), in_axes=(0, None)))
        out_tr = np.asarray(apply(res.params, data.x_train))  # [run, n, W*T]
        out_te = np.asarray(apply(res.params, data.x_test))
        mse_tr = np.mean((out_tr - data.y_train[None]) ** 2, axis=1)  # [run, W*T]
        mse_te = np.mean((out_te - data.y_test[None]) ** 2, axis=1)
        for i, g in enumerate(res.grid):
            for wi, w in enumerate(widths):
                for ti, t in enumerate(targets):
                    j = block_index(wi, ti, len(targets))
                    rows.append({"width": w, "target": t, "input_dim": d, "smooth": TARGETS[t][2], "seed": g["seed"],
                                 "learning_rate": g["learning_rate"], "diverged": bool(res.diverged[i]),
                                 "train_mse": float(mse_tr[i, j]), "test_mse": float(mse_te[i, j])})
        for ti, t in enumerate(targets):
            cols = [block_index(wi, ti, len(targets)) for wi in range(len(widths))]
            arrays[f"{t}/train_mse"] = mse_tr[:, cols]  # [run, width]
            arrays[f"{t}/test_mse"] = mse_te[:, cols]
            fits[t] = {"x": data.x_test, "target": f_test[:, ti], "per_axis": per_axis, "d": d,
                       "fits": {w: out_te[0, :, cols[wi]] for wi, w in enumerate(widths)}}
        arrays[f"{d}d/train_loss_sum"] = res.metrics["train_loss"]
        arrays[f"{d}d/steps"] = res.steps
    arrays["widths"] = np.asarray(widths)
    slopes = {}
    for t in fits:
        m = np.mean(arrays[f"{t}/test_mse"], 0)
        tail = np.asarray(widths) >= int(config.slope_from_width)
        slopes[t] = float(np.polyfit(np.log(np.asarray(widths)[tail]), np.log(m[tail]), 1)[0])
    run_dir.figure("error_vs_width.png", plots.universality_error(widths, arrays, list(fits), slopes))
    run_dir.figure("fitted_functions.png", plots.universality_fits(fits, list(config.show_widths)))
    print(f"{'target':>9} " + " ".join(f"{w:>9d}" for w in widths) + "   slope")
    for t in fits:
        print(f"{t:>9} " + " ".join(f"{v:>9.2e}" for v in np.mean(arrays[f'{t}/test_mse'], 0)) + f"   {slopes[t]:.2f}")
    headline = {"test_mse_slope_vs_width": slopes,
                "slopes": slope_cis(arrays, widths, list(fits), int(config.slope_from_width)),
                "num_seeds": len(list(config.train.seeds)),
                "test_mse_at_max_width": {t: float(np.mean(arrays[f"{t}/test_mse"][:, -1])) for t in fits},
                "test_mse_at_min_width": {t: float(np.mean(arrays[f"{t}/test_mse"][:, 0])) for t in fits}}
    conventions.update({
        "model": "one hidden layer, independent network per (width, target) (WidthBlocks); ReLU unless configured",
        "loss": "sum over networks of 1/2 mean (f - y)^2 (engine 'mse' on the stacked outputs); "
                "reported train_mse/test_mse are plain means of (f - y)^2 per network",
        "slope": f"least-squares slope of log mean test_mse vs log width for widths >= {config.slope_from_width}",
        "init": "a ~ N(0, I/d), v ~ N(0, 1/width), b = -a.p with p ~ U[-1,1]^d, read-out bias 0",
    })
    results.write_results(run_dir, config, "universality", conventions, rows, headline, arrays)
    return headline
