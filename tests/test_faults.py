"""Fault injection through the CLI, as a user meets the faults: each gives one line on stderr and
its exit code, and leaves earlier results byte-identical (issue: nothing lost, nothing mislabeled)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dl_course import cli, rundir
from dl_course.rundir import RunDir, status

TINY = ["--config.train.steps=60", "--config.train.eval_every=10", "--config.train.chunk_evals=1",
        "--config.train.model_options.width=16", "--config.train.seeds=[0, 1]",
        "--config.train.learning_rates=[0.1, 0.3]", "--config.train.checkpoint_every=1",
        "--config.train.dataset_options={'num_train': 400}"]


def _digest(path: Path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _run(capsys, *args):
    """Exit code and stderr as a terminal shows it: each line after its last carriage return (tqdm
    redraws and finally clears its progress line with them)."""
    code = cli.main(["run", "sweep", *args])
    err = capsys.readouterr().err
    shown = (line.split("\r")[-1] for line in err.splitlines())
    return code, "\n".join(line for line in shown if line.strip() and not line.startswith("sweep:")).strip()


def test_finished_workdir_is_never_overwritten_silently(capsys, tmp_path):
    out = tmp_path / "r"
    assert _run(capsys, "--workdir", str(out), *TINY)[0] == 0
    assert status(out) == "finished" and (out / "complete.json").exists()
    before = _digest(out)
    code, err = _run(capsys, "--workdir", str(out), *TINY)
    assert code == 2 and len(err.splitlines()) == 1 and "already holds a finished run; give --overwrite" in err
    assert _digest(out) == before
    code, _ = _run(capsys, "--workdir", str(out), "--overwrite", *TINY[:-1],
                   "--config.train.dataset_options={'num_train': 200}")
    assert code == 0 and _digest(out) != before
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conventions"]["train_metrics_examples"] == 200  # the new run replaced the old one whole
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*lock"))


def test_second_run_into_a_busy_workdir_is_refused(capsys, tmp_path):
    out = tmp_path / "busy"
    holder = RunDir(out).acquire()  # another run holds the directory
    try:
        code, err = _run(capsys, "--workdir", str(out), *TINY)
        assert code == 2 and len(err.splitlines()) == 1 and "being written by another run" in err
    finally:
        holder.release()
    assert not out.exists()


# The child runs the CLI with checkpoint.save wrapped: after the first checkpoint it writes a marker
# file and waits (up to 5 minutes) until its SIGTERM handler has run, so the signal always arrives
# mid-run, however fast the machine: the run stops after the next chunk, never finishes first.
_PAUSE_AFTER_FIRST_CHECKPOINT = """
import signal, sys, time
from pathlib import Path
from dl_course import cli
from dl_course.train import checkpoint

marker, real_save, received = Path(sys.argv[1]), checkpoint.save, []

def save(*args, **kwargs):
    path = real_save(*args, **kwargs)
    if not marker.exists():
        handler = signal.getsignal(signal.SIGTERM)  # the engine's preemption handler

        def recording(signum, frame):
            received.append(signum)
            handler(signum, frame)

        signal.signal(signal.SIGTERM, recording)
        marker.write_text("first checkpoint written")
        deadline = time.time() + 300
        while not received and time.time() < deadline:
            time.sleep(0.02)
    return path

