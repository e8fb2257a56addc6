"""The import graph of the package: areas import only downwards (LAYERS), and no module import cycle exists.

Every `import notellm.x` / `from notellm.x import` counts, including the lazy ones inside functions: a lazy import
still makes the importing area depend on the imported one. Run as a script to print the area graph:

    PYTHONPATH=. python tests/core/test_import_graph.py
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "notellm"

# Lower layers never import higher ones; areas within a layer do not import each other unless listed in SAME_LAYER.
LAYERS = [
    {"config", "machine", "configs", "atomicdir", "spark_session"},
    {"precision"},  # picks bf16/fp32 from the hardware; reads machine's CPU flags
    {"data"},
    {"retrieval"},
    {"rerank", "model"},
    {"train", "evaluation", "cb2cf", "feed"},
    {"export"},  # the ONNX export (checked with the evaluation protocol) and its runtime encoder
    {"inference"},  # load_encoder: a model folder -> an Encoder on PyTorch (model/) or ONNX Runtime (export/)
    {"report"},
    {"serve"},
    {"pipeline"},
    {"cli"},
]
SAME_LAYER: set[tuple[str, str]] = set()
# Known upward imports: none (`NoteEmbedder`, which loads a model folder, lives in inference/; the vector shards it
# writes are plain data in retrieval/vector_shards.py).
ALLOWED_UPWARD: set[tuple[str, str]] = set()
# Known module cycles (none left: the mining engines import mining_base.py, the registry imports the engines).
KNOWN_CYCLES: list[list[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports() -> dict[str, set[str]]:
    """notellm module -> the notellm modules it imports (a `from pkg import name` of a submodule counts as it)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("notellm.") and target != name:
                    graph[name].add(target)
    return graph


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "notellm"


def area_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for src, dsts in graph.items():
        for dst in dsts:
            if area(src) != area(dst) and area(src) != "notellm":  # the top-level lazy re-exports are the API
                out[area(src)].add(area(dst))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def test_every_area_has_a_layer():
    areas = {area(m) for m in module_imports()} | {p.name for p in PACKAGE.iterdir() if p.is_dir()
                                                   and (p / "__init__.py").exists()}
    areas |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert areas - {"notellm"} <= set().union(*LAYERS), sorted(areas - set().union(*LAYERS) - {"notellm"})


def test_no_upward_import():
    upward = sorted((module, area(dst)) for module, dsts in module_imports().items() for dst in dsts
                    if area(module) not in ("notellm", area(dst))
                    and (layer_of(area(dst)) > layer_of(area(module))
                         or (layer_of(area(dst)) == layer_of(area(module))
                             and (area(module), area(dst)) not in SAME_LAYER)))
    assert not [edge for edge in upward if edge not in ALLOWED_UPWARD], f"imports against the flow: {upward}"


def test_no_import_cycle():
    found = [c for c in cycles(module_imports()) if c not in KNOWN_CYCLES]
    assert not found, f"import cycles: {found}"


def test_the_checker_sees_a_cycle_and_an_upward_edge():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert area_graph({"notellm.data.x": {"notellm.cli.y"}}) == {"data": {"cli"}}


if __name__ == "__main__":
    for src, dsts in sorted(area_graph(module_imports()).items()):
        print(f"{src:11s} -> {', '.join(sorted(dsts))}")
    print("module cycles:", cycles(module_imports()) or "none")
