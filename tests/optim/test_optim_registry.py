"""The optimizer registry: names, lookup errors, and the sweepable hyperparameter names."""

import inspect
import re

import optax
import pytest

from dl_course import optim

EXPECTED = {
    "sgd": ("learning_rate", "weight_decay"),
    "momentum": ("learning_rate", "momentum", "weight_decay"),
    "nesterov": ("learning_rate", "momentum", "weight_decay"),
    "adagrad": ("learning_rate", "initial_accumulator_value", "eps"),
    "rmsprop": ("learning_rate", "decay", "eps", "initial_scale"),
    "adam": ("learning_rate", "b1", "b2", "eps", "eps_root"),
    "adamw": ("learning_rate", "b1", "b2", "eps", "eps_root", "weight_decay"),
    "sign_descent": ("learning_rate",),
    "normalized_gd": ("learning_rate", "eps"),
    "sam": ("learning_rate", "rho", "adaptive_eta", "weight_decay"),  # base "sgd" by default
}


def test_registry_holds_every_rule_of_the_contract():
    assert set(optim.REGISTRY) == set(EXPECTED)
    assert set(optim.BASE_RULES) == set(EXPECTED) - {"sam"}
    for name, factory in optim.REGISTRY.items():
        assert optim.get(name) is factory
        assert getattr(optim, name) is factory  # dl_course.optim.<rule> is the same factory
        assert isinstance(factory(0.1), optax.GradientTransformationExtraArgs)
        assert factory.__doc__ and ".. math::" in factory.__doc__, f"{name}: docstring lacks the update equations"
        assert re.search(r"\b(19|20)\d\d\b", factory.__doc__), f"{name}: docstring cites no paper (year)"


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamax'; valid: \['adagrad', 'adam', 'adamw'"):
        optim.get("adamax")
    with pytest.raises(ValueError, match="valid:"):
        optim.hyperparameter_names("adamax")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hyperparameter_names(name):
    assert optim.hyperparameter_names(name) == EXPECTED[name]


def test_sam_hyperparameter_names_follow_its_base():
    assert optim.hyperparameter_names("sam", base="adam") == (
        "learning_rate", "rho", "adaptive_eta", "b1", "b2", "eps", "eps_root")
    assert optim.hyperparameter_names("sam", base="momentum", adaptive=True) == (
        "learning_rate",
        "rho",
        "adaptive_eta",
        "momentum",
        "weight_decay",
    )
    with pytest.raises(ValueError, match="Unknown options"):
        optim.hyperparameter_names("adam", base="sgd")
    with pytest.raises(ValueError, match="Unknown options"):
        optim.hyperparameter_names("sam", rho=0.1)  # numeric: a sweep axis, not an option
    with pytest.raises(ValueError, match="valid:"):
        optim.hyperparameter_names("sam", base="lion")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_listed_hyperparameter_is_accepted_and_every_numeric_keyword_listed(name):
    """The names are exactly the factory's numeric keywords (plus SAM's base keywords)."""
    factory = optim.get(name)
    parameters = inspect.signature(factory).parameters
    numeric = [
        p.name
        for p in parameters.values()
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    ]
    names = optim.hyperparameter_names(name)
    assert names[0] == "learning_rate"
    assert set(numeric) <= set(names)
    factory(**{n: 0.5 for n in names})  # all accepted together
