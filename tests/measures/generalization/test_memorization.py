"""Steps to fit the training set and the corrupted-label fraction (dl_course.measures.generalization.memorization)."""

import numpy as np

from dl_course import measures


def test_steps_to_fit_first_full_accuracy_step():
    steps = np.array([0, 10, 20, 30])
    acc = np.array([[0.1, 0.9, 1.0, 1.0], [0.1, 0.5, 0.99, 0.999], [0.1, 1.0, 0.98, 1.0]], np.float32)
    np.testing.assert_array_equal(measures.steps_to_fit(steps, acc), [20.0, np.nan, 10.0])
    # A lower threshold: the first step at or above it.
    np.testing.assert_array_equal(measures.steps_to_fit(steps, acc, threshold=0.9), [10.0, 20.0, 10.0])


def test_corrupted_fraction_counts_changed_labels():
    clean = np.array([0, 1, 2, 3])
    np.testing.assert_allclose(measures.corrupted_fraction(np.array([[0, 1, 2, 3], [1, 1, 2, 0]]), clean), [0, 0.5])
