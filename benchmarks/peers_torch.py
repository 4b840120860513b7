"""The PyTorch side of ``bench_peers.py``: an eager loop, ``torch.func.vmap``, and PyHessian.

Runs in an interpreter that has ``torch`` (and ``pyhessian`` for the λmax worker) but needs
neither jax nor dl_course: data, parameters and the reference eigenvalue come in an ``.npz`` file
written by ``bench_peers.py``; one JSON line goes out on stdout. Usage (by ``bench_peers.py``):
``python peers_torch.py WORKER ARGS_JSON``.

The model is the engine's MLP: ``Linear(40, w) → ReLU → Linear(w, w) → ReLU → Linear(w, 10)``
(tanh for the λmax problem), trained by SGD with heavy-ball momentum ``m ← 0.9 m + g``,
``θ ← θ − η m`` (``torch.optim.SGD``'s and optax's convention) on minibatches of 128 drawn from a
per-run, per-epoch permutation (the last partial batch of an epoch dropped), cross-entropy.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def mlp(width: int, activation=nn.ReLU, in_dim: int = 40, out_dim: int = 10, depth: int = 2) -> nn.Module:
    layers, d = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), activation()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, out_dim))


def _data(path: str):
    z = np.load(path)
    return torch.from_numpy(z["x_train"].astype(np.float32)), torch.from_numpy(z["y_train"].astype(np.int64)), z


def eager(args: dict) -> dict:
    """One model after another, each a plain PyTorch training loop (the usual way)."""
    x, y, _ = _data(args["data"])
    n, b, steps = x.shape[0], args["batch"], args["steps"]
    per_epoch = n // b

    def train(seed: int, lr: float, num_steps: int):
        torch.manual_seed(seed)
        model = mlp(args["width"])
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        gen = torch.Generator().manual_seed(seed)
        for t in range(num_steps):
            pos = t % per_epoch
            if pos == 0:
                order = torch.randperm(n, generator=gen)
            idx = order[pos * b:(pos + 1) * b]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return float(loss)

    train(0, 0.01, 20)  # warm-up (allocator, kernels), not timed
    t0 = time.perf_counter()
    losses = [train(s, lr, steps) for s, lr in args["runs"]]
    return {"seconds": time.perf_counter() - t0, "final_losses": losses}


def functorch_vmap(args: dict) -> dict:
    """All models at once: stacked parameters, ``vmap(grad(functional_call))``, a vectorized
    momentum update (the PyTorch "model ensembling" recipe)."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    x, y, _ = _data(args["data"])
    n, b, steps = x.shape[0], args["batch"], args["steps"]
    per_epoch = n // b
    runs = args["runs"]
    models = []
    for s, _ in runs:
        torch.manual_seed(s)
        models.append(mlp(args["width"]))
    params, buffers = stack_module_state(models)
    base = mlp(args["width"]).to("meta")
    lrs = torch.tensor([lr for _, lr in runs])
    gens = [torch.Generator().manual_seed(s) for s, _ in runs]

    def loss_one(p, bufs, xb, yb):
        return F.cross_entropy(functional_call(base, (p, bufs), (xb,)), yb)

    grads_all = vmap(grad(loss_one))
    mom = {k: torch.zeros_like(v) for k, v in params.items()}

    def train(num_steps: int):
        for t in range(num_steps):
            pos = t % per_epoch
            if pos == 0:
                orders = torch.stack([torch.randperm(n, generator=g) for g in gens])
            idx = orders[:, pos * b:(pos + 1) * b]
            g = grads_all(params, buffers, x[idx], y[idx])
            with torch.no_grad():
                for k, v in params.items():
                    mom[k].mul_(0.9).add_(g[k])
                    v.sub_(lrs.view((-1,) + (1,) * (v.ndim - 1)) * mom[k])

    train(5)  # warm-up, not timed
    t0 = time.perf_counter()
    train(steps)
    return {"seconds": time.perf_counter() - t0}


def pyhessian_lambda_max(args: dict) -> dict:
    """λmax by PyHessian (Yao et al. 2020: power iteration, stop when the relative change of the
    estimate is below ``tol``) on the λmax problem: HVPs counted, Rayleigh quotients recorded."""
    import importlib

    ph = importlib.import_module("pyhessian.hessian")  # the module (the package exports the class)

    x, y, z = _data(args["data"])
    torch.manual_seed(args.get("seed", 0))
    model = mlp(int(z["width"]), activation=nn.Tanh)
    with torch.no_grad():
        for i, layer in enumerate(m for m in model if isinstance(m, nn.Linear)):
            layer.weight.copy_(torch.from_numpy(z[f"kernel_{i}"].T.copy()))
            layer.bias.copy_(torch.from_numpy(z[f"bias_{i}"]))
    onehot = F.one_hot(y, 10).float()

    def criterion(out, target):  # the engine's MSE: mean over examples of ½‖f − one_hot(y)‖²
        return 0.5 * ((out - target) ** 2).sum(-1).mean()

    history = []
    original = ph.hessian_vector_product

    def counted(gradsH, params, v):
        hv = original(gradsH, params, v)
        history.append(float(sum((a * b).sum() for a, b in zip(hv, v))))
        return hv

    ph.hessian_vector_product = counted
    lam_ref, tol = float(z["lambda_ref"]), float(args["tol"])
    torch.manual_seed(args.get("seed", 0))  # the random start of the power iteration
    t0 = time.perf_counter()
    h = ph.hessian(model, criterion, data=(x, onehot), cuda=False)
    eig, _ = h.eigenvalues(maxIter=args["max_iter"], tol=tol, top_n=1)
    seconds = time.perf_counter() - t0
    stop = len(history)
    # The oracle count: the same iteration continued without its stopping rule (up to 4x the
    # stopping count, at least 100 HVPs; None if the true error does not reach tol by then).
    history.clear()
    torch.manual_seed(args.get("seed", 0))
    h = ph.hessian(model, criterion, data=(x, onehot), cuda=False)
    h.eigenvalues(maxIter=min(args["max_iter"], max(4 * stop, 100)), tol=0.0, top_n=1)
    err = np.abs(np.asarray(history) - lam_ref) / abs(lam_ref)
    hit = np.flatnonzero(err <= tol)
    return {"seconds_to_stop": seconds, "hvps_stop": stop, "estimate": float(eig[0]),
            "true_rel_error_at_stop": abs(float(eig[0]) - lam_ref) / abs(lam_ref),
            "hvps_oracle": int(hit[0]) + 1 if hit.size else None, "max_iterations_run": len(history)}


WORKERS = {"torch_eager": eager, "torch_vmap": functorch_vmap, "pyhessian": pyhessian_lambda_max}

if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    name, payload = sys.argv[1], json.loads(sys.argv[2])
    if name not in WORKERS:
        raise ValueError(f"unknown worker {name!r}; valid: {sorted(WORKERS)}")
    print(json.dumps(WORKERS[name](payload)))
