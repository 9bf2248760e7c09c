"""The import graph of ``ase_bodyorder``: no circles among its modules.

The graph is read from the source with :mod:`ast`, imports inside functions included
(they hide circles from Python, which runs them late, not from the reader). An edge goes
from a module to each module of ours it names: ``from ..monitor.readers import x`` to
``monitor.readers``, ``from ..monitor import x`` to ``monitor`` (the package's
``__init__``), or to ``monitor.x`` when ``x`` is a module. Importing a module of another
package runs that package's ``__init__`` first: an edge to it too (``ipi.manifest``
importing ``monitor.readers`` also imports ``monitor``); a package's own ``__init__`` is
not counted again for its modules. Imports under ``if TYPE_CHECKING:`` never run and are
not counted.

Run as a script (``python tests/test_import_graph.py``) it prints every circle among
modules (all imports, then those that run at import time) and among the subpackages
(modules grouped by their first name under ``ase_bodyorder``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ase_bodyorder"
NAME = "ase_bodyorder"

#: subpackages (and top-level modules) none of whose modules may be on a circle (issue 34)
FIXED = ("study", "training", "reference", "summary", "io", "ipi", "monitor", "runs")
#: groups of subpackages that must not import each other in a circle, as whole packages
ACYCLIC_PACKAGES = (("study", "training"),)
#: circles known and kept: ``training.architectures.recipe`` looks the trainers up on the
#: package when called, so that tests can replace them there
KNOWN = [["ase_bodyorder.training", "ase_bodyorder.training.architectures"]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative import ``from <level dots><target>``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(tree: ast.AST, top_level: bool):
    """The import statements of a module, not those under ``if TYPE_CHECKING:``; with
    ``top_level``, not those inside functions either (only the ones run at import)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(*, top_level: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of ``ase_bodyorder`` it imports (anywhere in its body; with
    ``top_level``, outside functions only)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _imports(tree, top_level):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(name, is_package, node.level, node.module)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.append(candidate if candidate in modules else base)
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]  # `import a.b.c` of a name in a.b
                if not target.startswith(NAME) or target == name:
                    continue
                graph[name].add(target)
                parent = target.rpartition(".")[0]
                while parent.startswith(NAME + ".") and not (name + ".").startswith(parent + "."):
                    graph[name].add(parent)  # its package's __init__ runs first
                    parent = parent.rpartition(".")[0]
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(out)


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph of subpackages (``study``, ``ipi``, ...; top-level modules by name)."""
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = _subpackage(module)
        out.setdefault(source, set())
        out[source] |= {_subpackage(t) for t in targets} - {source}
    return out


def module_cycles(*, top_level: bool = False) -> list[list[str]]:
    return _cycles(import_graph(top_level=top_level))


def package_cycles() -> list[list[str]]:
    return _cycles(package_graph(import_graph()))


def test_no_module_of_the_fixed_packages_is_on_a_circle():
    bad = [
        cycle
        for cycle in module_cycles()
        if cycle not in KNOWN and any(_subpackage(module) in FIXED for module in cycle)
    ]
    assert bad == []


def test_no_circle_among_the_imports_that_run_at_import_time():
    assert module_cycles(top_level=True) == []


def test_the_monitor_reads_extras_without_the_ipi_package():
    graph = import_graph()
    assert not {m for m in graph["ase_bodyorder.monitor.readers"] if ".ipi" in m}


def test_no_package_circle_among_the_fixed_packages():
    graph = package_graph(import_graph())
    for group in ACYCLIC_PACKAGES:
        sub = {name: graph.get(name, set()) & set(group) for name in group}
        assert _cycles(sub) == [], group


def test_the_graph_sees_imports_inside_functions_and_not_type_checking_ones():
    graph = import_graph()
    # the study's CLI imports the study inside its handlers
    assert "ase_bodyorder.study" in graph["ase_bodyorder.cli.study"]
    assert "ase_bodyorder.study" not in import_graph(top_level=True)["ase_bodyorder.cli.study"]
    # reference.isolated names PeriodicDFT for type checkers only
    assert "ase_bodyorder.reference.periodic" not in graph["ase_bodyorder.reference.isolated"]


if __name__ == "__main__":
    for title, top_level in (("module cycles", False), ("run at import time", True)):
        print(f"{title}:")
        for cycle in module_cycles(top_level=top_level):
            print("  " + " <-> ".join(c.removeprefix(NAME + ".") for c in cycle))
    print("subpackage cycles:")
    for cycle in package_cycles():
        print("  " + " <-> ".join(cycle))
    sys.exit(0)
