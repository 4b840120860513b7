"""The assignment notebooks in ``notebooks/`` (see notebooks/README.md for the conventions).

* They are stored without outputs, so diffs stay readable.
* Their structure follows the conventions the student versions rely on: one ``parameters`` cell
  with ``FAST = False``; solution blocks only in cells tagged ``exercise`` (code) or ``answer``
  (markdown); every exercise followed by at least one ``check`` cell with assertions.
* Every solution notebook executes top to bottom in FAST mode, in a fresh IPython kernel of this
  interpreter, with all its automatic checks passing, within the CPU budget the issue sets
  (3 minutes; measured as the kernel's CPU time, which the load of a shared machine does not
  inflate the way it inflates wall time).

Kernel set-up: ``FAST = True`` is injected after the parameters cell (papermill's convention: a
cell tagged ``injected-parameters``), and XLA's CPU backend runs at optimisation level 1 instead of
the suite's level 0 (tests/conftest.py): at level 0 the gradient of a convolution inside a
``lax.scan`` runs about 12x slower, which would dominate module 1.
"""

from __future__ import annotations

import ast
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
CELL_TIMEOUT_S = 900  # generous: wall time on a loaded CI machine


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


def kernel_env() -> dict[str, str]:
    """The test process's environment (data cache, device count) with XLA optimisation level 1."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_backend_optimization_level")]
    env["XLA_FLAGS"] = " ".join(flags + ["--xla_backend_optimization_level=1"])
    return env


def execute(nb, workdir: Path, allow_errors: bool = False):
    """Execute ``nb`` in place in a fresh kernel running this interpreter (a kernel spec written into
    ``workdir``, so a user-level ``python3`` spec pointing elsewhere cannot interfere)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    write_kernel_spec(path=str(workdir / "kernels" / "dl-course"), overrides={"display_name": "dl_course tests"})
    km = KernelManager(kernel_name="dl-course", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(workdir / "kernels")]))
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=kernel_env())
    return nb


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
            assert has_block == ("answer" in tags(cell)), f"cell {i}: markdown solution blocks belong to cells tagged 'answer'"
            continue
        ast.parse(cell.source)
        assert has_block == ("exercise" in tags(cell)), f"cell {i}: code solution blocks belong to cells tagged 'exercise'"
        if "exercise" in tags(cell):
            assert pending is None, f"exercise cell {pending} has no check before the next exercise (cell {i})"
            pending, exercises = i, exercises + 1
        if "check" in tags(cell):
            assert asserts_something(cell.source), f"check cell {i} has no assertion"
            pending = None
    assert pending is None, f"exercise cell {pending} is not followed by a check"
    assert exercises >= 5, f"{name}: only {exercises} exercises"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_notebook_runs_in_fast_mode_with_its_checks_passing(name, tmp_path):
    nb = with_fast_mode(read(name))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import resource\n_usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print('kernel CPU seconds:', _usage.ru_utime + _usage.ru_stime)"))
    execute(nb, tmp_path)  # raises CellExecutionError, with the failing cell and traceback, on any error
    checks = [c for c in nb.cells if "check" in tags(c)]
    assert all("passed" in stream_text(c) for c in checks), "every check cell reports that it passed"
    cpu = float(stream_text(nb.cells[-1]).split(":")[1])
    print(f"{name}: {cpu:.1f} s of kernel CPU time in FAST mode", file=sys.stderr)
    assert cpu <= CPU_BUDGET_S, f"{name} took {cpu:.0f} s of CPU time in FAST mode (budget {CPU_BUDGET_S:.0f} s): shrink the FAST sizes"
