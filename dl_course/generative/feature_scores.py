"""Sample quality in a digits classifier's feature space: Frechet distance (Heusel et al. 2017, "FID")
and kernel inception distance (Binkowski et al. 2018, "KID"), with reference values that say what a
number means on this data.

* ``fit_feature_net``: a small MLP classifier (scikit-learn, ReLU, ``hidden`` widths) fitted on the
  real training images; ``FeatureNet.features`` are its penultimate-layer (last hidden layer)
  activations, the role the Inception network's pool features play for FID / KID. Not Inception:
  the numbers are not comparable with published FID / KID values.
* ``feature_distances``: ``frechet_distance`` and ``kernel_inception_distance`` between the features
  of two image sets.
* ``reference_distances``: the same two numbers for real training images against the real test
  images (a model as good as a fresh draw of the data: the floor at this sample size) and for
  pixel-shuffled test images against the test images (each image's pixels permuted independently:
  the intensity histogram kept, the shape destroyed: a ceiling).
* ``class_histogram_kl``: ``KL(h_samples || h_real)`` between predicted-class histograms.
* ``sample_scores``: everything a study reports for one set of samples.

The plug-in Frechet distance is biased upwards by ``O(d / n)`` (``d`` feature dimensions, ``n``
images), so a sample set is compared only with references of the same size (``reference_distances``
draws ``num`` training images); KID is unbiased at every size. Host-side numpy / scikit-learn.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dl_course.generative.metrics import frechet_distance, kernel_inception_distance
from dl_course.generative.sample_quality import (
    DigitsClassifier,
    label_statistics,
    nearest_neighbour_distances,
)


def _flat(x):
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


class FeatureNet(NamedTuple):
    """A fitted ReLU MLP classifier: ``h_0 = x``, ``h_l = relu(W_l h_{l-1} + b_l)``; ``features`` is the
    last hidden layer, ``probabilities`` the softmax of the output layer; ``test_accuracy`` on the real
    test images it was given (None if none)."""

    weights: tuple
    biases: tuple
    test_accuracy: float | None

    def features(self, x):
        """Penultimate-layer activations ``[n, hidden[-1]]`` of images ``x [n, ...]`` in ``[0, 1]``."""
        h = _flat(x)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        return h

    def probabilities(self, x):
        """``p(y | x) [n, C]``."""
        logits = self.features(x) @ self.weights[-1] + self.biases[-1]
        logits = logits - logits.max(-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(-1, keepdims=True)


def fit_feature_net(x_train, y_train, x_test=None, y_test=None, *, hidden=(128, 64), seed: int = 0,
                    max_iter: int = 500) -> FeatureNet:
    """scikit-learn's ``MLPClassifier`` (Adam, ReLU, L2 1e-4, ``random_state=seed``) on flattened real
    training images in ``[0, 1]`` (about 97% test accuracy on the 8x8 digits)."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(int(h) for h in hidden), random_state=int(seed), max_iter=max_iter)
    clf.fit(_flat(x_train), np.asarray(y_train))
    acc = None if x_test is None else float(clf.score(_flat(x_test), np.asarray(y_test)))
    return FeatureNet(tuple(np.asarray(w, np.float64) for w in clf.coefs_),
                      tuple(np.asarray(b, np.float64) for b in clf.intercepts_), acc)


def feature_distances(net: FeatureNet, x, y) -> dict:
    """``frechet_distance`` and ``kernel_inception_distance`` between the features of ``x`` and ``y``."""
    fx, fy = net.features(x).astype(np.float32), net.features(y).astype(np.float32)
    return {"frechet_distance": float(frechet_distance(fx, fy)),
            "kernel_inception_distance": float(kernel_inception_distance(fx, fy))}


def pixel_shuffled(x, seed: int = 0):
    """Every image's pixels permuted independently (numpy ``default_rng(seed)``): same intensities,
    no shape."""
    rng = np.random.default_rng(seed)
    flat = _flat(x)
    return np.stack([row[rng.permutation(row.size)] for row in flat]).reshape(np.shape(x))


