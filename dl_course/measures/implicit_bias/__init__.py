"""Implicit bias of gradient methods: where the iterates go, and the flows they follow.

* ``directions``: directions and margins of linear iterates against the max-margin solutions of
  ``max_margin_solvers`` (Soudry et al. 2018; Gunasekar et al. 2018).
* ``modified_flow``: backward error of GD against the gradient and modified flows (Barrett &
  Dherin 2021); ``sgd_modified``, ``sgd_flows``: SGD's modified loss and the mean SGD iterate
  over all minibatch orders (Smith et al. 2021).
* ``central_flow`` (+ ``complementarity``, its semidefinite complementarity problem): the central
  flow of GD at the edge of stability (Cohen et al. 2025).
* ``label_noise``: label-noise SGD's drift to flat minima on a diagonal linear network.
"""

from dl_course.measures.implicit_bias.central_flow import (
    CentralFlowResult,
    central_flow,
    central_flow_velocity,
    gd_trajectory,
    gradient_flow,
    sharpness_along,
    third_derivative_terms,
    time_average,
)
from dl_course.measures.implicit_bias.complementarity import (
    project_psd,
    sdcp_residuals,
    solve_sdcp,
    sym_to_vec,
    vec_to_sym,
)
from dl_course.measures.implicit_bias.directions import (
    direction_measures,
    first_step_above,
    last_change_step,
    max_margin_directions,
    norm_growth_rate,
)
from dl_course.measures.implicit_bias.modified_flow import (
    BackwardErrorResult,
    backward_error,
    gd_ladder,
    gradient_flows,
    modified_loss,
)
from dl_course.measures.implicit_bias.sgd_flows import SGDOrderResult, sgd_backward_error
from dl_course.measures.implicit_bias.sgd_modified import (
    SGDModifiedLoss,
    all_orders,
    mean_sgd_epoch,
    sgd_epoch,
    sgd_modified_loss,
    sgd_modified_loss_terms,
)

__all__ = [
    # central_flow
    "CentralFlowResult", "central_flow", "central_flow_velocity", "gd_trajectory", "gradient_flow",
    "sharpness_along", "third_derivative_terms", "time_average",
    # complementarity
    "project_psd", "sdcp_residuals", "solve_sdcp", "sym_to_vec", "vec_to_sym",
    # directions
    "direction_measures", "first_step_above", "last_change_step", "max_margin_directions", "norm_growth_rate",
    # modified_flow
    "BackwardErrorResult", "backward_error", "gd_ladder", "gradient_flows", "modified_loss",
    # sgd_flows
    "SGDOrderResult", "sgd_backward_error",
    # sgd_modified
    "SGDModifiedLoss", "all_orders", "mean_sgd_epoch", "sgd_epoch", "sgd_modified_loss", "sgd_modified_loss_terms",
]
