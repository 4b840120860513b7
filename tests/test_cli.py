"""The CLI: listing, overrides, and one clear line for every kind of bad input, with exit code 2,
before any compilation, and no result directory left behind."""

import pytest

from dl_course import cli


def _run(capsys, tmp_path, *args):
    code = cli.main(["run", "sweep", "--workdir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    return code, err


BAD = [
    (["--config.dataset=mnist2d"], "unknown dataset 'mnist2d'; valid: "),
    (["--config.model=transformer"], "unknown model 'transformer'; valid: "),
    (["--config.optimizer=lion"], "unknown optimizer 'lion'; valid: "),
    (["--config.learning_rates=[0.1, -1.0]"], "learning rates must be positive"),
    (["--config.learning_rates=[]"], "empty grid"),
    (["--config.seeds=[]"], "empty grid"),
    (["--config.batch_size=100000"], "batch_size 100000 must be in [1, 4000]"),
    (["--config.model=cnn2d", "--config.model_options={'channels': (4,)}"],
     "model 'cnn2d' does not accept inputs of shape (40,)"),
    (["--config.model=cnn2d"], "unknown option(s) ['depth', 'width'] for model 'cnn2d'; valid:"),
    (["--config.nonsense=1"], "unknown config key 'nonsense'"),
    (["--config.steps=1001"], "must be a positive multiple of eval_every"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(capsys, tmp_path, args, message):
    code, err = _run(capsys, tmp_path, *args)
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())


def test_unknown_study_lists_the_studies(capsys):
    assert cli.main(["run", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown study 'nope'; valid:" in err and "sweep" in err


def test_list_shows_every_study(capsys):
    assert cli.main(["list"]) == 0
    assert "sweep" in capsys.readouterr().out


def test_main_job_writes_the_result_layout(tmp_path, capsys):
    import json

    out = tmp_path / "run"
    code = cli.main(["run", "sweep", "--workdir", str(out), "--config.steps=20", "--config.eval_every=10",
                     "--config.model_options.width=16", "--config.seeds=[0, 1]", "--config.learning_rates=[0.1, 1e4]"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "train_loss" in printed and "diverged" in printed
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "summary.json", "metrics.npz", "learning_curves.png", "heatmap.png"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["runs"]) == 4 and summary["conventions"]["loss_reduction"] == "mean over examples"
    assert {"seed", "learning_rate", "diverged"} <= set(summary["runs"][0])
    assert [r["diverged"] for r in summary["runs"]] == [False, True, False, True]
    config = json.loads((out / "config.json").read_text())
    assert "jax" in config["versions"] and "device_kind" in config["device"]
    assert not (tmp_path / "run.partial").exists()
