"""The out-of-distribution sets moved to :mod:`dl_course.data.ood_sets`; this name is kept for the
course notebook (module 3), which imports ``noise_inputs`` and ``split_classes`` from here."""

from dl_course.data.ood_sets import load_ood_pair, noise_inputs, split_classes

__all__ = ["load_ood_pair", "noise_inputs", "split_classes"]
