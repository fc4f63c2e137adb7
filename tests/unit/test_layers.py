"""The layers of docs/ARCHITECTURE.md: each package imports only from those below it
(function-level imports included), and no two modules import each other in a cycle."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "kontain"

# lowest first; a module may import its own layer and the ones before it
LAYERS = [
    # the door to C, errors, the list of what is imported late (by name); what programs import (guest/)
    {"native", "errors", "lazy", "guest"},
    {"abi"},
    {"kvm"},
    {"memory"},
    {"arch"},
    {"loader"},
    {"vcpu", "confine", "spec"},
    {"kernel"},
    {"syscalls"},
    {"lifecycle"},
    {"cli", "oci", "bundle", "cbuild", "__main__", "__init__"},  # (oci: krun and km image; cli starts km image, oci km)
]


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.startswith("kontain.") else module
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: in no layer (add it to LAYERS and to ARCHITECTURE.md)")


def _modules():
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def _imports(path: Path, top_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kontain"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("kontain"))
    return out


def test_each_layer_imports_only_the_ones_below():
    known = {name for name, _ in _modules()}
    wrong = []
    for name, path in _modules():
        if name == "kontain":
            continue
        mine = _layer(name)
        for imp in _imports(path, top_only=False):
            if imp not in known or imp == "kontain":
                continue
            if _layer(imp) > mine:
                wrong.append(f"{name} imports {imp}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    known = {name for name, _ in _modules()}
    graph = {name: {i for i in _imports(path, top_only=True) if i in known and i != name} for name, path in _modules()}
    state: dict[str, int] = {}
    cycles = []

    def visit(n, stack):
        state[n] = 1
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                cycles.append(" -> ".join(stack[stack.index(m):] + [m]) if m in stack else f"{n} -> {m}")
            elif not state.get(m):
                visit(m, stack + [m])
        state[n] = 2

    for n in graph:
        if not state.get(n):
            visit(n, [n])
    assert not cycles, "\n".join(cycles)
