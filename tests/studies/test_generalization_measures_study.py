"""The generalization-measures study at tiny size: the protocol ranks the gap itself first
(τ = Ψ = 1), pure noise near 0, every kept model is at the target loss, and the non-converged
ones are dropped and counted."""

import json

from dl_course import cli


def test_generalization_measures_tiny_ranks_the_gap_first_and_drops_unconverged(tmp_path):
    out = cli.run_study("generalization_measures", [
        "--config.train.steps=600", "--config.train.eval_every=50", "--config.train.chunk_evals=4",
        "--config.train.target_train_loss=0.3", "--config.train.learning_rates=[0.001, 0.1]",
        "--config.train.dataset_options={'num_train': 200}", "--config.momenta=[0.0, 0.9]",
        "--config.weight_decays=[0.0, 0.001]", "--config.widths=[32]", "--config.depths=[1]",
        "--config.measures=['param_norm', 'pacbayes_flatness', 'lambda_max']", "--config.measure_examples=100",
        "--config.min_models=2", "--config.measure.num_mc_samples=2", "--config.measure.num_bisection_steps=6",
        "--config.measure.lanczos_iters=5"], workdir=str(tmp_path / "x"))
    s = json.loads((out / "summary.json").read_text())
    h = s["headline"]
    # lr 0.001 without momentum cannot reach CE 0.3 on 200 examples in 600 steps: dropped and counted
    assert h["num_trained"] == 8 and h["num_dropped"] >= 1 and h["num_models"] + h["num_dropped"] == 8
    kept = [r for r in s["runs"] if r["converged"]]
    assert len(kept) == h["num_models"] and all(r["final_train_loss"] <= 0.3 for r in kept)
    assert all(r["steps_to_target"] > 0 for r in kept)
    assert all(r["steps_to_target"] == -1 for r in s["runs"] if not r["converged"])
    assert h["kendall_tau"]["sanity_gap"] == 1.0 and h["granulated_psi"]["sanity_gap"] == 1.0
    assert abs(h["kendall_tau"]["sanity_noise"]) < 1.0
    assert {"measure_param_norm", "measure_pacbayes_flatness", "measure_lambda_max", "generalization_gap",
            "train_error", "test_error", "measure_steps_to_ce_0.1"} <= set(kept[0])
    assert (out / "measure_ranking.png").exists() and (out / "best_and_worst.png").exists()
