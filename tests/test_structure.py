"""The package's structure: every module imports on its own (no import cycle, whatever is imported
first), no study module imports another study, and no file grows past ~400 lines."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dl_course"


def _modules() -> list[str]:
    out = []
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_every_module_imports_first_without_a_cycle(tmp_path):
    """Each module is imported first in a clean ``dl_course`` namespace (third-party packages stay
    loaded, so one interpreter checks them all quickly).

    Every module is first imported once (an import error there is reported like any other), so the
    third-party packages are loaded; then the package's own bytecode is cached under ``tmp_path``
    (``sys.pycache_prefix``; where PYTHONDONTWRITEBYTECODE is set, each of the ~200 fresh imports
    would otherwise recompile every module it pulls in from source: half of this test's time)."""
    script = (
        "import importlib, sys\n"
        f"mods, prefix = {_modules()!r}, {str(tmp_path)!r}\n"
        "def clear():\n"
        "    for k in [k for k in sys.modules if k == 'dl_course' or k.startswith('dl_course.')]:\n"
        "        del sys.modules[k]\n"
        "def try_import(m):\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        return f'{m}: {type(e).__name__}: {e}'\n"
        "warm = [e for m in mods if (e := try_import(m))]\n"
        "sys.pycache_prefix, sys.dont_write_bytecode = prefix, False\n"
        "bad = []\n"
        "for m in mods:\n"
        "    clear()\n"
        "    if e := try_import(m):\n"
        "        bad.append(e)\n"
        "print('\\n'.join(bad or warm))\n"
        "sys.exit(1 if bad or warm else 0)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_no_study_imports_another_study():
    for p in sorted((PACKAGE / "studies").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dl_course.studies"):
                raise AssertionError(f"{p.name} imports {node.module}")
            if isinstance(node, ast.ImportFrom) and node.module == "dl_course" and any(
                    a.name == "studies" for a in node.names):
                raise AssertionError(f"{p.name} imports dl_course.studies")


def test_files_stay_small():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long
