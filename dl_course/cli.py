"""Command line: ``dl-course run STUDY[:VARIANT] [--config.key=value ...] [--workdir DIR]
[--resume] [--overwrite]``, ``dl-course list``, ``dl-course runs``, ``dl-course gallery
[--check]``, ``dl-course prepare tfds:NAME`` and ``dl-course notebooks student``.

A study is a file ``experiments/<study>.py`` with ``get_config(variant=None)`` (an
ml_collections ConfigDict whose docstring gives the command, expected runtime and result; its
engine part is ``config.train``) and ``main(config, run)`` that writes into ``run`` (a
``dl_course.rundir.RunDir``) and returns its headline numbers. The variant is chosen first, the
``--config`` overrides applied after it, so an override always wins.

Exit codes: 0 done; 2 bad input (one line on stderr, before anything is compiled or written);
75 preempted (SIGTERM / SIGINT: the current chunk finished, a checkpoint was written and the
``--resume`` command printed); 1 an environment failure (a full disk, an unwritable workdir: one
line naming the path and the bytes needed, the result directory untouched, the last complete
checkpoint kept); 130 interrupted at once (a second Ctrl-C).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from dl_course import configs
from dl_course.errors import ConfigError, Preempted
from dl_course.rundir import RunDir, default_workdir, status
from dl_course.studies import experiments_dir, load_study, study_names

__all__ = ["experiments_dir", "load_study", "main", "run_study", "study_config", "study_names"]

EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_PREEMPTED, EXIT_INTERRUPTED = 2, 1, 75, 130


def study_config(spec: str, overrides: list[str] = ()):
    """``(module, config, variant)`` for ``STUDY[:VARIANT]`` with ``--config`` overrides applied."""
    name, variant = configs.split_study_spec(spec)
    module = load_study(name)
    config = configs.apply_overrides(module.get_config(variant), list(overrides))
    return module, config, variant


def _latest_partial(study: str) -> Path | None:
    runs = Path("results") / study / "runs"
    partial = sorted(runs.glob("*.partial")) if runs.is_dir() else []
    return partial[-1].with_name(partial[-1].name[: -len(".partial")]) if partial else None


def _tensorboard_listener(run: RunDir):
    """Write every sweep of the study as TensorBoard runs under ``<result>/tensorboard/sweep_NNN``."""
    from dl_course.tensorboard import write_sweep_events

    count = [0]

    def listener(result):
        if run.primary:
            write_sweep_events(result, run.path("tensorboard") / f"sweep_{count[0]:03d}")
        count[0] += 1

    return listener


def run_study(spec: str, overrides: list[str], workdir: str | None = None, resume: bool = False,
              overwrite: bool = False, tensorboard: bool = False) -> Path:
    """Run study ``STUDY[:VARIANT]`` and return its result directory (``tensorboard``: also write
    every sweep's curves as TensorBoard event files under ``<result>/tensorboard/``)."""
    import contextlib
    import io

    import jax

    from dl_course.train.sweep import listening

    name = configs.split_study_spec(spec)[0]
    module, config, variant = study_config(spec, overrides)
    if workdir is None and resume:
        found = _latest_partial(name)
        if found is None:
            raise ConfigError(f"--resume: no interrupted run of {name!r} under results/{name}/runs; give --workdir")
        workdir = found
    run = RunDir(workdir or default_workdir(name), resume=resume, overwrite=overwrite,
                 primary=jax.process_index() == 0).acquire()
    run.variant = variant
    resume_cmd = f"dl-course run {spec} {' '.join(overrides)} --workdir {run.final} --resume".replace("  ", " ")
    quiet = contextlib.redirect_stdout(io.StringIO()) if not run.primary else contextlib.nullcontext()
    try:  # logs and tables from process 0 only
        with listening(_tensorboard_listener(run)) if tensorboard else contextlib.nullcontext(), quiet:
            headline = module.main(config, run)
        final = run.commit()
    except Preempted as e:
        run.abort(keep_checkpoints=True)
        e.resume_command = resume_cmd
        raise
    except OSError as e:
        resumable = run.primary and run.resumable()
        run.abort(keep_checkpoints=True)
        raise OSError(f"{name}: {e}; {run.final} is untouched"
                      + (f"; the last complete checkpoint is kept: {resume_cmd}" if resumable else "")) from None
    except BaseException:
        run.abort(keep_checkpoints=True)
        raise
    if headline and run.primary:
        print("headline:", {k: v for k, v in headline.items() if not isinstance(v, (list, dict))})
    if run.primary:
        print(f"results written to {final}")
    return final


def _list_runs() -> None:
    root = Path("results")
    for study in study_names():
        for d in sorted(root.glob(f"{study}/runs/*")) + ([root / study] if (root / study).is_dir() else []):
            if d.name.endswith(".partial"):
                continue
            print(f"{status(d):12s} {d}")
        for d in sorted(root.glob(f"{study}/runs/*.partial")):
            final = d.with_name(d.name[: -len(".partial")])
            if not final.exists():
                print(f"{status(final):12s} {final}  (resume: dl-course run {study} --workdir {final} --resume)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dl-course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a study from experiments/ (STUDY or STUDY:VARIANT)")
    p_run.add_argument("study")
    p_run.add_argument("--workdir", default=None, help="result directory (default results/<study>/runs/<time>)")
    p_run.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    p_run.add_argument("--overwrite", action="store_true", help="replace a finished result in --workdir")
    p_run.add_argument("--tensorboard", action="store_true",
                       help="also write every sweep's curves as TensorBoard events under <result>/tensorboard/")
    p_run.add_argument("--distributed", action="store_true",
                       help="initialize JAX's multi-process runtime first (jax.distributed.initialize: SLURM, "
                            "Open MPI and TPU slices are detected; elsewhere give the three options below)")
    p_run.add_argument("--coordinator", default=None, help="with --distributed: host:port of process 0")
    p_run.add_argument("--num-processes", type=int, default=None, help="with --distributed: number of processes")
    p_run.add_argument("--process-id", type=int, default=None, help="with --distributed: this process's index")
    p_run.add_argument("--heartbeat-timeout", type=int, default=30,
                       help="with --distributed: seconds without a heartbeat after which JAX's coordination service "
                            "declares a process lost and terminates the others (default 30; JAX's own is 100)")
    sub.add_parser("list", help="list the studies and their variants")
    sub.add_parser("runs", help="list result directories and whether each is finished")
    p_gal = sub.add_parser("gallery", help="regenerate results/README.md's tables from the committed summaries")
    p_gal.add_argument("--check", action="store_true", help="fail when results/README.md disagrees with them")
    p_prep = sub.add_parser("prepare", help="prepare a tfds dataset (needs the tfds extra)")
    p_prep.add_argument("dataset", help="tfds:NAME")
    p_prep.add_argument("--data-dir", default=None, help="tfds data directory (default tfds's own)")
    p_nb = sub.add_parser("notebooks", help="notebook tools")
    p_nb.add_argument("action", choices=["student"])
    p_nb.add_argument("--out", default="notebooks/student")
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run" and args.distributed:
        import jax

        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                                   heartbeat_timeout_seconds=args.heartbeat_timeout)
    else:
        from dl_course.devices import use_all_cpu_cores

        use_all_cpu_cores()

    try:
        if args.command == "list":
            for n in study_names():
                module = load_study(n)
                doc = (module.get_config.__doc__ or "").strip().splitlines()
                variants = sorted(getattr(module, "VARIANTS", {}))
                print(f"{n:32s} {doc[0] if doc else ''}" + (f"  [variants: {', '.join(variants)}]" if variants else ""))
            return 0
        if args.command == "runs":
            _list_runs()
            return 0
        if args.command == "gallery":
            from dl_course import gallery

            return gallery.main(check=args.check)
        if args.command == "prepare":
            from dl_course.data import tfds_source

            name = args.dataset[len("tfds:"):] if args.dataset.startswith("tfds:") else args.dataset
            try:
                print(tfds_source.prepare(name, args.data_dir))
            except ValueError as e:
                raise ConfigError(str(e).splitlines()[0]) from None
            return 0
        if args.command == "notebooks":
            from dl_course.notebooks import write_student_versions

            for p in write_student_versions(Path("notebooks"), Path(args.out)):
                print(p)
            return 0
        run_study(args.study, rest, args.workdir, args.resume, args.overwrite, args.tensorboard)
        return 0
    except (ConfigError, ModuleNotFoundError) as e:  # bad input; a missing optional extra (tfds, course)
        code, line = EXIT_BAD_INPUT, f"dl-course: error: {str(e).splitlines()[0]}"
    except Preempted as e:
        code, line = EXIT_PREEMPTED, f"dl-course: {e}; resume with: {getattr(e, 'resume_command', '--resume')}"
    except OSError as e:
        code, line = EXIT_FAILURE, f"dl-course: error: {str(e).splitlines()[0]}"
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    # Printed once the exception (and the frames it holds) is gone: a progress bar of the run
    # stopped mid-way is closed by then and has cleared its line, so the error stands on its own.
    # Only a live bar needs the collection (bad input fails before any bar exists; a full
    # collection in a long-lived process such as a test worker or a notebook takes ~1 s).
    if _live_progress_bars():
        gc.collect()
    print(line, file=sys.stderr)
    return code


def _live_progress_bars() -> bool:
    """Whether any tqdm progress bar is still open in this process (without importing tqdm)."""
    std = sys.modules.get("tqdm.std")
    return bool(std is not None and len(std.tqdm._instances))


if __name__ == "__main__":
    sys.exit(main())
