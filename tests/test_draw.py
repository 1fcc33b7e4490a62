"""The graph drawing: DOT text with no dependency; forward and double-backward parts told apart."""
import re
import shutil

import numpy as np
import pytest

from minigrad import functional as F, grad, nn
from minigrad.graph_drawing import draw, forward_ops, render
from minigrad.tensor import Tensor


def tiny(units=(3,)):
    model = nn.maxout_mlp(4, units, 2, 3, seed=0, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4)), requires_grad=True)
    layers, h = [], x
    for i, layer in enumerate(model.layers):
        h = layer(h)
        layers.append((f"layer {i + 1}", h))
    loss = F.cross_entropy(h, np.array([0, 2]))
    return model, x, layers, loss


def node_labels(dot):
    return re.findall(r'^\s*(\w+) \[label="([^"]*)"', dot, flags=re.M)


def test_forward_graph_names_ops_shapes_dtypes_and_marks_leaves():
    model, x, _, loss = tiny()
    dot = draw(loss, names=dict(model.named_parameters(), x=x))
    assert dot.startswith("digraph minigrad {") and dot.rstrip().endswith("}")
    labels = [label for _, label in node_labels(dot)]
    for op in ("Affine", "MaxOverPieces", "LogSoftmax"):
        assert any(label.startswith(op + "\\n") for label in labels), op
    assert any(label == "x\\n2×4 float64" for label in labels)
    assert any(label == "0.weight\\n4×6 float64" for label in labels)
    assert "#ffe599" in dot and "#b6d7a8" in dot           # parameters and inputs coloured
    assert 'peripheries="2"' in dot                         # the output
    assert "#f9cb9c" not in dot                             # no backward part
    n_ops = len(forward_ops(loss))
    assert sum(1 for label in labels if "\\n" in label and label.split("\\n")[0][0].isupper()) >= n_ops
    # every edge joins two declared nodes
    declared = {key for key, _ in node_labels(dot)}
    for a, b in re.findall(r"^\s*(\w+) -> (\w+)", dot, flags=re.M):
        assert a in declared and b in declared


def test_double_backward_part_is_coloured_apart_from_forward():
    model, x, _, loss = tiny()
    (g,) = grad(loss, x, create_graph=True)
    penalty = (g * g).sum()
    dot = draw(penalty, forward=loss, gradients=g, names=model)
    parts = re.findall(r'fillcolor="(#[0-9a-f]+)", color="(#[0-9a-f]+)"', dot)
    fills = {f for f, _ in parts}
    assert {"#cfe2f3", "#f9cb9c", "#d9d2e9"} <= fills       # forward, backward, penalty
    assert "LogSoftmaxGrad" in dot                          # the grad node recorded by backward
    assert "dir=back" in dot                                # the ladder: backward runs back
    # the same graph without ``forward`` is all one colour
    assert "#f9cb9c" not in draw(penalty)
    # a snapshot of op ids works as well as the forward tensors
    assert draw(penalty, forward=forward_ops(loss), gradients=g) == draw(penalty, forward=loss, gradients=g)


def test_layers_cluster_and_collapse_and_size_limit():
    _, x, layers, loss = tiny(units=(3, 3))
    (g,) = grad(loss, x, create_graph=True)
    penalty = (g * g).sum()
    dot = draw(penalty, forward=loss, gradients=g, layers=layers)
    assert dot.count("subgraph cluster_") == 3
    small = draw(penalty, forward=loss, gradients=g, layers=layers, collapse=True)
    assert len(node_labels(small)) < len(node_labels(dot)) / 2
    assert "layer 2\\nbackward:" in small and "layer 2\\nforward:" in small
    with pytest.raises(ValueError, match=r"draw: the graph has \d+ nodes, more than max_nodes=10 .*collapse=True"):
        draw(penalty, forward=loss, layers=layers, max_nodes=10)
    with pytest.raises(ValueError, match="collapse=True needs layers"):
        draw(penalty, collapse=True)


def test_full_maxout_mlp_stays_within_the_limit():
    model = nn.maxout_mlp(784, (240, 240), 5, 10, seed=0)
    x = Tensor(np.zeros((2, 784), np.float32), requires_grad=True)
    h, layers = x, []
    for i, layer in enumerate(model.layers):
        h = layer(h)
        layers.append((f"layer {i + 1}", h))
    loss = F.cross_entropy(h, np.array([0, 1]))
    (g,) = grad(loss, x, create_graph=True)
    dot = draw((g * g).sum(), forward=loss, gradients=g, layers=layers, names=model)
    assert "784×1200 float32" in dot  # shapes, not units, set the size: one node per array op
    assert len(node_labels(dot)) < 60


def test_compact_false_draws_every_tensor():
    _, x, _, loss = tiny()
    full, compact = draw(loss), draw(loss, compact=False)
    assert len(node_labels(compact)) > len(node_labels(full))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render_writes_an_image(tmp_path, fmt):
    _, x, _, loss = tiny()
    path = tmp_path / f"graph.{fmt}"
    draw(loss, filename=str(path))
    data = path.read_bytes()
    assert data[:4] == b"\x89PNG" if fmt == "png" else b"<svg" in data


def test_render_refuses_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="format must be svg, png, pdf or dot, got 'gif'"):
        render("digraph {}", str(tmp_path / "g.gif"))
