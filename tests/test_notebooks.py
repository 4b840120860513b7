"""The assignment notebooks in ``notebooks/`` (see notebooks/README.md for the conventions).

* They are stored without outputs, so diffs stay readable.
* Their structure follows the conventions the student versions rely on: one ``parameters`` cell
  with ``FAST = False``; solution blocks only in cells tagged ``exercise`` (code) or ``answer``
  (markdown); every exercise followed by at least one ``check`` cell with assertions.
* Their nbgrader cell metadata is valid (nbgrader's own validator) and matches the role tags:
  exercise = autograded answer, check = autograder tests with points, answer = manually graded
  answer with points, setup and text = read-only.
* Every solution notebook, submitted to nbgrader in FAST mode, autogrades with full points on every
  check: nbgrader executes it top to bottom in a fresh IPython kernel of this interpreter, no cell
  raises, every check prints that it passed, and the run stays within the CPU budget the issue sets
  (3 minutes; measured as the kernel's CPU time, which the load of a shared machine does not
  inflate the way it inflates wall time). This nbgrader run is the suite's FAST-mode execution of
  the solutions (one execution per notebook).

Kernel set-up: ``FAST = True`` is injected after the parameters cell (papermill's convention: a
cell tagged ``injected-parameters``; to nbgrader a cell the student added), and XLA's CPU backend
runs at optimisation level 1 instead of the suite's level 0 (tests/conftest.py): at level 0 the
gradient of a convolution inside a ``lax.scan`` runs about 12x slower, which would dominate module 1.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = [
    "module1_fundamentals_cnns.ipynb",
    "module2_implicit_regularization.ipynb",
    "module3_uncertainty_generative.ipynb",
]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CPU_BUDGET_S = 180.0  # the "whole notebook in <= 3 minutes on 2 CPU cores", as CPU seconds


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def read(name: str):
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def with_fast_mode(nb):
    """A copy of ``nb`` with ``FAST = True`` injected after its parameters cell (papermill style)."""
    nb = nbformat.from_dict(nb)
    index = next(i for i, cell in enumerate(nb.cells) if "parameters" in tags(cell))
    injected = nbformat.v4.new_code_cell("# Parameters\nFAST = True")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    return nb


def kernel_xla_flags() -> str:
    """The test process's XLA flags with optimisation level 1 instead of the suite's level 0."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_backend_optimization_level")]
    return " ".join(flags + ["--xla_backend_optimization_level=1"])


def autograde_fast(tmp_path: Path, monkeypatch, name: str, student: str, version):
    """Autograde notebook ``name`` with nbgrader in a fresh course under ``tmp_path``: release the
    assignment (``generate_assignment``), submit ``version(solution notebook, released notebook)``
    with ``FAST = True`` injected and a last cell printing the kernel's CPU time, as ``student``,
    and run ``autograde``. Returns (scores per grade cell id, the autograded notebook, the kernel's
    CPU seconds).

    The kernel is this interpreter (a ``python3`` kernel spec put first on ``JUPYTER_PATH``, so a
    user-level spec pointing elsewhere cannot interfere) with the XLA flags of
    :func:`kernel_xla_flags`; the test process's environment (data cache, device count) is inherited.
    """
    from ipykernel.kernelspec import write_kernel_spec
    from nbgrader import api

    from dl_course import notebooks

    # nbgrader stamps every new gradebook with its schema version by running ``alembic heads`` in a
    # subprocess (2 s here); the answer depends only on the installed nbgrader, so one test process
    # asks once.
    original = api.get_alembic_version
    monkeypatch.setattr(api, "get_alembic_version", lambda: _once(original))
    jupyter = tmp_path / "jupyter"
    write_kernel_spec(path=str(jupyter / "kernels" / "python3"),
                      overrides={"display_name": "dl_course tests", "env": {"XLA_FLAGS": kernel_xla_flags()}})
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    course = tmp_path / "course"
    assignment = notebooks.assignment_id(Path(name))
    notebooks.init_course(course, NOTEBOOK_DIR)
    (released,) = notebooks.generate_assignment(course, assignment)
    nb = with_fast_mode(version(read(name), nbformat.read(released, as_version=4)))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import resource\n_usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print('kernel CPU seconds:', _usage.ru_utime + _usage.ru_stime)"))
    submitted = course / "submitted" / student / assignment / name
    submitted.parent.mkdir(parents=True)
    nbformat.write(nb, submitted)
    scores = notebooks.autograde(course, assignment, student)
    graded = nbformat.read(course / "autograded" / student / assignment / name, as_version=4)
    cpu = float(stream_text(graded.cells[-1]).split(":")[1])
    print(f"{name} ({student}): {cpu:.1f} s of kernel CPU time in FAST mode", file=sys.stderr)
    return scores, graded, cpu


