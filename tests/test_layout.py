"""The package's floors (README, "How the code is organised"): every module has a floor, imports
flow only downward or sideways, and there is no circle anywhere.  A new module fails this test until
it is given a floor, so the picture in the README and the tree cannot drift apart."""
import ast
import pathlib
import re

from test_conventions import _imports_of_the_package

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom to top.  A module may import from its own floor or below, never from above.
FLOORS = {
    "errors": 0,
    "validate": 1, "backend": 1, "optional": 1,    # base: checks, arrays, optional packages
    "gemm": 1,                                     # one matrix product, in the measured faster order
    "tensor": 2,                                   # the engine
    "ops": 3,
    "functional": 4,
    "gradcheck": 5, "diffops": 5,                  # tools on the engine's public grad()
    "conv": 5,                                     # convolution and pooling ops (unfold/fold)
    "nn": 6, "optim": 6, "datasets": 6,            # layers, optimisers, data
    "cifar": 7,                                    # the CIFAR-10 reader
    "graph_drawing": 7,                            # draws graphs (marks nn.Parameters)
    "perturbations": 7,                            # the family
    "objective": 8, "terms": 9, "penalties": 9, "curvature": 9, "adversarial": 9, "regularizers": 10, "members": 10,
    "warmup": 10,                                  # the family: a member's weight ramped in
    "verify.regions": 11, "verify.claims": 12, "verify.successors": 12, "verify": 13, "verify.__main__": 14,
    "attacks": 11, "robust": 11,                   # evaluation: the attack suite, robust error, masking flags
    "checkpoint": 11, "progress": 11, "diagnostics": 11, "train": 12,  # training
    "specs": 13, "evaluation": 13,                 # what a run is; how a model is judged
    "recipes": 14,                                 # the papers' own experiments, as specs
    "plots": 13, "verdicts": 13,                   # figures; statistics of a sweep's cells
    "sweep_report": 14, "grids": 14,               # a sweep's reports; its grids' extension
    "compare": 15, "sweep": 15, "reproduce": 15,   # the commands, side by side
    "flags": 16, "cli": 17, "__main__": 18,        # the command line on top
}
OPTIONAL = {}


def _upward_imports(graph, floors):
    return [f"{m} (floor {floors[m]}) imports {d} (floor {floors[d]})"
            for m in sorted(graph) if m for d in sorted(graph[m] - {""}) if floors[d] > floors[m]]


def test_every_module_has_a_floor_and_imports_only_downward():
    graph = _imports_of_the_package()
    floors = {**FLOORS, **{m: f for m, f in OPTIONAL.items() if m in graph}}
    missing = sorted(set(graph) - {""} - set(floors))  # "" is the package's __init__, the facade
    assert not missing, f"modules without a floor (add them here and to the README): {missing}"
    assert not _upward_imports(graph, floors)


def test_no_import_circle_anywhere():
    graph = _imports_of_the_package()
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph.get(m, set()) - {""}):
            assert state.get(d) != "open", f"import circle: {' -> '.join(path + [d])}"
            if d not in state:
                visit(d, path + [d])
        state[m] = "done"
    for m in sorted(graph):
        if m and m not in state:
            visit(m, [m])


def test_the_check_sees_an_upward_import():
    graph = _imports_of_the_package()
    graph["tensor"] = graph["tensor"] | {"nn"}  # as if the engine imported the layers
    assert _upward_imports(graph, FLOORS) == ["tensor (floor 2) imports nn (floor 6)"]


def test_commands_stand_side_by_side_on_evaluation():
    assert FLOORS["compare"] == FLOORS["sweep"] > FLOORS["evaluation"] > FLOORS["train"]
    graph = _imports_of_the_package()
    assert "sweep" not in graph["compare"] and "compare" not in graph["sweep"]
    assert not {"cli", "flags"} & (graph["compare"] | graph["sweep"])


# --- in-package imports sit at the top of their module --------------------------------------------
def deferred_imports(sources: dict) -> list:
    """'module:line' of every in-package import that is not a statement of the module's top level."""
    found = []
    for name, text in sources.items():
        tree = ast.parse(text)
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            in_package = (isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("minigrad"))
                          or isinstance(node, ast.Import) and any(a.name.startswith("minigrad") for a in node.names))
            if in_package and id(node) not in top:
                found.append(f"{name}:{node.lineno}")
    return found


def _sources():
    return {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "minigrad").rglob("*.py")}


def test_no_in_package_import_is_deferred():
    assert deferred_imports(_sources()) == []


def test_the_check_sees_a_deferred_import():
    sources = {"minigrad/sweep.py": "import os\n\ndef f():\n    from .compare import attack_grid\n    return 1\n",
               "minigrad/ok.py": "from . import tensor\nimport json\n\ndef g():\n    import numpy\n"}
    assert deferred_imports(sources) == ["minigrad/sweep.py:4"]


# --- the README's floor table is the living copy of FLOORS ------------------------------------------
def readme_floors(text: str) -> list:
    """The module names of each row of the README's table under "How the code is organised"."""
    section = text.split("## How the code is organised", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| floor")]
    table = []
    for row in rows:
        names = [m.replace("/", ".").rstrip(".") for m in re.findall(r"`([\w/]+?)(?:\.py)?`", row.split("|")[2])]
        table.append([names[0]] + [f"{names[0]}.{m}" for m in names[1:]] if names[:1] == ["verify"] else names)
    return table


def readme_disagreements(rows: list, floors: dict) -> list:
    modules = {m.split(".")[0] for m in floors if m not in ("__main__",)}
    named = [m for row in rows for m in row]
    problems = [f"the README's table omits {m}" for m in sorted(modules - {m.split('.')[0] for m in named})]
    problems += [f"the README's table names {m}, which is no module" for m in named if m.split(".")[0] not in modules]
    levels = [[floors.get(m, floors.get(f"{m}.__main__", -1)) for m in row if m in floors or m == "verify"] for row in rows]
    for (a, b), (ra, rb) in zip(zip(levels, levels[1:]), zip(rows, rows[1:])):
        if a and b and max(a) > min(b) and not set(ra) & {"verify"} and not set(rb) & {"verify"}:
            problems.append(f"the README puts {ra} below {rb}, but FLOORS does not")
    return problems


def test_the_readme_floor_table_agrees_with_the_modules():
    assert readme_disagreements(readme_floors((ROOT / "README.md").read_text()), FLOORS) == []


def test_the_check_sees_a_readme_table_that_omits_a_module():
    rows = readme_floors((ROOT / "README.md").read_text())
    without = [[m for m in row if m != "sweep_report"] for row in rows]
    assert readme_disagreements(without, FLOORS) == ["the README's table omits sweep_report"]


def test_importing_minigrad_changes_nothing_process_wide():
    """``import minigrad`` only defines things: no call at the top level of the package's __init__ (the
    allocator tuning, ``keep_freed_memory``, is done by ``fit`` and the commands)."""
    tree = ast.parse((ROOT / "minigrad" / "__init__.py").read_text())
    calls = [f"line {node.lineno}" for node in tree.body
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert calls == []