checkpoint.save = save
sys.exit(cli.main(sys.argv[2:]))
"""


def _preempted_run(out: Path, *args) -> tuple[int, str]:
    """Run ``dl-course run sweep --workdir out *args`` in a child process, send it SIGTERM (a
    cluster's preemption notice) once its first checkpoint is written; exit code and stderr."""
    env = dict(os.environ)  # the test process's XLA flags and device count: same numerics as in-process runs
    marker = out.with_name(out.name + ".marker")
    proc = subprocess.Popen([sys.executable, "-c", _PAUSE_AFTER_FIRST_CHECKPOINT, str(marker), "run", "sweep",
                             "--workdir", str(out), *args], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"no checkpoint was written (exit code {proc.poll()})"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_resume_with_a_different_grid_is_refused_and_nothing_is_touched(capsys, tmp_path):
    out = tmp_path / "g"
    code, err = _preempted_run(out, *TINY)
    assert code == cli.EXIT_PREEMPTED, err
    last = err.strip().splitlines()[-1]
    assert "stopped by SIGTERM after a complete chunk" in last and f"--workdir {out} --resume" in last
    partial = out.with_name("g.partial")
    before = _digest(partial)
    code, err = _run(capsys, "--workdir", str(out), "--resume", *TINY, "--config.train.learning_rates=[0.5, 1.1]")
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot resume" in err and "grid" in err and "0.3" in err and "1.1" in err, err
    assert _digest(partial) == before and not out.exists()


def test_sigterm_then_resume_equals_the_uninterrupted_run(capsys, tmp_path):
    """Deterministic: the signal arrives after the first of 6 chunks (the child waits for it), the
    run stops after the second with a checkpoint, and ``--resume`` finishes it bitwise equal to the
    uninterrupted run."""
    full = tmp_path / "full"
    assert _run(capsys, "--workdir", str(full), *TINY)[0] == 0
    out = tmp_path / "cut"
    code, err = _preempted_run(out, *TINY)
    assert code == cli.EXIT_PREEMPTED, err
    chunks = sorted(p.name for p in (tmp_path / "cut.partial" / "checkpoints" / "wave_000").glob("chunk_*"))
    assert chunks == ["chunk_000001", "chunk_000002"], chunks  # stopped after the chunk the signal arrived in
    assert _run(capsys, "--workdir", str(out), "--resume", *TINY)[0] == 0
    a, b = np.load(full / "metrics.npz"), np.load(out / "metrics.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])  # bitwise


def _no_debris(root: Path) -> list[str]:
    """Temporary files a failed write could leave: orbax's unfinished checkpoints, our atomic writers'."""
    return [str(p) for p in root.rglob("*") if ".orbax-checkpoint-tmp" in p.name or p.name.endswith(".tmp")]


def test_disk_full_while_writing_results_is_one_line_and_no_result_dir(capsys, tmp_path, monkeypatch):
    """The atomic writer itself meets ENOSPC on summary.json: one line naming the file and its size,
    exit 1, no temporary file, the final directory absent, the checkpoints kept for --resume."""
    real = rundir._write_fd

    def failing(fd, data):
        if len(data) > 100 and b'"headline"' in data:  # summary.json
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(rundir, "_write_fd", failing)
    out = tmp_path / "full_disk"
    code, err = _run(capsys, "--workdir", str(out), *TINY)
    assert code == cli.EXIT_FAILURE and len(err.splitlines()) == 1, err
    assert f"cannot write {tmp_path}/full_disk.partial/summary.json (No space left on device): the write needs " in err
    assert "bytes" in err and "untouched" in err and "--resume" in err, err
    assert not out.exists() and not _no_debris(tmp_path)  # nothing half-written anywhere


class _FullDiskOnSave:
    """An orbax checkpointer whose ``fail_at``-th save starts writing (a temporary directory with a
    shard in it, as orbax leaves one) and then fails as tensorstore does on a full disk."""

    def __init__(self, fail_at: int, calls: list):
        from orbax.checkpoint import StandardCheckpointer

        self.real, self.fail_at, self.calls = StandardCheckpointer(), fail_at, calls

    def save(self, path, tree):
        import jax

        self.calls.append((Path(path).name, sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))))
        if len(self.calls) == self.fail_at:
            tmp = Path(f"{path}.orbax-checkpoint-tmp-1234") / "ocdbt.process_0"
            tmp.mkdir(parents=True)
            (tmp / "d").write_bytes(b"half a shard")
            raise ValueError(f'RESOURCE_EXHAUSTED: Error writing "leaves.0/0" in OCDBT database at local file '
                             f'"{tmp}": Failed writing: [OS error 28: No space left on device]')
        return self.real.save(path, tree)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_disk_full_during_a_checkpoint_keeps_the_last_complete_one_resumable(capsys, tmp_path, monkeypatch):
    """The third checkpoint's write fails as orbax does on a full disk: one line naming the checkpoint
    and the bytes it needs, exit 1, no ``*.orbax-checkpoint-tmp*`` left, the two complete
    checkpoints kept; ``--resume`` then finishes bitwise equal to the uninterrupted run."""
    from dl_course.train import checkpoint

    full = tmp_path / "full"
    assert _run(capsys, "--workdir", str(full), *TINY)[0] == 0
    calls = []
    monkeypatch.setattr(checkpoint, "_checkpointer", lambda: _FullDiskOnSave(3, calls))
    out = tmp_path / "cut"
    code, err = _run(capsys, "--workdir", str(out), *TINY)
    ckpts = tmp_path / "cut.partial" / "checkpoints" / "wave_000"
    assert code == cli.EXIT_FAILURE and len(err.splitlines()) == 1, err
    assert [name for name, _ in calls] == ["chunk_000001", "chunk_000002", "chunk_000003"]
    needed = calls[-1][1] + checkpoint.METADATA_BYTES  # the arrays' bytes, counted here, plus orbax's metadata
    assert (f"cannot write {ckpts}/chunk_000003 (No space left on device): the write needs {needed:,} bytes" in err
            and "the last complete checkpoint is kept" in err and f"--workdir {out} --resume" in err), err
    assert not _no_debris(tmp_path) and not out.exists()
    assert sorted(p.name for p in ckpts.iterdir()) == ["chunk_000001", "chunk_000002"]
    monkeypatch.undo()
    assert _run(capsys, "--workdir", str(out), "--resume", *TINY)[0] == 0
    a, b = np.load(full / "metrics.npz"), np.load(out / "metrics.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])  # bitwise


def test_too_little_free_space_is_found_before_orbax_starts(capsys, tmp_path, monkeypatch):
    """The free space is checked against the checkpoint's size first: one line, nothing written,
    and no staging directory kept when there is no complete checkpoint to resume from."""
    from dl_course.train import checkpoint

    monkeypatch.setattr(checkpoint, "free_bytes", lambda path: 1000)
    out = tmp_path / "small"
    code, err = _run(capsys, "--workdir", str(out), *TINY)
    assert code == cli.EXIT_FAILURE and len(err.splitlines()) == 1, err
    assert "chunk_000001 (No space left on device): the write needs " in err and "1,000 are free there" in err, err
    assert "--resume" not in err and not list(tmp_path.iterdir())


def test_unwritable_workdir_is_one_line(capsys, tmp_path, monkeypatch):
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self.lock_path))

    monkeypatch.setattr(RunDir, "_lock", refuse)
    code, err = _run(capsys, "--workdir", str(tmp_path / "ro"), *TINY)
    assert code == cli.EXIT_FAILURE and err == f"dl-course: error: cannot write {tmp_path}/.ro.lock (Permission denied)"


