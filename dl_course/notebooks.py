"""Assignment notebooks: generate student versions from the solution notebooks.

Solutions live between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines (the nbgrader
convention). The student version replaces each such block by ``raise NotImplementedError(...)``
at the block's indentation, so the code still parses and the exercise's automatic checks fail with
their own message once the student runs the cell. Cells holding ``### BEGIN HIDDEN`` ...
``### END HIDDEN`` blocks lose those lines entirely (hidden reference values). Outputs are
cleared. Student versions are generated (``dl-course notebooks student``), never edited by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "raise NotImplementedError(\"exercise: replace this line with your solution\")"


def strip_solutions(source: str) -> str:
    """Replace every solution block of a cell's source by a ``NotImplementedError`` stub."""
    out, inside, indent = [], False, ""
    for line in source.splitlines(keepends=False):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested ### BEGIN SOLUTION")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}")
            continue
        if stripped == END:
            if not inside:
                raise ValueError("### END SOLUTION without BEGIN")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise ValueError("### BEGIN SOLUTION without END")
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def student_notebook(nb: dict) -> dict:
    """A copy of notebook ``nb`` with solutions stubbed and all outputs cleared."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code":
            src = strip_solutions(src)
            cell["outputs"], cell["execution_count"] = [], None
        elif BEGIN in src:  # markdown answers: keep the prompt, drop the model answer
            src = strip_solutions(src).replace(STUB, "*Your answer here.*")
        cell["source"] = src
    return nb


def write_student_versions(src_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student version of every ``*.ipynb`` directly in ``src_dir`` into ``out_dir``."""
    from dl_course.results import atomic_write_bytes

    written = []
    for path in sorted(Path(src_dir).glob("*.ipynb")):
        nb = student_notebook(json.loads(path.read_text()))
        target = Path(out_dir) / path.name
        atomic_write_bytes(target, (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode())
        written.append(target)
    return written
