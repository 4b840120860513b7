"""K-FAC by kfac-jax for ``bench_curvature_peers.py``, run as a child process in the interpreter that
has kfac-jax (``--kfac-python``: kfac-jax 0.0.8 fails on jax >= 0.9.2, so it may be a separate
environment with an older jax; this file imports neither dl_course nor flax).

``python peers_kfac.py IN.npz OUT.json``: ``IN.npz`` holds the tanh MLP's layers ``kernel_i``,
``bias_i`` with a leading run axis, ``x``, ``y`` (integer labels), a vector ``v_kernel_i``,
``v_bias_i`` (one run) and ``reps``. Computes kfac-jax's K-FAC factors of the softmax
cross-entropy's GGN (``estimation_mode="ggn_exact"``: exact output-Hessian square roots, one back-propagation per class,
as ``dl_course.measures.kfac_factors(fisher="ggn")``) of run 0, its K-FAC product with ``v``
(``exact_power=True``: the Kronecker blocks themselves, no damping), seconds per call (jitted,
median of ``reps``) and the factor update vmapped over the runs; failures are recorded with their
last traceback line. Writes ``OUT.json`` with the factors as nested lists (``A_i`` ``[in+1, in+1]``,
``G_i`` ``[out, out]``; kfac-jax puts the bias last, like dl_course).
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np


def median_time(fn, *args, reps: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def last_line(err: BaseException) -> str:
    tb = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__}: {err} (at {tb.filename.split('site-packages/')[-1]}:{tb.lineno} {tb.name})"


def main(inp: str, outp: str) -> None:
    import kfac_jax

    d = np.load(inp)
    n_layers = len([k for k in d.files if k.startswith("kernel_")])
    layers = lambda z, p: [(jnp.asarray(z[f"{p}kernel_{i}"]), jnp.asarray(z[f"{p}bias_{i}"]))  # noqa: E731
                           for i in range(n_layers)]
    stacked = layers(d, "")
    x, y, reps = jnp.asarray(d["x"]), jnp.asarray(d["y"]), int(d["reps"])
    v = layers(d, "v_")
    p0 = [(w[0], b[0]) for w, b in stacked]

    def apply(params, xb):
        h = xb
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < len(params) - 1:
                h = jnp.tanh(h)
        return h

    def loss(params, batch):
        logits = apply(params, batch[0])
        kfac_jax.register_softmax_cross_entropy_loss(logits, batch[1])
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), batch[1][:, None], 1))

    out = {"jax": jax.__version__, "jaxlib": __import__("jaxlib").__version__,
           "kfac_jax": __import__("importlib.metadata").metadata.version("kfac-jax"),
           "logits_run0": np.asarray(apply(p0, x[:8])).tolist()}
    est = kfac_jax.BlockDiagonalCurvature(func=loss)
    n = x.shape[0]

    def factors(params, key):
        st = est.init(key, (params, (x, y)), exact_powers_to_cache=None, approx_powers_to_cache=None,
                      cache_eigenvalues=False)
        return est.update_curvature_matrix_estimate(st, ema_old=0.0, ema_new=1.0, identity_weight=0.0, batch_size=n,
                                                    rng=key, func_args=(params, (x, y)),
                                                    estimation_mode="ggn_exact")

    key = jax.random.key(0)
    try:
        fac = jax.jit(factors)
        st = fac(p0, key)
        blocks = st.blocks_states
        out["A"] = [np.asarray(b.factors[0].value).tolist() for b in blocks]
        out["G"] = [np.asarray(b.factors[1].value).tolist() for b in blocks]
        mult = jax.jit(lambda s, u: est.multiply(s, u, identity_weight=0.0, exact_power=True, use_cached=False,
                                                 pmap_axis_name=None))
        prod = mult(st, v)
        out["product"] = [[np.asarray(w).tolist(), np.asarray(b).tolist()] for w, b in prod]
        out["factors_s"] = median_time(fac, p0, key, reps=reps)
        out["product_s"] = median_time(mult, st, v, reps=reps)
    except Exception as err:  # noqa: BLE001 - recorded, the benchmark goes on
        out["error"] = last_line(err)
    if "error" not in out:
        runs = stacked[0][0].shape[0]
        try:
            fac_v = jax.jit(jax.vmap(factors, in_axes=(0, None)))
            out[f"factors_vmap{runs}_s"] = median_time(fac_v, stacked, key, reps=max(1, reps // 2))
        except Exception as err:  # noqa: BLE001
            out[f"vmap{runs}_error"] = last_line(err)
    with open(outp, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
