"""An OOD benchmark from one classification dataset (Hendrycks & Gimpel 2017, "A baseline for
detecting misclassified and out-of-distribution examples"): train on the in-distribution classes,
detect the held-out classes' test examples ("near" OOD) and noise inputs matched to the training
inputs ("far" OOD)."""

from __future__ import annotations

from collections.abc import Sequence

from dl_course.data import ood_sets
from dl_course.errors import ConfigError


def ood_benchmark(data, held_out_classes: Sequence[int] = (), noise: Sequence[str] = (), seed: int = 0):
    """``(in-distribution dataset, {ood set name: inputs})``.

    ``held_out_classes`` (``ood_sets.split_classes``): the in-distribution dataset keeps the other
    classes (relabelled), the set ``held_out_classes`` holds the held-out classes' test inputs;
    each kind in ``noise`` adds ``<kind>_noise``: ``n_test`` inputs of ``ood_sets.noise_inputs`` of
    the in-distribution training inputs. Bad classes or kinds, or no set at all, raise ``ConfigError``.
    """
    held = list(held_out_classes)
    try:
        in_data, held_data = ood_sets.split_classes(data, held) if held else (data, None)
        sets = {} if held_data is None else {"held_out_classes": held_data.x_test}
        for kind in noise:
            sets[f"{kind}_noise"] = ood_sets.noise_inputs(in_data.x_train, in_data.n_test, int(seed), kind)
    except ValueError as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    if not sets:
        raise ConfigError("no OOD set: give ood.held_out_classes and/or ood.noise")
    return in_data, sets
