"""sharpness_vs_calibration's intervention (issue 28, part 2): SAM's rho as a two-arm grid axis at one
learning rate, every run stopped at one train loss. At a tiny size (digits, a 64-16-16-10 MLP,
5 seeds, lr 0.1, train loss 0.5) SAM with rho = 0.1 ends in a flatter minimum than plain SGD
(rho = 0) in every seed; the headline's effects are the paired differences of the rows with their
95% t intervals. With rho = 0 in both arms the effect is zero and the test fails (tried). Five seeds
(vmapped: no extra compilation): with three, the t interval's 4.30 x standard error reached above 0
for one epoch order although every seed was flatter (index_shuffle orders: upper end +0.26)."""

import json

import numpy as np
import pytest

from dl_course import cli
from dl_course.measures.statistics import intervals
from dl_course.train import ConfigError

RHO = 0.1
SEEDS = (0, 1, 2, 3, 4)
TINY = ["--config.train.dataset=digits", "--config.train.steps=600", "--config.train.eval_every=20",
        "--config.train.model_options.width=16", "--config.train.seeds=[0, 1, 2, 3, 4]",
        "--config.train.learning_rates=[0.1]", "--config.train.target_train_loss=0.5",
        "--config.measure_examples=100", "--config.lanczos_iters=8", "--config.trace_probes=3",
        "--config.ood.noise=[]"]


def test_sam_arm_lowers_lambda_max_at_one_train_loss(tmp_path):
    out = cli.run_study("sharpness_vs_calibration:intervention",
                        TINY + [f"--config.intervention.arms=[0.0, {RHO}]"], workdir=str(tmp_path / "x"))
    summary = json.loads((out / "summary.json").read_text())
    rows, iv = summary["runs"], summary["headline"]["intervention"]
    assert len(rows) == 10 and all(r["converged"] for r in rows)
    assert sorted((r["arm"], r["rho"]) for r in rows) == [("control", 0.0)] * 5 + [("treated", RHO)] * 5
    for r in rows:
        assert 0.98 * 0.5 <= r["final_train_loss"] <= 0.5
    by = {(r["arm"], r["seed"]): r for r in rows}
    diffs = {k: [by[("treated", s)][k] - by[("control", s)][k] for s in SEEDS]
             for k in ("lambda_max", "ece", "nll")}
    assert max(diffs["lambda_max"]) < 0  # flatter in every seed
    assert iv["num_pairs"] == 5 and iv["axis"] == "rho" and iv["arms"] == {"control": 0.0, "treated": RHO}
    for k in ("lambda_max", "ece", "nll"):
        eff = iv[f"effect_on_{k}"]
        assert set(eff) >= {"estimate", "ci"}
        assert eff["estimate"] == pytest.approx(np.mean(diffs[k]), rel=1e-9, abs=1e-12)
        assert eff["ci"] == pytest.approx(intervals.paired_difference_ci(
            [by[("treated", s)][k] for s in SEEDS], [by[("control", s)][k] for s in SEEDS])["ci"])
    assert iv["effect_on_lambda_max"]["ci"][1] < 0 and iv["effect_on_lambda_max"]["verdict"] == "lower"


@pytest.mark.parametrize("extra,match", [
    (["--config.intervention.arms=[0.05, 0.05]"], "two different values"),
    (["--config.train.learning_rates=[0.1, 0.3]"], "one learning rate"),
    (["--config.train.target_train_loss=0.0"], "one train loss"),
])
def test_a_bad_intervention_is_rejected_before_training(tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        cli.run_study("sharpness_vs_calibration:intervention", TINY + extra, workdir=str(tmp_path / "y"))
    assert not (tmp_path / "y").exists()
