"""Draw the recorded graph: DOT text with no dependency, SVG/PNG through graphviz when installed.

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

from .tensor import Tensor

__all__ = ["draw", "render", "forward_ops"]

COLORS = {"forward": "#cfe2f3", "backward": "#f9cb9c", "input": "#b6d7a8", "param": "#ffe599",
          "const": "#eeeeee", "output": "#ffffff", "penalty": "#d9d2e9"}
BORDER = {"forward": "#3d85c6", "backward": "#e69138", "penalty": "#674ea7"}
LEGEND = {"forward": "blue: forward ops", "backward": "orange: ops recorded by backward(create_graph=True)",
          "penalty": "purple: ops applied to the gradient"}
LEAVES = "green: inputs · yellow: parameters · double border: outputs"


def _as_list(t):
    if t is None:
        return []
    return [t] if isinstance(t, Tensor) else list(t)


def forward_ops(outputs) -> set:
    """ids of every op reachable from ``outputs``: a snapshot of the forward graph."""
    seen, stack = set(), [t._op for t in _as_list(outputs) if t._op is not None]
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

    ``forward``: tensors of the forward pass (or ``forward_ops`` of them); ops not reachable
    from them are coloured as recorded by a ``create_graph=True`` backward.  ``gradients``: the
    tensors that backward returned; ops after them (a penalty on the gradient) get a third colour.  ``names``: a dict
    name → Tensor, or a Module (its ``named_parameters``), to label leaves.  ``layers``, ``collapse``,
    ``compact``: see the module docstring.  ``constants``: also draw tensors that need no gradient.
    ``ladder``: lay the recorded backward out under the forward, running back (dashed edges: the
    forward values it reads).  ``filename``: also render there (format from the suffix or ``format``; needs graphviz).
    """
    outputs = _as_list(outputs)
    if not outputs:
        raise ValueError("draw: no outputs given")
    from .nn import Parameter  # imported here: the engine below knows nothing of layers
    if names is not None and hasattr(names, "named_parameters"):
        names = dict(names.named_parameters())
    label_of = {id(t): n for n, t in (names or {}).items()}
    fwd = forward if isinstance(forward, (set, frozenset)) else (
        forward_ops(forward) if forward is not None else None)
    order, leaves = _collect(outputs, constants)
    part = {id(op): "forward" if fwd is None or id(op) in fwd else "backward" for op in order}
    layers = list(layers or [])
    group = _layer_of(order, layers, fwd if fwd is not None else set(part), leaves) if layers else {}
    if gradients is not None:  # ops after the gradients (the penalty on them) are drawn apart
        recorded = forward_ops(gradients)
        for op in order:
            if part[id(op)] == "backward" and id(op) not in recorded:
                part[id(op)] = "penalty"
                group.pop(id(op), None)
    if collapse and not layers:
        raise ValueError("draw: collapse=True needs layers=[(name, layer_output), ...] to collapse")

    # nodes: key -> (label, attributes); a collapsed layer is one node standing for its ops
    nodes, edges, clusters, node_part = {}, set(), {}, {}

    def op_key(op):
        if collapse and id(op) in group:
            return f"L{group[id(op)]}{part[id(op)][0]}"
        return f"o{id(op)}"

    folded = {oid for oid, t in leaves.items() if collapse and isinstance(t, Parameter) and oid in group}
    for oid, t in leaves.items():  # a collapsed layer's node stands for its parameters too
        if oid in folded:
            continue
        is_param = isinstance(t, Parameter)
        kind = "param" if is_param else ("input" if t.requires_grad else "const")
        name = label_of.get(oid) or t.name or ("parameter" if is_param else "input" if t.requires_grad else "")
        nodes[f"t{oid}"] = (f"{name}\n{_describe(t)}".strip(), dict(
            shape="ellipse", style="filled", fillcolor=COLORS[kind], fontsize="10" if kind != "const" else "8"))
    counts = {}
    for op in order:
        key = op_key(op)
        out_t = Tensor(op._out)
        if key.startswith("L"):
            k = group[id(op)]
            counts.setdefault(key, []).append(type(op).__name__)
            names_k = counts[key]
            node_part[key] = part[id(op)]
            nodes[key] = (f"{layers[k][0]}\n{part[id(op)]}: "
                          f"{len(names_k)} ops", dict(shape="box3d", style="filled", fontsize="10",
                                                     fillcolor=COLORS[part[id(op)]]))
        else:
            label = type(op).__name__ + (f"\n{_describe(out_t)}" if compact else "")
            node_part[key] = part[id(op)]
            nodes[key] = (label, dict(shape="box", style="filled,rounded", fillcolor=COLORS[part[id(op)]],
                                      color=BORDER[part[id(op)]], fontsize="10"))
            if id(op) in group:
                clusters.setdefault(group[id(op)], []).append(key)
        if not compact and not key.startswith("L"):
            tkey = f"r{id(op)}"
            node_part[tkey] = part[id(op)]
            nodes[tkey] = (_describe(out_t), dict(shape="ellipse", fontsize="8", color=BORDER[part[id(op)]]))
            edges.add((key, tkey))
            if id(op) in group:
                clusters[group[id(op)]].append(tkey)
        for i in op.inputs:
            if i._op is not None:
                src = op_key(i._op) if compact or op_key(i._op).startswith("L") else f"r{id(i._op)}"
            elif id(i) in leaves and id(i) not in folded:
                src = f"t{id(i)}"
            else:
                continue
            if src != key:
                edges.add((src, key))
    for k, t in enumerate(outputs):
        okey = f"out{k}"
        node_part[okey] = part.get(id(t._op), "forward") if t._op is not None else "forward"
        label = label_of.get(id(t)) or t.name or ("output" if len(outputs) == 1 else f"output {k}")
        nodes[okey] = (f"{label}\n{_describe(t)}", dict(shape="ellipse", peripheries="2", style="filled",
                                                        fillcolor=COLORS["output"], fontsize="10"))
        if t._op is not None:
            src = op_key(t._op) if compact or op_key(t._op).startswith("L") else f"r{id(t._op)}"
            edges.add((src, okey))
        else:
            edges.add((f"t{id(t)}", okey))

    if len(nodes) > max_nodes:
        hint = ("pass collapse=True (one node per layer)" if layers and not collapse else
                "pass layers=[(name, layer_output), ...] and collapse=True" if not layers else "draw fewer outputs")
        raise ValueError(f"draw: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes} can show "
                         f"readably; {hint}, or raise max_nodes")

    lines = ["digraph minigrad {", f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, nodesep=0.15, '
             f'ranksep=0.3, labelloc=b, label={_quote(_legend(title, set(part.values())))}];',
             '  node [fontname="Helvetica", margin="0.05,0.02", height=0.3];',
             '  edge [arrowsize=0.6, color="#666666"];']
    in_cluster = {key for keys in clusters.values() for key in keys}
    for k, keys in sorted(clusters.items()):
        lines.append(f"  subgraph cluster_{k} {{ label={_quote(layers[k][0])}; style=dashed; color=\"#999999\";")
        lines += [f"    {key} [label={_quote(nodes[key][0])}, {_attrs(nodes[key][1])}];" for key in keys]
        lines.append("  }")
    for key, (label, attrs) in nodes.items():
        if key not in in_cluster:
            lines.append(f"  {key} [label={_quote(label)}, {_attrs(attrs)}];")
    lines += [_edge(a, b, node_part, ladder and fwd is not None) for a, b in sorted(edges)]
    lines.append("}")
    dot = "\n".join(lines) + "\n"
    if filename is not None:
        render(dot, filename, format)
    return dot


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
