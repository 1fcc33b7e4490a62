"""The conventions DESIGN.md fixes where the math leaves a choice, and the extreme values the
library promises to survive: ties, kinks at 0, zero norms, saturated softmax, dtypes."""
import numpy as np
import pytest

from minigrad import backend
from minigrad import functional as F
from minigrad.tensor import Tensor, grad

P_VALUES = [1.0, 1.5, 2.0, 3.0, np.inf]


def tensor(values, device="cpu", dtype=np.float64, requires_grad=True):
    return Tensor(backend.to_device(np.asarray(values, dtype=dtype), device), requires_grad=requires_grad)


def arr(t):
    return backend.as_numpy(t.data)


def gradient(y, x, upstream=None, **kw):
    up = None if upstream is None else Tensor(backend.to_device(np.asarray(upstream, dtype=y.dtype), y.device))
    return grad(y, x, grad_outputs=up, **kw)[0]


# --- ties split evenly (the minimum-norm subgradient) -------------------------------------------
def test_max_ties_split_evenly(device):
    x = tensor([1.0, 3.0, 3.0], device)
    np.testing.assert_array_equal(arr(gradient(F.max(x), x)), [0.0, 0.5, 0.5])
    x = tensor([[2.0, 2.0, 2.0], [4.0, 1.0, 4.0]], device)
    g = gradient(F.max(x, axis=1), x, upstream=[3.0, 10.0])
    np.testing.assert_allclose(arr(g), [[1.0, 1.0, 1.0], [5.0, 0.0, 5.0]], rtol=1e-15)
    g = gradient(F.max(x, axis=0, keepdims=True), x, upstream=[[1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(arr(g), [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])


def test_maximum_and_minimum_ties_split_half_half(device):
    a, b = tensor([1.0, 2.0, 5.0], device), tensor([1.0, 3.0, 4.0], device)
    ga, gb = grad(F.maximum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(arr(ga), [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(arr(gb), [0.5, 1.0, 0.0])
    ga, gb = grad(F.minimum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(arr(ga), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(arr(gb), [0.5, 0.0, 1.0])
    # a broadcast scalar collects its share from every tie: relu-like max(x, 0) at 0
    x, zero = tensor([-1.0, 0.0, 2.0, 0.0], device), tensor(0.0, device)
    gx, gz = grad(F.maximum(x, zero).sum(), [x, zero])
    np.testing.assert_array_equal(arr(gx), [0.0, 0.5, 1.0, 0.5])
    assert arr(gz) == pytest.approx(1.0 + 0.5 + 0.5)


def test_maxout_routes_pieces_major_and_splits_ties(device):
    # pieces-major: piece k of unit j is column k*units + j
    z = tensor([[0.0, 9.0, 5.0, 1.0]], device)
    h = F.maxout(z, pieces=2)
    np.testing.assert_array_equal(arr(h), [[5.0, 9.0]])
    np.testing.assert_array_equal(arr(gradient(h, z, upstream=[[1.0, 10.0]])), [[0.0, 10.0, 1.0, 0.0]])
    # ties: unit 0 has pieces (2, 2, 2), unit 1 has (5, 5, 1)
    z = tensor([[2.0, 5.0, 2.0, 5.0, 2.0, 1.0]], device)
    g = gradient(F.maxout(z, pieces=3), z, upstream=[[3.0, 1.0]])
    np.testing.assert_allclose(arr(g), [[1.0, 0.5, 1.0, 0.5, 1.0, 0.0]], rtol=1e-15)
    z = tensor([[1.0, 1.0]], device)
    np.testing.assert_array_equal(arr(gradient(F.maxout(z, 2).sum(), z)), [[0.5, 0.5]])


# --- kinks at 0 ---------------------------------------------------------------------------------
def test_abs_relu_sign_at_zero(device):
    x = tensor([0.0, 2.0, -3.0], device)
    np.testing.assert_array_equal(arr(gradient(F.abs(x).sum(), x)), [0.0, 1.0, -1.0])
    np.testing.assert_array_equal(arr(gradient(F.relu(x).sum(), x)), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(arr(gradient(F.sign(x).sum(), x)), [0.0, 0.0, 0.0])


def test_sign_has_zero_derivative_at_every_order(device):
    x = tensor([0.0, 0.5, -2.0], device)
    g = gradient((F.sign(x) * x).sum(), x, create_graph=True)  # d/dx sign(x)·x = sign(x)
    np.testing.assert_array_equal(arr(g), [0.0, 1.0, -1.0])
    h = grad((g * g).sum(), x, allow_unused=True)[0] if g.requires_grad else None
    assert h is None or not np.any(arr(h))


def test_power_zero_has_zero_derivative_at_zero(device):
    # d/dx x⁰ = 0 everywhere, x = 0 included (NumPy's 0⁰ is 1)
    x = tensor([0.0, 1.5, -2.0], device)
    g = gradient((x ** 0).sum(), x)
    np.testing.assert_array_equal(arr(g), [0.0, 0.0, 0.0])


# --- norms at zero ------------------------------------------------------------------------------------
def second_derivative_is_finite(g, x):
    """Differentiate a weighted sum of g; None (no graph) counts as a finite 0."""
    if not g.requires_grad:
        return True
    w = Tensor(backend.to_device(np.linspace(-1.0, 2.0, g.size).reshape(g.shape), g.device))
    (h,) = grad((g * w).sum(), x, allow_unused=True)
    return h is None or bool(np.all(np.isfinite(arr(h))))


@pytest.mark.parametrize("p", P_VALUES, ids=str)
def test_lp_norm_at_zero_has_zero_gradient_and_finite_second_derivative(device, p):
    x = tensor(np.zeros(4), device)
    y = F.lp_norm(x, p)
    assert arr(y) == 0.0
    g = gradient(y, x, create_graph=True)
    np.testing.assert_array_equal(arr(g), np.zeros(4))
    assert second_derivative_is_finite(g, x)


@pytest.mark.parametrize("p", P_VALUES + [7.3], ids=str)
def test_lp_norm_zero_rows_and_zero_coordinates(device, p):
    data = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, -2.0]])
    x = tensor(data, device)
    g = gradient(F.lp_norm(x, p, axis=1), x, upstream=[1.0, 1.0], create_graph=True)
    row = data[1]
    if p == np.inf:
        expected = np.sign(row) * (np.abs(row) == 2.0)
    else:
        norm = np.sum(np.abs(row) ** p) ** (1 / p)
        expected = np.sign(row) * (np.abs(row) / norm) ** (p - 1)
    np.testing.assert_allclose(arr(g), [[0.0, 0.0, 0.0], expected], rtol=1e-12)
    assert second_derivative_is_finite(g, x)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-40), (np.float64, 1e-200), (np.float64, 1e40),
                                          (np.float32, 1e-6), (np.float32, 1e5)])
@pytest.mark.parametrize("p", [1.5, 3.0, 10.0], ids=str)
def test_lp_norm_gradient_is_scale_invariant(p, dtype, scale):
    """∇‖x‖ₚ is homogeneous of degree 0: tiny or huge inputs (float32 gradients of 1e-6
    with p = 10) must not underflow |x|^(p−1) / ‖x‖^(p−1) into 0/0."""
    data = np.array([1.0, -2.0, 0.5])
    expected = np.sign(data) * (np.abs(data) / np.sum(np.abs(data) ** p) ** (1 / p)) ** (p - 1)
    x = tensor(data * scale, dtype=dtype)
    g = gradient(F.lp_norm(x, p), x)
    assert g.dtype == dtype
    np.testing.assert_allclose(arr(g), expected, rtol=1e-4 if dtype == np.float32 else 1e-10)


# --- saturated softmax ------------------------------------------------------------------------------------
def test_log_softmax_at_extreme_logits(device):
    x = tensor([[-1000.0, 1.0]], device)
    y = F.log_softmax(x)
    np.testing.assert_array_equal(arr(y), [[-1001.0, 0.0]])
    g = gradient(y, x, upstream=[[2.0, 3.0]], create_graph=True)  # g − softmax·Σg
    np.testing.assert_allclose(arr(g), [[2.0, -2.0]], atol=1e-300)
    assert second_derivative_is_finite(g, x)
    np.testing.assert_allclose(arr(F.softmax(x)), [[0.0, 1.0]], atol=1e-300)


@pytest.mark.parametrize("label, loss, grad_row", [(0, 1001.0, [-1.0, 1.0]), (1, 0.0, [0.0, 0.0])])
def test_cross_entropy_at_extreme_logits(device, label, loss, grad_row):
    x = tensor([[-1000.0, 1.0]], device)
    ce = F.cross_entropy(x, backend.to_device(np.array([label]), device))
    assert arr(ce) == pytest.approx(loss, abs=1e-12)
    g = gradient(ce, x, create_graph=True)
    np.testing.assert_allclose(arr(g), [grad_row], atol=1e-300)
    hessian = ce_hessian(g, x)
    assert np.all(np.isfinite(hessian))
    p = np.array([0.0, 1.0])
    np.testing.assert_allclose(hessian, np.diag(p) - np.outer(p, p), atol=1e-300)


def ce_hessian(g, x):
    """Rows of ∂g/∂x by one backward pass per entry of g (g = ∇ₓL, built with create_graph)."""
    rows = []
    for index in np.ndindex(*g.shape):
        e = np.zeros(g.shape)
        e[index] = 1.0
        (h,) = grad(g, x, grad_outputs=Tensor(backend.to_device(e, g.device)))
        rows.append(arr(h).ravel())
    return np.array(rows)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_hessian_is_diag_p_minus_ppT(device, reduction):
    rng = np.random.default_rng(3)
    logits = rng.uniform(-2, 2, (3, 4))
    labels = np.array([0, 3, 3])
    x = tensor(logits, device)
    ce = F.cross_entropy(x, backend.to_device(labels, device), reduction=reduction)
    g = gradient(ce, x, create_graph=True)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scale = 1 / 3 if reduction == "mean" else 1.0
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(arr(g), scale * (p - onehot), rtol=1e-12, atol=1e-15)
    expected = np.zeros((12, 12))
    for b in range(3):
        expected[4 * b:4 * b + 4, 4 * b:4 * b + 4] = scale * (np.diag(p[b]) - np.outer(p[b], p[b]))
    np.testing.assert_allclose(ce_hessian(g, x), expected, rtol=1e-10, atol=1e-14)


# --- float32 stays float32 ------------------------------------------------------------------------------
NN_OPS = {
    "cross_entropy": lambda x: F.cross_entropy(x, np.array([0, 5, 2])),
    "log_softmax": lambda x: F.log_softmax(x),
    "maxout": lambda x: F.maxout(x, pieces=2),
    "lp_norm_1.5": lambda x: F.lp_norm(x, 1.5, axis=1),
    "lp_norm_inf": lambda x: F.lp_norm(x, np.inf),
    "lp_norm_2": lambda x: F.lp_norm(x, 2),
}


@pytest.mark.parametrize("name", NN_OPS)
def test_float32_in_float32_out(name):
    rng = np.random.default_rng(4)
    x = tensor(rng.standard_normal((3, 6)), dtype=np.float32)
    y = NN_OPS[name](x)
    assert y.dtype == np.float32
    up = rng.standard_normal(y.shape).astype(np.float32)
    g = gradient(y, x, upstream=up, create_graph=True)
    assert g.dtype == np.float32 and np.all(np.isfinite(arr(g)))
    if g.requires_grad:
        (h,) = grad((g * g).sum(), x, allow_unused=True)
        assert h is None or (h.dtype == np.float32 and np.all(np.isfinite(arr(h))))


# --- imports flow one way --------------------------------------------------------------------------
# The floors of DESIGN.md for the modules of the engine and the family; a module may import only
# from floors below its own (the tools on top are free to import these).
FLOORS = [("backend",), ("validate",), ("tensor",), ("ops",), ("functional",), ("nn",),
          ("perturbations",), ("objective",), ("terms", "penalties"), ("regularizers",), ("members",),
          ("verify.regions",), ("verify.claims",), ("verify", "verify.__main__")]


def _imports_of_the_package():
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1] / "minigrad"
    graph = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names if not node.module else [None]:
                    deps.add(target if alias is None else ".".join(filter(None, [target, alias.name])))
        graph[name] = {d for d in deps if d}
    names = set(graph)
    return {m: {d if d in names else d.rsplit(".", 1)[0] for d in ds} & names - {m} for m, ds in graph.items()}


def test_no_import_circle_and_no_upward_import_in_the_engine_and_family():
    graph = _imports_of_the_package()
    floor = {m: i for i, mods in enumerate(FLOORS) for m in mods}
    for module, deps in graph.items():
        for dep in deps:
            if module in floor and dep in floor:
                assert floor[dep] < floor[module] or dep == "verify" and module == "verify.__main__", (
                    f"{module} imports {dep} from its own floor or above")
    # no circle among these modules: a depth-first search finds no back edge (the tools above them,
    # cli/compare/train/plots, are checked by the package-wide test of the layout)
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in graph.get(m, set()) & set(floor):
            assert state.get(d) != "open", f"import circle: {' -> '.join(path + [d])}"
            if d not in state:
                visit(d, path + [d])
        state[m] = "done"
    for m in floor:
        if m not in state:
            visit(m, [m])
