"""Shifted MNIST-1D test sets: 4 corruptions × 5 intensities, in the spirit of CIFAR-10-C
(Hendrycks & Dietterich 2019; used for calibration under shift by Ovadia et al. 2019).

MNIST-1D (Greydanus & Kobak 2020) renders every example from one of 10 templates through a chain
of random transforms (``mnist1d.transform.transform``): pad with p ∈ [36, 60] zeros and dilate to
72 samples; multiply the amplitude by ``1 + scale_coeff · (u_scale − ½)``; roll circularly by
k ∈ {0, …, max_translation − 1}; fill the background with correlated noise (std
``corr_noise_scale`` before a σ = 2 Gaussian filter) and add iid noise (``iid_noise_scale``); add a
linear ramp ``shear_scale · (u_shear − ½) · t``, t ∈ [−½, ½]; subsample to 40.

Here the random draws of every test example (its latents u_pad, u_scale, k, z_corr, z_iid,
u_shear) are reproduced exactly as ``mnist1d.data.make_dataset`` draws them from the dataset seed,
and the example is re-rendered with ONE transform made stronger. Every corruption level therefore
holds the same examples, with the same labels, as the standard test set (like CIFAR-10-C corrupts
the CIFAR-10 test images), and level 0 IS the standard test set (equal to ``make_dataset``'s
test split after the float32 cast, which the tests check). All levels are
standardised with the clean dataset's global mean and standard deviation (as ``make_dataset``
standardises the clean data), so an amplitude or noise corruption is not normalised away.

Intensities (``INTENSITIES``; level L = 0 … 5, level 0 = MNIST-1D's defaults):

* ``noise``:       both noise scales multiplied by ``NOISE_MULTIPLIERS[L]`` (1 … 2.5);
* ``translation``: every roll extended by δ_L = ``TRANSLATION_OFFSETS[L]`` samples,
  k ↦ (k + δ_L) mod 72; training rolls cover k < 48, so a fraction δ_L/48 of the examples lands
  at positions never seen in training (the digit wraps around the boundary); δ_5 = 24 → 50%;
* ``scale``:       ``scale_coeff`` = ``SCALE_COEFFS[L]``: amplitude factors in 1 ± coeff/2
  (default 0.4 → [0.8, 1.2]; level 5: 1.9 → [0.05, 1.95]);
* ``shear``:       ``shear_scale`` multiplied by ``SHEAR_MULTIPLIERS[L]`` (ramp slopes up to
  ± 0.375·m_L, m_L = 1 … 6).

The levels were chosen so that the test accuracy of small scikit-learn MLPs trained on clean data
falls roughly evenly with L, from level 0 to 5: noise 58 → 28%, translation 63 → 39%, scale
58 → 45%, shear 63 → 43% (a one-off check by hand; the study measures its own models).

This is numpy data preparation (scipy interpolation and filters), not traced code; deterministic
given the MNIST-1D arguments (seed 42 by default).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from mnist1d.data import get_dataset_args, get_templates
from mnist1d.utils import ObjectView
from scipy.ndimage import gaussian_filter1d

CORRUPTIONS = ("noise", "translation", "scale", "shear")
NUM_LEVELS = 5
NOISE_MULTIPLIERS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
TRANSLATION_OFFSETS = (0, 5, 10, 14, 19, 24)
SCALE_COEFFS = (0.4, 0.7, 1.0, 1.3, 1.6, 1.9)
SHEAR_MULTIPLIERS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def _as_args(args) -> ObjectView:
    """mnist1d generator arguments from None (the defaults), a dict of overrides, or an ObjectView."""
    if args is None:
        return get_dataset_args()
    if isinstance(args, dict):
        return ObjectView({**get_dataset_args(as_dict=True), **args})
    return args


def intensities(args=None) -> dict[str, list[dict[str, float]]]:
    """``corruption -> [level 0 … 5] -> overridden mnist1d parameters`` (for summaries)."""
    args = _as_args(args)
    return {
        "noise": [
            {"corr_noise_scale": args.corr_noise_scale * m, "iid_noise_scale": args.iid_noise_scale * m}
            for m in NOISE_MULTIPLIERS
        ],
        "translation": [{"extra_translation": float(d)} for d in TRANSLATION_OFFSETS],
        "scale": [{"scale_coeff": float(c)} for c in SCALE_COEFFS],
        "shear": [{"shear_scale": args.shear_scale * m} for m in SHEAR_MULTIPLIERS],
    }


INTENSITIES = intensities()


class Latents(NamedTuple):
    """The random draws of ``mnist1d.transform.transform`` for every example (generation order)."""

    label: np.ndarray  # [n]
    u_pad: np.ndarray  # [n] uniform; padding p = low + int(u_pad · (high − low + 1))
    u_scale: np.ndarray  # [n] uniform; amplitude factor 1 + scale_coeff · (u_scale − ½)
    translation: np.ndarray  # [n] int roll k ∈ {0, …, max_translation − 1}
    z_corr: np.ndarray  # [n, L] standard normal; background noise before filtering
    z_iid: np.ndarray  # [n, L] standard normal
    u_shear: np.ndarray  # [n] uniform; ramp coefficient shear_scale · (u_shear − ½)
    permutation: np.ndarray  # [n] the dataset's shuffle (generation index of row i)


def draw_latents(args=None) -> Latents:
    """Draws the latents with exactly the calls, order and seed of ``mnist1d.data.make_dataset``
    (which seeds numpy's global RandomState; an equally seeded ``RandomState`` gives the same
    stream without touching global state)."""
    args = _as_args(args)
    rng = np.random.RandomState(args.seed)
    length = args.template_len + args.padding[-1]
    num_classes = len(get_templates()["y"])
    per_class = args.num_samples // num_classes
    rows = []
    for label in range(num_classes):
        for _ in range(per_class):
            u_pad = rng.rand()  # pad
            u_scale = rng.rand()  # scale
            k = rng.choice(args.max_translation)  # translate
            z_corr = rng.randn(length)  # corr_noise_like
            z_iid = rng.randn(length)  # iid_noise_like
            u_shear = rng.rand()  # shear
            rows.append((label, u_pad, u_scale, k, z_corr, z_iid, u_shear))
    permutation = rng.permutation(len(rows))
    cols = list(zip(*rows))
    return Latents(
        label=np.asarray(cols[0]), u_pad=np.asarray(cols[1]), u_scale=np.asarray(cols[2]),
        translation=np.asarray(cols[3]), z_corr=np.stack(cols[4]), z_iid=np.stack(cols[5]),
        u_shear=np.asarray(cols[6]), permutation=permutation,
    )


@functools.cache
def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    grid = np.linspace(lo, hi, n)
    grid.setflags(write=False)
    return grid


def _interpolate(x: np.ndarray, n: int) -> np.ndarray:
    """``mnist1d.transform.interpolate``: linear resampling of ``x`` to ``n`` points on [0, 1].
    (Its ``scipy.interpolate.interp1d`` delegates 1-D float64 linear interpolation to
    ``np.interp``; calling it directly gives the same numbers without interp1d's set-up cost.)"""
    return np.interp(_grid(0.0, 1.0, n), _grid(0.0, 1.0, len(x)), x)


def render(ids, latents: Latents, args, templates, extra_translation: int = 0, eps: float = 1e-8):
    """Examples ``ids`` (generation order) rendered with ``args`` -> ``[len(ids), 40]`` float64.

    The operations and their floating-point order are those of ``mnist1d.transform.transform``;
    the background noise of all examples is filtered in one call (``gaussian_filter`` of a 1-D
    signal is ``gaussian_filter1d`` along its axis, row by row the same numbers).
    """
    ids = np.asarray(ids)
    low, high = args.padding
    length = args.template_len + args.padding[-1]
    corr = gaussian_filter1d(args.corr_noise_scale * latents.z_corr[ids], 2, axis=-1)
    ramp = _grid(-0.5, 0.5, length)
    out = []
    for row, i in enumerate(ids):
        x = templates["x"][latents.label[i]]
        p = low + int(latents.u_pad[i] * (high - low + 1))
        new_x = np.concatenate([x + eps, np.zeros(p)])
        new_x = _interpolate(new_x, length)
        new_x *= 1 + args.scale_coeff * (latents.u_scale[i] - 0.5)
        k = (int(latents.translation[i]) + int(extra_translation)) % length
        new_x = np.concatenate([new_x[-k:], new_x[:-k]])
        mask = new_x != 0
        new_x = mask * new_x + (1 - mask) * corr[row]
        new_x = new_x + args.iid_noise_scale * latents.z_iid[i]
        coeff = args.shear_scale * (latents.u_shear[i] - 0.5)
        new_x = new_x - coeff * ramp
        out.append(_interpolate(new_x, args.final_seq_length))
    return np.stack(out)


class ShiftedTestSets(NamedTuple):
    """``x[corruption]``: ``[NUM_LEVELS + 1, n, 40]`` float32 (level 0 = the standard test set);
    ``y``: ``[n]`` int32 labels shared by all levels; ``intensities``: the parameters per level."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    intensities: dict[str, list[dict[str, float]]]


def shifted_mnist1d(
    corruptions=CORRUPTIONS, max_examples: int | None = None, args=None
) -> ShiftedTestSets:
    """The MNIST-1D test set under each corruption at levels 0 … 5 (module docstring).

    Args:
      corruptions: subset of ``CORRUPTIONS``.
      max_examples: keep only the first ``max_examples`` test examples (quick looks, tests).
      args: the generator arguments: ``mnist1d.data.get_dataset_args()`` (default) or a modified
        ``ObjectView`` or dict — e.g. ``dataset.info["generator"]`` of the MNIST-1D ``Dataset``
        the model was trained on, so that level 0 is exactly its test set. Must not set
        ``shuffle_seq``; for the spatially shuffled variant apply the dataset's
        ``info["permutation"]`` to the last axis of every level.
    """
    args = _as_args(args)
    if getattr(args, "shuffle_seq", False):
        raise ValueError("shifted_mnist1d does not support shuffle_seq=True.")
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"Unknown corruptions {unknown}; valid: {', '.join(CORRUPTIONS)}")
    templates = get_templates()
    latents = draw_latents(args)
    n_total = len(latents.label)
    # Standardisation constants of the clean dataset (all splits), as in make_dataset.
    clean = render(np.arange(n_total), latents, args, templates)[latents.permutation]
    mean, std = clean.mean(), clean.std()
    split = int(n_total * args.train_split)
    test_ids = latents.permutation[split:]
    if max_examples is not None:
        test_ids = test_ids[:max_examples]
    level0 = ((clean[split:] - mean) / std)[: len(test_ids)]

    table = intensities(args)
    out = {}
    for name in corruptions:
        levels = [level0]
        for level in range(1, NUM_LEVELS + 1):
            overrides = dict(table[name][level])
            extra = int(overrides.pop("extra_translation", 0))
            level_args = ObjectView({**vars(args), **overrides})
            xs = render(test_ids, latents, level_args, templates, extra)
            levels.append((xs - mean) / std)
        out[name] = np.stack(levels).astype(np.float32)
    y = latents.label[test_ids].astype(np.int32)
    return ShiftedTestSets(x=out, y=y, intensities={c: table[c] for c in corruptions})
