"""The three packages depend one way, and no module imports itself back (docs/architecture.md).

The import graph is read from the source with `ast`: every import statement counts, at module
level, inside a function or under `TYPE_CHECKING`, so that a cycle hidden in a late import
shows up too. No server and no database: these tests run in milliseconds.
"""

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "graphql_schema", "server")
# The one cycle strawberry needs: a SendingLog has a Profile and a Profile its SendingLogs, so
# one of the two types names the other with strawberry.lazy (and imports it only for mypy).
ALLOWED_CYCLES = [{"graphql_schema.deliveries.types", "graphql_schema.profiles.types"}]
# package -> the packages it must never import
LAYERS = {"models": {"graphql_schema", "server"}, "graphql_schema": {"server"}}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if "migrations" in parts:  # generated, and they import nothing of ours
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(path: Path) -> Iterator[tuple[str, int]]:
    """Every module name an import statement of the file may refer to, with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; write it absolute"
            assert node.module is not None
            yield node.module, node.lineno
            for alias in node.names:  # `from models import quarantine` imports a module
                yield f"{node.module}.{alias.name}", node.lineno


@cache
def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module of ours it imports: the first line that does}."""
    ours = modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in ours.items():
        edges = graph.setdefault(module, {})
        for name, line in imported_names(path):
            while name and name not in ours:  # `models.template.render` is models.template
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.setdefault(name, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def describe(component: set[str], graph: dict[str, dict[str, int]]) -> str:
    return "\n".join(
        f"  {module} imports {other} (line {line})"
        for module in sorted(component)
        for other, line in sorted(graph[module].items())
        if other in component
    )


def test_no_module_imports_itself_back_but_the_lazy_profile_and_sending_log_types() -> None:
    graph = import_graph()
    unexpected = [c for c in cycles(graph) if c not in ALLOWED_CYCLES]
    assert not unexpected, "import cycles (move the shared part down a layer):\n" + "\n\n".join(
        describe(c, graph) for c in unexpected
    )


def test_the_cycle_finder_finds_a_cycle_through_a_late_import() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 3}, "c": {"a": 7}, "d": {"a": 1}}
    assert cycles(graph) == [{"a", "b", "c"}]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_models_import_neither_the_api_nor_the_server_and_the_api_never_the_server() -> None:
    graph = import_graph()
    wrong = [
        f"{module} imports {other} (line {line})"
        for module, edges in graph.items()
        for other, line in edges.items()
        if other.split(".")[0] in LAYERS.get(module.split(".")[0], set())
    ]
    assert not wrong, "imports against the layers (server -> graphql_schema -> models):\n" + (
        "\n".join(wrong)
    )


def test_the_graph_sees_the_imports_it_checks() -> None:
    graph = import_graph()
    assert "models.compose" in graph["server.mta.compose"]
    # a late import, inside a function body
    assert "graphql_schema.profiles.types" in graph["graphql_schema.deliveries.types"]
    assert ALLOWED_CYCLES[0] in cycles(graph), "the allowed cycle is gone: remove it from the list"
