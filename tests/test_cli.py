"""The CLI: listing, overrides, and one clear line for every kind of bad input, with exit code 2,
before any compilation, and no result directory left behind."""

import pytest

from dl_course import cli


def _run(capsys, tmp_path, *args):
    code = cli.main(["run", "sweep", "--workdir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    return code, err


BAD = [
    (["--config.train.dataset=mnist2d"], "unknown dataset 'mnist2d'; valid: "),
    (["--config.train.model=transformer"], "unknown model 'transformer'; valid: "),
    (["--config.train.optimizer=lion"], "Unknown optimizer 'lion'; valid: "),
    (["--config.train.learning_rates=[0.1, -1.0]"], "learning rates must be positive"),
    (["--config.train.learning_rates=[]"], "empty grid"),
    (["--config.train.seeds=[]"], "empty grid"),
    (["--config.train.batch_size=100000"], "batch_size 100000 must be in [1, 4000]"),
    (["--config.train.model=cnn2d", "--config.train.model_options={'channels': (4,)}"],
     "model 'cnn2d' does not accept inputs of shape (40,)"),
    (["--config.train.model=cnn2d"], "unknown option(s) ['depth', 'width'] for model 'cnn2d'; valid:"),
    (["--config.nonsense=1"], "unknown config key 'nonsense'"),
    (["--config.train.nonsense=1"], "unknown config key 'train.nonsense'"),
    (["--config.train.steps=1001"], "must be a positive multiple of eval_every"),
    (["--config.train.target_train_loss=-1.0"], "target_train_loss must be >= 0"),
    (["--config.train.optimizer=sam", "--config.train.optimizer_options={'base': 'lion'}"], "Unknown base rule 'lion'"),
    (["--config.train.dataset=tfds:cifar10", "--config.train.dataset_options={'data_dir': '/nonexistent'}"],
     "dl-course prepare tfds:cifar10 --data-dir /nonexistent"),
    (["--config.train.seeds=[0, 0]"], "repeated grid point: seed 0 given more than once in [0, 0]"),
    (["--config.train.learning_rates=[0.1, 0.3, 0.1]"], "repeated grid point: learning_rate 0.1 given more than once"),
    (["--config.train.model_options.width=0"], "model 'mlp': width must be an integer >= 1, got 0"),
    (["--config.train.model_options.depth=-1"], "model 'mlp': depth must be an integer >= 0, got -1"),
    (["--config.train.model=cnn1d", "--config.train.model_options={'channels': (4, 0)}"],
     "model 'cnn1d': channels must be a sequence of integers >= 1, got (4, 0)"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(capsys, tmp_path, args, message):
    code, err = _run(capsys, tmp_path, *args)
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["--config.train.dataset=tfds:cifar10"], ["--config.train.seeds=[0,0]"],
                                  ["--config.train.model_options.width=0"]])
def test_bad_input_is_the_only_line_a_real_process_prints(tmp_path, args):
    """In a fresh process (loggers as a user meets them, e.g. absl's warnings from tfds): stderr is
    exactly the one error line, stdout is empty, exit code 2."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dl_course.cli", "run", "sweep", "--workdir", str(tmp_path / "o"),
                           *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == "", done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dl-course: error: "), done.stderr
    assert not any(tmp_path.iterdir())


def test_unknown_study_lists_the_studies(capsys):
    assert cli.main(["run", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown study 'nope'; valid:" in err and "sweep" in err


def test_list_shows_every_study_with_its_variants(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines()}
    assert listed == set(cli.study_names()) and len(listed) >= 20
    assert "sweep" in listed and "[variants: paper_scale]" in out


def test_unknown_variant_lists_the_valid_ones(capsys, tmp_path):
    assert cli.main(["run", "sweep:huge", "--workdir", str(tmp_path / "o")]) == 2
    assert "unknown variant 'huge'; valid: default, paper_scale" in capsys.readouterr().err


def test_overrides_win_over_the_variant():
    _, config, variant = cli.study_config("sweep:paper_scale", ["--config.train.steps=40"])
    assert variant == "paper_scale" and config.train.steps == 40 and config.train.model_options.width == 512


def test_main_job_writes_the_result_layout(tmp_path, capsys):
    import json

    out = tmp_path / "run"
    code = cli.main(["run", "sweep", "--workdir", str(out), "--config.train.steps=20", "--config.train.eval_every=10",
                     "--config.train.model_options.width=16", "--config.train.seeds=[0, 1]",
                     "--config.train.learning_rates=[0.1, 1e4]"])
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
    assert not (tmp_path / "run.partial").exists() and (out / "complete.json").exists()
    assert config["variant"] == "default" and config["config"]["train"]["steps"] == 20


def test_prepare_without_tensorflow_is_one_line_exit_2(capsys):
    assert cli.main(["prepare", "tfds:mnist"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install -e ".[tfds]"' in err