def reference_distances(net: FeatureNet, x_train, x_test, num: int, *, seed: int = 0, repeats: int = 4) -> dict:
    """Reference values for ``num`` samples judged against ``x_test``: ``train_vs_test`` (``num``
    training images without replacement) and ``shuffled_test_vs_test`` (``num`` test images,
    pixel-shuffled), each the mean over ``repeats`` draws, with the spread (std) of the draws."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, pool, shuffle in (("train_vs_test", x_train, False), ("shuffled_test_vs_test", x_test, True)):
        draws = []
        for r in range(repeats):
            idx = rng.choice(len(pool), size=min(num, len(pool)), replace=False)
            x = pixel_shuffled(np.asarray(pool)[idx], seed + 1 + r) if shuffle else np.asarray(pool)[idx]
            draws.append(feature_distances(net, x, x_test))
        out[name] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
        out[name].update({f"{k}_std": float(np.std([d[k] for d in draws], ddof=1)) for k in draws[0]})
    return out


def confidence_references(classifier: DigitsClassifier, x_train, x_test, num_levels: int, *, seed: int = 0,
                          noise_levels=(1.0, 2.0, 3.0), blur_sigmas=(0.5, 0.7)) -> dict:
    """The classifier's mean max-probability ``mean_x max_y p(y | x)`` on real images and on
    controlled corruptions of the test images, so that a sample set's number can be read against
    what the classifier itself gives: ``train``, ``test``, ``test_noise_<s>`` (Gaussian noise of
    ``s`` level spacings per pixel, numpy ``default_rng(seed)``, decoded back to the ``num_levels``
    levels in ``[0, 1]`` as samples are), ``test_blur_<sigma>`` (``scipy.ndimage.gaussian_filter``
    of ``sigma`` pixels, decoded to levels) and ``shuffled_test`` (``pixel_shuffled``: no shape)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x_test = np.asarray(x_test, np.float64)
    levels = lambda x: np.round(np.clip(x, 0.0, 1.0) * (num_levels - 1)) / (num_levels - 1)
    conf = lambda x: float(classifier.probabilities(x).max(-1).mean())
    out = {"train": conf(x_train), "test": conf(x_test)}
    for s in noise_levels:
        out[f"test_noise_{s:g}"] = conf(levels(x_test + rng.normal(0.0, s / (num_levels - 1), x_test.shape)))
    spatial = (0, 1.0, 1.0) + (0,) * (x_test.ndim - 3)
    for sigma in blur_sigmas:
        out[f"test_blur_{sigma:g}"] = conf(levels(gaussian_filter(x_test, tuple(sigma * a for a in spatial))))
    out["shuffled_test"] = conf(pixel_shuffled(x_test, seed))
    return out


def class_histogram_kl(h_samples, h_real, floor: float = 1e-3) -> float:
    """``KL(h_samples || h_real) = sum_c h_s(c) log(h_s(c) / h_r(c))`` in nats; ``h_real`` floored at
    ``floor`` and renormalised so that a class absent from the real images stays finite."""
    p, q = np.asarray(h_samples, np.float64), np.maximum(np.asarray(h_real, np.float64), floor)
    q = q / q.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


def sample_scores(classifier: DigitsClassifier, net: FeatureNet, samples, x_test, x_train) -> dict:
    """For images ``samples`` in ``[0, 1]``: the classifier's ``mean_confidence`` (mean max-probability,
    also as ``mean_max_probability``), ``class_histogram`` and its ``class_histogram_kl`` from the real
    test images', ``frechet_distance`` and ``kernel_inception_distance`` to ``x_test`` in ``net``'s
    features, and the ``median_nn_distance`` to ``x_train``."""
    stats, real = label_statistics(classifier, samples), label_statistics(classifier, x_test)
    return {"mean_confidence": stats["mean_max_probability"], "mean_max_probability": stats["mean_max_probability"],
            "class_histogram": np.round(stats["class_histogram"], 4).tolist(),
            "class_histogram_kl": class_histogram_kl(stats["class_histogram"], real["class_histogram"]),
            **feature_distances(net, samples, x_test),
            "median_nn_distance": float(np.median(nearest_neighbour_distances(samples, x_train)))}