@functools.cache
def _once(function):
    return function()


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def nbgrader_role(cell) -> str | None:
    """The nbgrader cell type of ``cell`` (None without nbgrader metadata)."""
    meta = cell.metadata.get("nbgrader")
    if meta is None:
        return None
    return {(True, False): "autograded answer", (True, True): "manually graded answer",
            (False, True): "autograder tests"}.get((meta["solution"], meta["grade"]),
                                                   "read-only" if meta["locked"] else "plain")


def asserts_something(source: str) -> bool:
    """Whether the code has an ``assert``, a ``numpy.testing.assert_*`` call, or calls a shared
    ``check_*`` helper of the notebook (e.g. module 2's ``check_update_rule``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith(("assert", "check_")):
                return True
    return False


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_the_three_assignments_exist():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert (NOTEBOOK_DIR / "README.md").is_file()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{name} cell {i} has outputs: clear them before committing (notebooks/README.md)"
        assert cell.execution_count is None, f"{name} cell {i} has an execution count: clear outputs before committing"
        assert "execution" not in cell.metadata, f"{name} cell {i} carries execution timing metadata"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_structure_follows_the_conventions(name):
    nb = read(name)
    parameters = [c for c in nb.cells if "parameters" in tags(c)]
    assert len(parameters) == 1 and parameters[0].cell_type == "code", "exactly one code cell tagged 'parameters'"
    assert "FAST = False" in parameters[0].source, "the parameters cell must set FAST = False (the assignment scale)"
    exercises = 0
    pending = None  # index of an exercise cell not yet followed by a check
    for i, cell in enumerate(nb.cells):
        has_block = BEGIN in cell.source
        assert has_block == (END in cell.source), f"cell {i}: unbalanced solution markers"
        if cell.cell_type == "markdown":
            assert has_block == ("answer" in tags(cell)), (
                f"cell {i}: markdown solution blocks belong to cells tagged 'answer'")
            continue
        ast.parse(cell.source)
        assert has_block == ("exercise" in tags(cell)), (
            f"cell {i}: code solution blocks belong to cells tagged 'exercise'")
        if "exercise" in tags(cell):
            assert pending is None, f"exercise cell {pending} has no check before the next exercise (cell {i})"
            pending, exercises = i, exercises + 1
        if "check" in tags(cell):
            assert asserts_something(cell.source), f"check cell {i} has no assertion"
            pending = None
    assert pending is None, f"exercise cell {pending} is not followed by a check"
    assert exercises >= 5, f"{name}: only {exercises} exercises"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_nbgrader_metadata_follows_the_cell_roles(name):
    from nbgrader.nbgraderformat import MetadataValidator

    nb = read(name)
    MetadataValidator().validate_nb(nb)  # what generate_assignment checks (schema version 3, ids, points)
    expected = {"exercise": "autograded answer", "check": "autograder tests", "answer": "manually graded answer",
                "setup": "read-only"}
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_id values must be unique"
    for i, cell in enumerate(nb.cells):
        role = next((expected[t] for t in tags(cell) if t in expected), None)
        if role is None and cell.cell_type == "markdown":
            role = "read-only"  # the statement of the assignment
        assert nbgrader_role(cell) == role, (
            f"cell {i} {tags(cell)}: nbgrader role {nbgrader_role(cell)!r}, expected {role!r}")
        if role in ("autograder tests", "manually graded answer"):
            assert cell.metadata["nbgrader"]["points"] > 0, f"cell {i}: a graded cell without points"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_notebook_autogrades_in_fast_mode_with_full_points(name, tmp_path, monkeypatch):
    scores, nb, cpu = autograde_fast(tmp_path, monkeypatch, name, "solution", lambda solution, released: solution)
    for i, cell in enumerate(nb.cells):
        assert not errors(cell), f"cell {i} raised {errors(cell)[0].ename}: {errors(cell)[0].evalue}"
    checks = [c for c in nb.cells if "check" in tags(c)]
    assert checks and all("passed" in stream_text(c) for c in checks), "every check cell reports that it passed"
    tests = {c.metadata.nbgrader.grade_id for c in checks}
    answers = {c.metadata.nbgrader.grade_id for c in nb.cells if "answer" in tags(c)}
    assert set(scores) == tests | answers
    assert all(scores[t][0] == scores[t][1] > 0 for t in tests), f"not full points: { {t: scores[t] for t in tests} }"
    assert all(scores[a][0] is None for a in answers), "written answers await manual grading"
    assert cpu <= CPU_BUDGET_S, (
        f"{name} took {cpu:.0f} s of CPU time in FAST mode (budget {CPU_BUDGET_S:.0f} s): shrink the FAST sizes")