def test_non_finite_value_in_a_given_dataset_is_named_before_compiling(tmp_path):
    from dl_course import data as data_lib
    from dl_course.train import ConfigError, default_config, sweep

    d = data_lib.load("moons")
    x = d.x_train.copy()
    x[7, 1] = np.nan
    with pytest.raises(ConfigError, match=r"x_train holds a non-finite value \(nan\) at index \(7, 1\)"):
        sweep(default_config(), data=d.replace(x_train=x))


def test_unfinished_directories_are_not_results(tmp_path):
    d = tmp_path / "half"
    d.mkdir()
    (d / "config.json").write_text("{}")  # a kill during an old-style file-by-file commit
    assert status(d) == "incomplete"
    assert status(tmp_path / "nothing") == "absent"


def test_overwrite_keeps_the_results_stored_inside(tmp_path):
    """``--overwrite`` of results/<study> replaces its own files and keeps runs/ and the finished
    reference run of a variant stored inside it (e.g. results/uncertainty/digits)."""
    final = tmp_path / "study"
    for where, text in ((final, "old"), (final / "digits", "variant")):
        run = RunDir(where).acquire()
        run.json("summary.json", {"runs": [], "headline": {"v": text}})
        run.commit()
    (final / "runs").mkdir()
    (final / "runs" / "note.txt").write_text("a timestamped run")
    run = RunDir(final, overwrite=True).acquire()
    run.json("summary.json", {"runs": [], "headline": {"v": "new"}})
    run.commit()
    assert json.loads((final / "summary.json").read_text())["headline"]["v"] == "new"
    assert json.loads((final / "digits" / "summary.json").read_text())["headline"]["v"] == "variant"
    assert (final / "runs" / "note.txt").read_text() == "a timestamped run"
    assert status(final / "digits") == "finished" and not list(tmp_path.glob("*.partial"))
