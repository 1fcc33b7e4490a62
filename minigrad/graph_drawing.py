"""Draw the recorded graph: DOT text with no dependency, SVG/PNG through graphviz when installed::

    dot = draw(loss)                                   # the forward graph, as DOT text
    (g,) = grad(loss, x, create_graph=True)
    penalty = (g * g).sum()
    draw(penalty, forward=loss, filename="double.png") # blue: forward, orange: what backward added

The graph is the one the engine records (tensor.py): an op node for every recorded op, tensor
nodes for the leaves (inputs, green; parameters, yellow) and the outputs (double border).
``compact=True`` (default) writes each intermediate tensor's shape and dtype into the op that made
it instead of a node of its own; ``compact=False`` draws every tensor.

Telling the two parts apart needs no bookkeeping in the engine: ``forward`` names the tensors the
forward pass produced (the loss); every op reachable from them is *forward*, every other op was
recorded later, by a backward pass with ``create_graph=True``.

``layers`` clusters the picture: a list of ``(name, tensor)`` with each layer's output, in order;
an op belongs to the first layer whose output depends on it, a backward op to the layer of the
forward tensors it reads (its own layer's weights and activations).  ``collapse=True`` draws each
layer as one node.  Beyond ``max_nodes`` nodes ``draw`` refuses, saying how to shrink the picture.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from . import validate
from .errors import InvalidArgument
from .nn import Parameter
from .tensor import Tensor

__all__ = ["draw", "render", "forward_ops"]

COLORS = {"forward": "#cfe2f3", "backward": "#f9cb9c", "input": "#b6d7a8", "param": "#ffe599",
          "const": "#eeeeee", "output": "#ffffff", "penalty": "#d9d2e9"}
BORDER = {"forward": "#3d85c6", "backward": "#e69138", "penalty": "#674ea7"}
LEGEND = {"forward": "blue: forward ops", "backward": "orange: ops recorded by backward(create_graph=True)",
          "penalty": "purple: ops applied to the gradient"}
LEAVES = "green: inputs · yellow: parameters · double border: outputs"


def _as_list(t, what="outputs", who="draw"):
    if t is None:
        return []
    items = [t] if isinstance(t, Tensor) else list(t) if isinstance(t, (list, tuple)) else None
    if items is None or not all(isinstance(i, Tensor) for i in items):
        raise InvalidArgument(f"{who}: {what} must be a Tensor or a list of Tensors, got {t!r}")
    return items


def forward_ops(outputs) -> set:
    """ids of every op reachable from ``outputs``: a snapshot of the forward graph."""
    seen, stack = set(), [t._op for t in _as_list(outputs, "outputs", "forward_ops") if t._op is not None]
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.extend(i._op for i in op.inputs if i._op is not None and id(i._op) not in seen)
    return seen


def _describe(t: Tensor) -> str:
    shape = "×".join(str(s) for s in t.shape) or "scalar"
    return f"{shape} {t.dtype}"


def _quote(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _collect(outputs, constants):
    """(ops in inputs-first order, leaves and constants) reachable from ``outputs``."""
    order, seen, leaves = [], set(), {}
    stack = [(t._op, False) for t in outputs if t._op is not None]
    for t in outputs:
        if t._op is None:
            leaves[id(t)] = t
    while stack:
        op, done = stack.pop()
        if done:
            order.append(op)
            continue
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.append((op, True))
        for i in op.inputs:
            if i._op is not None:
                stack.append((i._op, False))
            elif i.requires_grad or constants:
                leaves[id(i)] = i
    return order, leaves


def _layer_of(order, layers, fwd, leaves):
    """op id -> layer index.  A forward op goes to the first layer whose output depends on it, a
    leaf to the layer of the forward op that reads it.  An op recorded by backward that reads
    forward values or leaves (or an op of them, like Wᵀ) goes to the lowest layer among them (layer k's backward reads layer
    k's weights and activations, and the gradient arriving from above); one that only moves
    gradients around (reshapes, masks) goes with the op that consumes its result."""
    group = {}
    for k, (_, out) in enumerate(layers):
        for oid in forward_ops(out):
            group.setdefault(oid, k)
    for op in order:
        if id(op) in group:
            for i in op.inputs:
                if i._op is None and id(i) in leaves:
                    group.setdefault(id(i), group[id(op)])
    late = [op for op in order if id(op) not in fwd]
    reads_values = set()  # late ops that read only forward values and leaves, e.g. Wᵀ
    for op in late:  # inputs first, so whatever an op reads is already placed
        keys = [id(i._op) if i._op is not None else id(i) for i in op.inputs if i.requires_grad]
        if all(k in fwd or k in leaves for k in keys):
            reads_values.add(id(op))
        anchors = [group[k] for k in keys if k in group and (k in fwd or k in leaves or k in reads_values)]
        if anchors:
            group[id(op)] = min(anchors)
    consumers = {}
    for op in late:
        for i in op.inputs:
            if i._op is not None:
                consumers.setdefault(id(i._op), []).append(op)
    for op in reversed(late):  # users first
        if id(op) not in group:
            ks = [group[id(c)] for c in consumers.get(id(op), []) if id(c) in group]
            if ks:
                group[id(op)] = min(ks)
    return group


def draw(outputs, forward=None, gradients=None, names=None, layers=None, collapse=False, compact=True,
         constants=False, max_nodes=300, rankdir="LR", ladder=True, title=None, filename=None, format=None) -> str:
    """The graph that produced ``outputs`` (a Tensor or a list) as DOT text.

    ``forward``: tensors of the forward pass (or ``forward_ops`` of them); ops not reachable from
    them are coloured as recorded by a ``create_graph=True`` backward.  ``gradients``: the tensors
    that backward returned; ops after them (a penalty on the gradient) get a third colour.
    ``names``: a dict name → Tensor, or a Module (its ``named_parameters``), to label leaves.
    ``layers``, ``collapse``, ``compact``: see the module docstring.  ``constants``: also draw
    tensors that need no gradient.  ``ladder``: lay the recorded backward out under the forward,
    running back (dashed edges: the forward values it reads).  ``filename``: also render there
    (format from the suffix or ``format``; needs Graphviz).
    """
    outputs = _as_list(outputs)
    _as_list(gradients, "gradients")
    if not isinstance(forward, (set, frozenset)):
        _as_list(forward, "forward (tensors, or forward_ops of them)")
    validate.integer(max_nodes, "max_nodes", "draw", low=1)
    if not outputs:
        raise ValueError("draw: no outputs given")
    layers = list(layers or [])
    if collapse and not layers:
        raise ValueError("draw: collapse=True needs layers=[(name, layer_output), ...] to collapse")
    if names is not None and hasattr(names, "named_parameters"):
        names = dict(names.named_parameters())
    fwd = forward if isinstance(forward, (set, frozenset)) else (
        forward_ops(forward) if forward is not None else None)
    order, leaves = _collect(outputs, constants)
    part, group = _classify(order, leaves, fwd, gradients, layers)
    graph = _Graph(part, group if collapse else {}, compact)
    graph.add_leaves(leaves, {id(t): n for n, t in (names or {}).items()}, folded_into_layers=collapse)
    graph.add_ops(order, layers, group)
    graph.add_outputs(outputs, {id(t): n for n, t in (names or {}).items()})
    if len(graph.nodes) > max_nodes:
        hint = ("pass collapse=True (one node per layer)" if layers and not collapse else
                "pass layers=[(name, layer_output), ...] and collapse=True" if not layers else "draw fewer outputs")
        raise ValueError(f"draw: the graph has {len(graph.nodes)} nodes, more than max_nodes={max_nodes} can show "
                         f"readably; {hint}, or raise max_nodes")
    dot = graph.dot(layers, rankdir, _legend(title, set(part.values())), ladder and fwd is not None)
    if filename is not None:
        render(dot, filename, format)
    return dot


def _classify(order, leaves, fwd, gradients, layers):
    """op id -> 'forward' | 'backward' | 'penalty', and op/leaf id -> layer index."""
    part = {id(op): "forward" if fwd is None or id(op) in fwd else "backward" for op in order}
    group = _layer_of(order, layers, fwd if fwd is not None else set(part), leaves) if layers else {}
    if gradients is not None:  # ops after the gradients (the penalty on them) are drawn apart
        recorded = forward_ops(gradients)
        for op in order:
            if part[id(op)] == "backward" and id(op) not in recorded:
                part[id(op)] = "penalty"
                group.pop(id(op), None)
    return part, group


class _Graph:
    """Nodes (key -> (label, attributes)), edges and layer clusters of one picture.  With
    ``collapsed`` (op id -> layer) the ops of a layer share one node per part."""

    def __init__(self, part, collapsed, compact):
        self.part, self.collapsed, self.compact = part, collapsed, compact
        self.nodes, self.edges, self.clusters, self.node_part, self.folded = {}, set(), {}, {}, set()

    def op_key(self, op):
        if id(op) in self.collapsed:
            return f"L{self.collapsed[id(op)]}{self.part[id(op)][0]}"
        return f"o{id(op)}"

    def result_key(self, op):  # the node an op's result leaves from
        key = self.op_key(op)
        return key if self.compact or key.startswith("L") else f"r{id(op)}"

    def add_leaves(self, leaves, label_of, folded_into_layers):
        for oid, t in leaves.items():
            is_param = isinstance(t, Parameter)
            if folded_into_layers and is_param and oid in self.collapsed:
                self.folded.add(oid)  # a collapsed layer's node stands for its parameters too
                continue
            kind = "param" if is_param else ("input" if t.requires_grad else "const")
            name = label_of.get(oid) or {"param": "parameter", "input": "input"}.get(kind, "")
            self.nodes[f"t{oid}"] = (f"{name}\n{_describe(t)}".strip(), dict(
                shape="ellipse", style="filled", fillcolor=COLORS[kind], fontsize="10" if kind != "const" else "8"))

    def add_ops(self, order, layers, group):
        counts = {}
        for op in order:
            key, part = self.op_key(op), self.part[id(op)]
            self.node_part[key] = part
            if key.startswith("L"):
                counts[key] = counts.get(key, 0) + 1
                n = counts[key]
                self.nodes[key] = (f"{layers[self.collapsed[id(op)]][0]}\n{part}: {n} op{'s' * (n > 1)}", dict(
                    shape="box3d", style="filled", fontsize="10", margin="0.15,0.1", fillcolor=COLORS[part]))
            else:
                label = type(op).__name__ + (f"\n{_describe(Tensor(op._out))}" if self.compact else "")
                self.nodes[key] = (label, dict(shape="box", style="filled,rounded", fillcolor=COLORS[part],
                                               color=BORDER[part], fontsize="10"))
                self._cluster(group, op, key)
                if not self.compact:
                    tkey = f"r{id(op)}"
                    self.node_part[tkey] = part
                    self.nodes[tkey] = (_describe(Tensor(op._out)), dict(shape="ellipse", fontsize="8",
                                                                         color=BORDER[part]))
                    self.edges.add((key, tkey))
                    self._cluster(group, op, tkey)
            for i in op.inputs:
                if i._op is not None:
                    src = self.result_key(i._op)
                elif f"t{id(i)}" in self.nodes:
                    src = f"t{id(i)}"
                else:
                    continue  # a constant not drawn, or a parameter folded into its layer
                if src != key:
                    self.edges.add((src, key))

    def _cluster(self, group, op, key):
        if id(op) in group:
            self.clusters.setdefault(group[id(op)], []).append(key)

    def add_outputs(self, outputs, label_of):
        for k, t in enumerate(outputs):
            key = f"out{k}"
            self.node_part[key] = self.part.get(id(t._op), "forward") if t._op is not None else "forward"
            label = label_of.get(id(t)) or ("output" if len(outputs) == 1 else f"output {k}")
            self.nodes[key] = (f"{label}\n{_describe(t)}", dict(shape="ellipse", peripheries="2", style="filled",
                                                                fillcolor=COLORS["output"], fontsize="10"))
            self.edges.add((self.result_key(t._op) if t._op is not None else f"t{id(t)}", key))

    def dot(self, layers, rankdir, legend, ladder) -> str:
        lines = ["digraph minigrad {",
                 f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, nodesep=0.15, ranksep=0.3, '
                 f'labelloc=b, label={_quote(legend)}];',
                 '  node [fontname="Helvetica", margin="0.05,0.02", height=0.3];',
                 '  edge [arrowsize=0.6, color="#666666"];']
        in_cluster = {key for keys in self.clusters.values() for key in keys}
        for k, keys in sorted(self.clusters.items()):
            lines.append(f"  subgraph cluster_{k} {{ label={_quote(layers[k][0])}; style=dashed; color=\"#999999\";")
            lines += [f"    {key} [label={_quote(self.nodes[key][0])}, {_attrs(self.nodes[key][1])}];" for key in keys]
            lines.append("  }")
        lines += [f"  {key} [label={_quote(label)}, {_attrs(attrs)}];"
                  for key, (label, attrs) in self.nodes.items() if key not in in_cluster]
        lines += [_edge(a, b, self.node_part, ladder) for a, b in sorted(self.edges)]
        return "\n".join(lines) + "\n}\n"


def _edge(a, b, node_part, ladder) -> str:
    """With ``ladder`` the backward part runs right to left under the forward part: an edge
    between two recorded-later nodes is drawn reversed (so it ranks like the forward edge it
    differentiates), and an edge from the forward part into it does not constrain the ranks."""
    late = ("backward", "penalty")
    if ladder and node_part.get(a) in late and node_part.get(b) in late:
        return f"  {b} -> {a} [dir=back];"
    if ladder and node_part.get(b) in late:
        return f"  {a} -> {b} [constraint=false, style=dashed];"
    return f"  {a} -> {b};"


def _legend(title, parts):
    legend = " · ".join(text for key, text in LEGEND.items() if key in parts) + " · " + LEAVES
    return (title + "\n" if title else "") + legend


def _attrs(attrs: dict) -> str:
    return ", ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


def render(dot: str, filename: str, format: str | None = None, dpi: int = 110) -> str:
    """Write DOT text as ``format`` (default: ``filename``'s suffix: svg, png, pdf) with Graphviz:
    the ``graphviz`` Python package if installed, else the ``dot`` program.  Returns the path."""
    format = format or os.path.splitext(filename)[1].lstrip(".").lower() or "svg"
    if format not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"render: format must be svg, png, pdf or dot, got {format!r}")
    os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    if format == "dot":
        with open(filename, "w") as f:
            f.write(dot)
        return filename
    if format == "png":
        dot = dot.replace("graph [", f"graph [dpi={int(dpi)}, ", 1)
    try:
        import graphviz
        data = graphviz.pipe("dot", format, dot.encode())
    except ImportError:  # the optional extra is absent: call the program directly
        data = None
    if data is None:
        exe = shutil.which("dot")
        if exe is None:
            raise RuntimeError("render: Graphviz is not installed (the `dot` program); "
                               "apt-get install graphviz, or pip install 'minigrad[graph]' and Graphviz; "
                               "draw() still returns the DOT text")
        data = subprocess.run([exe, f"-T{format}"], input=dot.encode(), capture_output=True,
                              check=True, timeout=120).stdout
    with open(filename, "wb") as f:
        f.write(data)
    return filename
