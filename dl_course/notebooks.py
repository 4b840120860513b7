"""Assignment notebooks as an nbgrader course: student release and autograding by nbgrader itself.

The solution notebooks in ``notebooks/`` carry nbgrader cell metadata (``metadata.nbgrader``,
schema version 3), derived from their role tags (notebooks/README.md):

* ``exercise`` code cells are *autograded answers* (``solution``): each ``### BEGIN SOLUTION`` ...
  ``### END SOLUTION`` block becomes one ``raise NotImplementedError(...)`` line (:data:`STUB`) at
  the block's indentation, so the cell still defines its functions;
* ``check`` code cells are *autograder tests* (``grade``, ``locked``, ``points``): nbgrader gives
  their points when the cell runs without an error (and without output on stderr);
* ``answer`` markdown cells are *manually graded answers* (``solution`` + ``grade``): the model
  answer becomes :data:`ANSWER_PROMPT`;
* ``setup`` code cells and the text cells are *read-only* (``locked``); the parameters cell and the
  experiments stay free.

Everything else is nbgrader's: :func:`init_course` lays out a course directory (one assignment per
notebook, ``source/<assignment>/<notebook>.ipynb``, and an ``nbgrader_config.py`` holding
:func:`course_settings`) in which an instructor runs the ``nbgrader`` commands;
:func:`generate_assignment` and :func:`autograde` run nbgrader's converters in-process;
:func:`write_student_versions` (``dl-course notebooks student``) is nbgrader's
``generate_assignment`` in a temporary course directory. Needs the ``course`` extra (nbgrader).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sysconfig
import tempfile
import warnings
from pathlib import Path
from typing import Any

STUB = 'raise NotImplementedError("exercise: replace this line with your solution")'
ANSWER_PROMPT = "*Your answer here.*"
COURSE_ID = "dl_course"
CELL_TIMEOUT_S = 3600  # nbgrader's default (30 s per cell) is far below a FAST=False training cell


def course_settings() -> dict[str, dict[str, Any]]:
    """The nbgrader settings of the course, ``{configurable class: {trait: value}}``: the stubs of
    the student version, the course id and the execution timeout of autograding."""
    return {
        "CourseDirectory": {"course_id": COURSE_ID},
        "ClearSolutions": {"code_stub": {"python": STUB}, "text_stub": ANSWER_PROMPT},
        "Execute": {"timeout": CELL_TIMEOUT_S},
    }


def nbgrader_config(course_dir: Path):
    """A traitlets ``Config`` for nbgrader's converters in course directory ``course_dir``
    (:func:`course_settings`, with the directory as root and its ``gradebook.db``)."""
    from traitlets.config import Config

    config = Config()
    for section, traits in course_settings().items():
        for name, value in traits.items():
            setattr(config[section], name, value)
    root = Path(course_dir).resolve()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    return config


def assignment_id(notebook: Path) -> str:
    """The nbgrader assignment of a notebook: its name up to the first underscore
    (``module1_fundamentals_cnns.ipynb`` -> ``module1``)."""
    return Path(notebook).stem.split("_")[0]


def init_course(course_dir: Path, src_dir: Path) -> dict[str, Path]:
    """Lay out an nbgrader course directory with one assignment per ``*.ipynb`` directly in
    ``src_dir``: ``course_dir/source/<assignment>/<notebook>.ipynb`` and
    ``course_dir/nbgrader_config.py`` (:func:`course_settings`). Returns {assignment: source path}."""
    course_dir = Path(course_dir)
    sources: dict[str, Path] = {}
    for path in sorted(Path(src_dir).glob("*.ipynb")):
        assignment = assignment_id(path)
        if assignment in sources:
            raise ValueError(f"{path.name} and {sources[assignment].name} map to one assignment {assignment!r}")
        target = course_dir / "source" / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        sources[assignment] = target
    lines = ["# nbgrader settings of the dl_course assignments (written by dl_course.notebooks.init_course)",
             "c = get_config()  # noqa: F821"]
    lines += [f"c.{section}.{name} = {value!r}" for section, traits in course_settings().items()
              for name, value in traits.items()]
    (course_dir / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    return sources


def _coursedir(course_dir: Path, **ids: str):
    try:
        from nbgrader.coursedir import CourseDirectory
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError('the assignment tools need nbgrader: pip install -e ".[course]"') from error

    config = nbgrader_config(course_dir)
    return CourseDirectory(config=config, **ids), config


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader's gradebook runs the ``alembic`` script (a dependency of nbgrader) on ``PATH`` when it
    creates a database: put this interpreter's scripts directory on ``PATH`` when it is missing (an
    environment used without activation)."""
    scripts, old = sysconfig.get_path("scripts"), os.environ.get("PATH", "")
    missing = shutil.which("alembic") is None and shutil.which("alembic", path=scripts) is not None
    if missing:
        os.environ["PATH"] = os.pathsep.join([scripts, old])
    try:
        yield
    finally:
        if missing:
            os.environ["PATH"] = old


