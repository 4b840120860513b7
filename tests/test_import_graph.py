"""The package's import graph, read from the source (AST), with the imports inside functions
counted: no cycle at all, launchers import neither the CLI nor each other, and the ground floor
(``dl_course.errors``, reading a run directory) stays free of the engine and of JAX.

An import inside a function defers a cycle to run time; it does not remove it (``rundir`` calling
``results`` which imports ``rundir``), so every ``import`` statement anywhere in a module is an
edge. Importing ``a.b.c`` from outside package ``a.b`` also runs ``a/b/__init__.py`` (an edge to
``a.b``); from inside it, the package is already being initialised and only the named module is an
edge. ``from P import name`` is an edge to ``P.name`` when that is a module, else to ``P``.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dl_course"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (packages by their __init__)."""
    out = {}
    for p in sorted(package.rglob("*.py")):
        parts = p.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return name in files and files[name].name == "__init__.py"


def imported_modules(name: str, tree: ast.AST, files: dict[str, Path]) -> set[str]:
    """Modules of ``files`` that importing ``name`` (source ``tree``) may import, at module level or
    inside any function body."""
    own_package = name if _is_package(name, files) else name.rpartition(".")[0]
    targets: set[str] = set()

    def add(target: str) -> None:
        parts = target.split(".")
        for i in range(1, len(parts)):  # parent packages run first, unless the importer is inside them
            parent = ".".join(parts[:i])
            if parent in files and not (name == parent or name.startswith(parent + ".")):
                targets.add(parent)
        if target in files:
            targets.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = own_package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                add(sub if sub in files else module)
    targets.discard(name)
    return targets


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imported_modules(name, ast.parse(path.read_text()), files) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _path_in(component: list[str], graph: dict[str, set[str]]) -> str:
    """One shortest cycle through the component's first module, for the failure message."""
    members, start = set(component), component[0]
    parents, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return " -> ".join(path[::-1] + [start])
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return ", ".join(component)


def test_the_cycle_finder_finds_a_function_level_cycle():
    """The detector itself: a cycle made only of an import inside a function is found."""
    files = {"p": Path("p/__init__.py"), "p.a": Path("p/a.py"), "p.b": Path("p/b.py")}
    trees = {"p": ast.parse(""), "p.a": ast.parse("from p.b import f\n"),
             "p.b": ast.parse("def f():\n    from p import a\n    return a\n")}
    graph = {n: imported_modules(n, t, files) for n, t in trees.items()}
    assert graph["p.b"] == {"p.a"} and graph["p.a"] == {"p.b"}
    assert cycles(graph) == [["p.a", "p.b"]]
    trees["p.b"] = ast.parse("def f():\n    return 1\n")
    assert cycles({n: imported_modules(n, t, files) for n, t in trees.items()}) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph(module_files())
    found = cycles(graph)
    assert not found, "import cycles (imports inside functions included):\n" + "\n".join(
        _path_in(c, graph) for c in found)


def test_the_ground_floor_imports_nothing_of_the_package():
    graph = import_graph(module_files())
    assert graph["dl_course.errors"] <= {"dl_course"}, graph["dl_course.errors"]


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return seen


def test_run_directories_and_the_gallery_stay_off_the_engine():
    """Reading a run directory (``rundir``) never reaches the engine, whatever function is called;
    the gallery never reaches the CLI."""
    graph = import_graph(module_files())
    assert not {m for m in _reachable(graph, "dl_course.rundir") if m.startswith("dl_course.train")}
    assert "dl_course.cli" not in _reachable(graph, "dl_course.gallery")


def test_reading_a_run_directory_does_not_import_jax(tmp_path):
    """Status and verification of a finished result directory in a fresh interpreter: jax and the
    engine stay unimported."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dl_course import rundir\n"
        f"d = Path({str(tmp_path)!r}) / 'r'\n"
        "run = rundir.RunDir(d).acquire()\n"
        "run.json('summary.json', {'runs': []})\n"
        "run.commit()\n"
        "assert rundir.status(d) == 'finished' and rundir.verify(d) == []\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax', 'orbax')"
        " or m.startswith('dl_course.train'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_launchers_import_neither_the_cli_nor_each_other():
    for p in sorted((ROOT / "experiments").glob("*.py")):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n in ("dl_course.cli", "dl_course.studies.load_study", "experiments")
                   or n.startswith("experiments.") or n.startswith("dl_course_experiments")]
            assert not bad, f"experiments/{p.name} imports {bad}"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                    "load_study", "spec_from_file_location"):
                raise AssertionError(f"experiments/{p.name} loads another launcher ({ast.unparse(node)})")


def test_no_private_module_of_another_package_is_imported():
    """Third-party code is reached through its public names (``from diffrax import AbstractERK``,
    not ``from diffrax._solver.runge_kutta import AbstractERK``): private modules move between
    releases."""
    bad = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{name}: {m}" for m in modules
                    if m != "__future__" and not m.startswith("dl_course")
                    and any(part.startswith("_") for part in m.split("."))]
    assert not bad, bad
