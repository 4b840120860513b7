"""Sample quality of image models judged against real data: a classifier's view and a memorisation
check.

* ``fit_digits_classifier``: multinomial logistic regression (scikit-learn) on flattened real
  training images; ``label_statistics`` then reports, for any set of images, the classifier's class
  histogram ``h_c = (1/n) #{x : argmax_y p(y|x) = c}`` and the mean max-probability
  ``mean_x max_y p(y|x)``. Samples of a good model should look like the real test images through
  this lens: a near-uniform histogram over the 10 digits (mode coverage) and a confidence close to
  the real images' (recognisable digits). It is the digits analogue of the statistics behind the
  Inception Score (Salimans et al. 2016), with the same caveat: a classifier judges
  recognisability and class balance, not the fidelity of the full distribution.
* ``nearest_neighbour_distances``: the Euclidean distance of every image to its nearest training
  image. Samples much closer to the training set than real test images are (median distance)
  indicate memorisation (cf. the "nearest neighbours" figures of Brock et al. 2019 and the
  memorisation analysis of Carlini et al. 2023); samples much farther away, poor samples.
* ``sample_quality_report``: both, for samples and for the real test images side by side.

All images are taken in the scale of the classifier's training images (e.g. ``[0, 1]``): map samples
back from the model's ``[low, high]`` first. Host-side numpy / scikit-learn: evaluation, not training.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _flat(x):
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


class DigitsClassifier(NamedTuple):
    """A fitted multinomial logistic regression: ``p(y|x) = softmax(W x + b)``; ``test_accuracy`` on
    the real test images it was given (None if none)."""

    weights: np.ndarray        # [C, D]
    bias: np.ndarray           # [C]
    test_accuracy: float | None

    def probabilities(self, x):
        """``p(y | x) [n, C]`` for images ``x [n, ...]``."""
        logits = _flat(x) @ self.weights.T + self.bias
        logits = logits - logits.max(-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(-1, keepdims=True)


def fit_digits_classifier(x_train, y_train, x_test=None, y_test=None, *, C: float = 1.0,
                          max_iter: int = 2000) -> DigitsClassifier:
    """Multinomial logistic regression ``min_W,b -sum_n log softmax(W x_n + b)_{y_n} + ||W||^2 / (2C)``
    (scikit-learn's L-BFGS) on flattened real training images (about 96% test accuracy on the 8x8
    digits)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=max_iter).fit(_flat(x_train), np.asarray(y_train))
    acc = None if x_test is None else float(clf.score(_flat(x_test), np.asarray(y_test)))
    return DigitsClassifier(clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64), acc)


def label_statistics(classifier: DigitsClassifier, x) -> dict:
    """``class_histogram`` (fraction of images per predicted class, a list summing to 1),
    ``mean_max_probability`` (``mean_x max_y p(y|x)``) and ``histogram_entropy`` (nats; ``log C``
    for a uniform histogram) of the images ``x`` under ``classifier``."""
    p = classifier.probabilities(x)
    num_classes = p.shape[1]
    hist = np.bincount(np.argmax(p, -1), minlength=num_classes) / len(p)
    nz = hist[hist > 0]
    return {"class_histogram": hist.tolist(), "mean_max_probability": float(p.max(-1).mean()),
            "histogram_entropy": float(-np.sum(nz * np.log(nz)))}


def nearest_neighbour_distances(x, x_train, chunk: int = 512):
    """``min_m ||x_n - x_train_m||_2`` for every ``x_n`` (flattened), in chunks of ``chunk`` rows,
    using ``||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2`` (clipped at 0)."""
    a, b = _flat(x), _flat(x_train)
    b2 = np.sum(b ** 2, -1)
    out = []
    for start in range(0, len(a), chunk):
        block = a[start:start + chunk]
        sq = np.sum(block ** 2, -1)[:, None] - 2 * block @ b.T + b2[None]
        out.append(np.sqrt(np.maximum(sq.min(-1), 0.0)))
    return np.concatenate(out) if out else np.zeros((0,))


def sample_quality_report(classifier: DigitsClassifier, samples, x_test, x_train) -> dict:
    """``{"samples": stats, "real": stats}`` with ``label_statistics`` plus
    ``median_nn_distance`` (median ``nearest_neighbour_distances`` to ``x_train``) for the samples
    and for the real test images; ``nn_distance_ratio`` = samples' median / test images' median
    (well below 1: memorisation; well above: samples off the data manifold)."""
    report = {}
    for name, x in (("samples", samples), ("real", x_test)):
        stats = label_statistics(classifier, x)
        stats["median_nn_distance"] = float(np.median(nearest_neighbour_distances(x, x_train)))
        report[name] = stats
    report["nn_distance_ratio"] = report["samples"]["median_nn_distance"] / report["real"]["median_nn_distance"]
    if classifier.test_accuracy is not None:
        report["classifier_test_accuracy"] = classifier.test_accuracy
    return report
