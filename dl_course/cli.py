"""Command line: ``dl-course run <study> [--config.key=value ...] [--workdir DIR] [--resume]``,
``dl-course list``, and ``dl-course notebooks student``.

A study is a file ``experiments/<study>.py`` with ``get_config()`` (an ml_collections ConfigDict,
whose docstring gives the command, expected runtime and result) and ``main(config, run)`` that
writes into ``run`` (a ``dl_course.results.RunDir``) and returns its headline numbers. Bad input
gets one line on stderr and exit code 2, before anything is compiled or written.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
from pathlib import Path

from dl_course.results import RunDir, default_workdir
from dl_course.train.config import ConfigError


def experiments_dir() -> Path:
    """``$DL_COURSE_EXPERIMENTS``, else ``./experiments``, else the repository's ``experiments/``."""
    env = os.environ.get("DL_COURSE_EXPERIMENTS")
    if env:
        return Path(env)
    cwd = Path.cwd() / "experiments"
    if cwd.is_dir():
        return cwd
    return Path(__file__).resolve().parent.parent / "experiments"


def study_names() -> list[str]:
    d = experiments_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.name.startswith("_")) if d.is_dir() else []


def load_study(name: str):
    """Import ``experiments/<name>.py``; unknown names raise ConfigError listing the valid ones."""
    names = study_names()
    if name not in names:
        raise ConfigError(f"unknown study {name!r}; valid: {', '.join(names) or '(none found in ' + str(experiments_dir()) + ')'}")
    path = experiments_dir() / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"dl_course_experiments.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config, overrides: list[str]):
    """Apply ``--config.a.b=value`` overrides (values parsed as Python literals, else strings)."""
    for item in overrides:
        if not item.startswith("--config.") or "=" not in item:
            raise ConfigError(f"bad argument {item!r}; expected --config.KEY=VALUE, --workdir DIR or --resume")
        path, value = item[len("--config."):].split("=", 1)
        *parents, leaf = path.split(".")
        node = config
        for p in parents:
            if p not in node:
                raise ConfigError(f"unknown config key {path!r}; valid at this level: {', '.join(sorted(node.keys()))}")
            node = node[p]
        if leaf not in node:
            raise ConfigError(f"unknown config key {path!r}; valid at this level: {', '.join(sorted(node.keys()))}")
        parsed = _parse_value(value)
        if isinstance(node[leaf], float) and isinstance(parsed, int) and not isinstance(parsed, bool):
            parsed = float(parsed)
        try:
            node[leaf] = parsed
        except (TypeError, ValueError) as e:
            raise ConfigError(f"bad value for {path!r}: {str(e).splitlines()[0]}") from None
    return config


def _latest_partial(study: str) -> Path | None:
    runs = Path("results") / study / "runs"
    partial = sorted(runs.glob("*.partial")) if runs.is_dir() else []
    return partial[-1].with_name(partial[-1].name[: -len(".partial")]) if partial else None


def run_study(name: str, overrides: list[str], workdir: str | None = None, resume: bool = False) -> Path:
    """Run study ``name`` and return its result directory."""
    module = load_study(name)
    config = apply_overrides(module.get_config(), overrides)
    if workdir is None and resume:
        found = _latest_partial(name)
        if found is None:
            raise ConfigError(f"--resume: no interrupted run of {name!r} under results/{name}/runs; give --workdir")
        workdir = found
    run = RunDir(workdir or default_workdir(name), resume=resume)
    if run.final.exists() and (run.final / "summary.json").exists() and not resume and workdir is None:
        raise ConfigError(f"{run.final} already holds a result")
    try:
        headline = module.main(config, run)
    except KeyboardInterrupt:
        run.abort(keep_checkpoints=True)
        print(f"interrupted; resume with: dl-course run {name} --workdir {run.final} --resume", file=sys.stderr)
        raise
    except BaseException:
        run.abort(keep_checkpoints=True)
        raise
    final = run.commit()
    if headline:
        print("headline:", {k: v for k, v in headline.items() if not isinstance(v, (list, dict))})
    print(f"results written to {final}")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dl-course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a study from experiments/")
    p_run.add_argument("study")
    p_run.add_argument("--workdir", default=None, help="result directory (default results/<study>/runs/<time>)")
    p_run.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    sub.add_parser("list", help="list the studies")
    p_nb = sub.add_parser("notebooks", help="notebook tools")
    p_nb.add_argument("action", choices=["student"])
    p_nb.add_argument("--out", default="notebooks/student")
    args, rest = parser.parse_known_args(argv)
    from dl_course.devices import use_all_cpu_cores

    use_all_cpu_cores()
    try:
        if args.command == "list":
            for n in study_names():
                doc = (load_study(n).get_config.__doc__ or "").strip().splitlines()
                print(f"{n:32s} {doc[0] if doc else ''}")
            return 0
        if args.command == "notebooks":
            from dl_course.notebooks import write_student_versions

            for p in write_student_versions(Path("notebooks"), Path(args.out)):
                print(p)
            return 0
        run_study(args.study, rest, args.workdir, args.resume)
        return 0
    except ConfigError as e:
        print(f"dl-course: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
