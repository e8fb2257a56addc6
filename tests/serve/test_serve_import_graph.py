"""Issue #12 (serve part): the modules of notellm.serve import each other without a cycle (lazy imports count)."""

from __future__ import annotations

import ast
from pathlib import Path

import notellm.serve

SERVE = Path(notellm.serve.__file__).parent


def serve_import_graph(folder: Path) -> dict[str, set[str]]:
    """module -> serve modules it imports anywhere in its body (top level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("notellm.serve."):
                    deps.add(name.split(".")[2])
        graph[path.stem] = deps - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep] if dep in stack else [node, dep]
            if dep not in state and (cycle := visit(dep, stack + [dep])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_serve_has_no_import_cycle():
    graph = serve_import_graph(SERVE)
    assert {"protocol", "backend", "store", "milvus"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle in notellm.serve: {find_cycle(graph)}"
