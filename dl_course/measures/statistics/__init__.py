"""Statistics of the numbers the studies compare: 95% confidence intervals over seeds, paired
differences and their verdicts (``intervals``); hyperparameter choice from cross-validation or
validation scores (``selection``); confusion matrices of predictions (``classification``).
"""

from dl_course.measures.statistics.classification import confusion_matrix
from dl_course.measures.statistics.intervals import difference_ci, mean_ci, paired_difference_ci, verdict
from dl_course.measures.statistics.selection import choose, pick_on_validation

__all__ = [
    # classification
    "confusion_matrix",
    # intervals
    "difference_ci", "mean_ci", "paired_difference_ci", "verdict",
    # selection
    "choose", "pick_on_validation",
]
