"""The package's floors (README, "How the code is organised"): every module has a floor, imports
flow only downward or sideways, and there is no circle anywhere.  A new module fails this test until
it is given a floor, so the picture in the README and the tree cannot drift apart."""
from test_conventions import _imports_of_the_package

# Bottom to top.  A module may import from its own floor or below, never from above.
FLOORS = {
    "errors": 0,
    "validate": 1, "backend": 1,
    "tensor": 2,                                   # the engine
    "ops": 3,
    "functional": 4,
    "gradcheck": 5, "diffops": 5,                  # tools on the engine's public grad()
    "conv": 5,                                     # convolution and pooling ops (unfold/fold)
    "nn": 6, "optim": 6, "datasets": 6,            # layers, optimisers, data
    "cifar": 7,                                    # the CIFAR-10 reader
    "graph_drawing": 7,                            # draws graphs (marks nn.Parameters)
    "perturbations": 7,                            # the family
    "objective": 8, "terms": 9, "penalties": 9, "regularizers": 9, "members": 10,
    "verify.regions": 11, "verify.claims": 12, "verify": 13, "verify.__main__": 14,
    "attacks": 11, "robust": 11,                   # evaluation: the attack suite, robust error, masking flags
    "checkpoint": 11, "progress": 11, "train": 12,  # training
    "experiment": 13, "plots": 13,                 # the applications people run
    "verdicts": 13,                                # statistics of a sweep's cells
    "compare": 14, "sweep_report": 14, "sweep": 15, "cli": 16, "__main__": 17,
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
