"""Feature-space sample scores: KID against a direct double loop, the Frechet distance's reference
values on the digits (train-vs-test far below pixel-shuffled-test-vs-test), and the class-histogram KL."""

import jax
import numpy as np

from dl_course import data
from dl_course.generative.feature_scores import (
    class_histogram_kl,
    feature_distances,
    fit_feature_net,
    pixel_shuffled,
    reference_distances,
)
from dl_course.generative.metrics import kernel_inception_distance


def _kid_direct(x, y, degree=3, coef0=1.0):
    d = x.shape[1]
    k = lambda a, b: (float(a @ b) / d + coef0) ** degree
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_kid_equals_the_direct_unbiased_estimate():
    """float64, 1e-10 relative: the vectorised unbiased MMD^2 with the cubic kernel equals the double
    sums over i != j (unequal sizes 7 and 11, 5 features); two samples of one law give a value near
    0 (|KID| < 0.05), a shifted law a value > 0.5."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(7, 5)), rng.normal(size=(11, 5)) + 0.3
        np.testing.assert_allclose(float(kernel_inception_distance(x, y)), _kid_direct(x, y), rtol=1e-10)
        np.testing.assert_allclose(float(kernel_inception_distance(x, y, degree=2, coef0=0.5)),
                                   _kid_direct(x, y, 2, 0.5), rtol=1e-10)
        a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
        assert abs(float(kernel_inception_distance(a, b))) < 0.05
        assert float(kernel_inception_distance(a, b + 1.0)) > 0.5


def test_feature_net_references_order_real_and_shuffled_digits():
    """The MLP classifier is accurate (> 0.93 test accuracy); its penultimate features are the last
    hidden layer (width 64). Train-vs-test Frechet distance at 200 images is at least 5x smaller than
    pixel-shuffled-test-vs-test, KID likewise; pixel shuffling keeps each image's intensities."""
    d = data.load("digits")
    net = fit_feature_net(d.x_train, d.y_train, d.x_test, d.y_test, hidden=(128, 64), max_iter=300)
    assert net.test_accuracy > 0.93
    assert net.features(d.x_test[:3]).shape == (3, 64)
    np.testing.assert_allclose(np.sort(pixel_shuffled(d.x_test[:2]).reshape(2, -1)),
                               np.sort(np.asarray(d.x_test[:2]).reshape(2, -1)))
    ref = reference_distances(net, d.x_train, d.x_test, 200, repeats=2)
    real, shuffled = ref["train_vs_test"], ref["shuffled_test_vs_test"]
    assert 5 * real["frechet_distance"] < shuffled["frechet_distance"], ref
    assert 5 * real["kernel_inception_distance"] < shuffled["kernel_inception_distance"], ref
    same = feature_distances(net, d.x_test, d.x_test)
    assert abs(same["frechet_distance"]) < 1e-2 * real["frechet_distance"]


def test_class_histogram_kl():
    """Zero for equal histograms, the closed form for two-class histograms, finite with a floor."""
    assert class_histogram_kl([0.5, 0.5], [0.5, 0.5]) == 0.0
    np.testing.assert_allclose(class_histogram_kl([0.75, 0.25], [0.5, 0.5]),
                               0.75 * np.log(1.5) + 0.25 * np.log(0.5), rtol=1e-12)
    assert np.isfinite(class_histogram_kl([0.5, 0.5], [1.0, 0.0]))


def test_confidence_references_order_clean_corrupted_and_shuffled_digits():
    """The digits classifier's mean max-probability: test images equal ``label_statistics``' value
    exactly; it falls with the corruption's strength (noise of 1 < 3 level spacings, blur of 0.5 <
    0.7 pixels) and is lowest for pixel-shuffled images (measured on this data: 0.90, 0.89 / 0.84,
    0.84 / 0.71, 0.60)."""
    from dl_course.generative import fit_digits_classifier
    from dl_course.generative.feature_scores import confidence_references
    from dl_course.generative.sample_quality import label_statistics

    d = data.load("digits")
    clf = fit_digits_classifier(d.x_train, d.y_train)
    ref = confidence_references(clf, d.x_train, d.x_test, 17)
    assert ref["test"] == label_statistics(clf, d.x_test)["mean_max_probability"]
    assert ref["test"] > ref["test_noise_1"] > ref["test_noise_3"] > ref["shuffled_test"]
    assert ref["test"] > ref["test_blur_0.5"] > ref["test_blur_0.7"] > ref["shuffled_test"]
    assert ref["train"] > 0.85 and ref["shuffled_test"] < 0.7
