"""Sample-quality measures: the digits classifier's statistics and nearest-neighbour distances against
direct computations, and the memorisation check on copies of training images."""

import numpy as np
import scipy.spatial

from dl_course import data
from dl_course.generative.sample_quality import (
    fit_digits_classifier,
    label_statistics,
    nearest_neighbour_distances,
    sample_quality_report,
)


def test_nearest_neighbour_distances_match_cdist():
    """Chunked expansion ||a||^2 - 2ab + ||b||^2 = scipy's cdist minimum (float64, 1e-9), across chunk
    boundaries; a point of the training set is at distance 0."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(37, 2, 5)), rng.normal(size=(50, 2, 5))
    ref = scipy.spatial.distance.cdist(a.reshape(37, -1), b.reshape(50, -1)).min(1)
    np.testing.assert_allclose(nearest_neighbour_distances(a, b, chunk=8), ref, rtol=1e-9)
    np.testing.assert_allclose(nearest_neighbour_distances(b[:3], b), 0.0, atol=1e-6)


def test_classifier_statistics_and_memorisation_check_on_digits():
    """The classifier is fitted on real training digits (test accuracy > 0.9); its class histogram is
    the frequency of its argmax predictions (sums to 1; the test set is roughly balanced: entropy
    within 0.05 of log 10). Its mean max-probability on real test digits is far above that on the
    same digits with their pixels shuffled within each image (same intensities, no digit shape) and
    on uniform noise (measured 0.90 vs 0.57 and 0.52; a statistic that ignored the image, or took
    the wrong axis, would not separate them). "Samples" that are copies of training images have
    median nearest-neighbour distance 0 (ratio 0: memorisation flagged); uniform noise has a ratio
    far above 1."""
    d = data.load("digits")
    clf = fit_digits_classifier(d.x_train, d.y_train, d.x_test, d.y_test)
    assert clf.test_accuracy > 0.9
    stats = label_statistics(clf, d.x_test)
    pred = np.argmax(clf.probabilities(d.x_test), -1)
    np.testing.assert_allclose(stats["class_histogram"], np.bincount(pred, minlength=10) / len(pred))
    assert abs(sum(stats["class_histogram"]) - 1) < 1e-12
    assert abs(stats["histogram_entropy"] - np.log(10)) < 0.05
    rng = np.random.default_rng(0)
    flat = d.x_test.reshape(len(d.x_test), -1)
    shuffled = np.stack([row[rng.permutation(row.size)] for row in flat]).reshape(d.x_test.shape)
    noise_like = rng.uniform(size=d.x_test.shape)
    for baseline in (shuffled, noise_like):
        assert stats["mean_max_probability"] > label_statistics(clf, baseline)["mean_max_probability"] + 0.2
    np.testing.assert_allclose(stats["mean_max_probability"], np.mean(np.max(clf.probabilities(d.x_test), -1)))
    copies = sample_quality_report(clf, d.x_train[:100], d.x_test, d.x_train)
    assert copies["samples"]["median_nn_distance"] == 0.0 and copies["nn_distance_ratio"] == 0.0
    assert copies["real"]["median_nn_distance"] > 0.5
    noise = np.random.default_rng(0).uniform(size=(100,) + d.input_shape)
    assert sample_quality_report(clf, noise, d.x_test, d.x_train)["nn_distance_ratio"] > 2.0