def _run(converter) -> None:
    """``converter.start()``; on failure raise ``RuntimeError`` holding nbgrader's error log (its own
    exception only says "see the above traceback")."""
    from nbgrader.converters.base import NbGraderException

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.ERROR)
    converter.log.addHandler(handler)
    try:
        with _alembic_on_path(), warnings.catch_warnings():
            # nbgrader 0.9's gradebook trips SQLAlchemy 2's autoflush warnings; harmless
            warnings.filterwarnings("ignore", message="Object of type .* not in session")
            converter.start()
    except NbGraderException as error:
        raise RuntimeError(f"nbgrader {type(converter).__name__} failed:\n{buffer.getvalue()}") from error
    finally:
        converter.log.removeHandler(handler)


def generate_assignment(course_dir: Path, assignment: str) -> list[Path]:
    """``nbgrader generate_assignment ASSIGNMENT --force`` in ``course_dir``: the student release in
    ``course_dir/release/<assignment>/`` (solutions stubbed, outputs cleared, checksums of the graded
    and locked cells recorded in the notebook and the gradebook). Returns the released notebooks."""
    from nbgrader.converters import GenerateAssignment

    coursedir, config = _coursedir(course_dir, assignment_id=assignment)
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.force = True
    _run(converter)
    return sorted((Path(course_dir) / "release" / assignment).glob("*.ipynb"))


def autograde(course_dir: Path, assignment: str, student: str) -> dict[str, tuple[float | None, float]]:
    """``nbgrader autograde ASSIGNMENT --student STUDENT --force`` in ``course_dir`` (the submission
    in ``course_dir/submitted/<student>/<assignment>/``; the graded notebook goes to
    ``course_dir/autograded/<student>/<assignment>/``). Returns, per grade cell id,
    ``(score, max_score)``; ``score`` is ``None`` for a written answer that awaits manual grading
    (an unchanged answer scores 0)."""
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde

    coursedir, config = _coursedir(course_dir, assignment_id=assignment, student_id=student)
    converter = Autograde(coursedir=coursedir, config=config)
    converter.force = True
    _run(converter)
    with _alembic_on_path(), Gradebook(coursedir.db_url, COURSE_ID) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return {grade.name: (None if grade.needs_manual_grade else grade.score, grade.max_score)
                for notebook in submission.notebooks for grade in notebook.grades}


def write_student_versions(src_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student version of every ``*.ipynb`` directly in ``src_dir`` into ``out_dir``
    (same file names): nbgrader's ``generate_assignment`` in a temporary course directory."""
    from dl_course.rundir import atomic_write_bytes

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in init_course(Path(tmp), src_dir):
            for release in generate_assignment(Path(tmp), assignment):
                target = Path(out_dir) / release.name
                atomic_write_bytes(target, release.read_bytes())
                written.append(target)
    return sorted(written)
