"""Fusions on float graphs: BatchNormalization into the preceding convolution,
a constant bias Add into Conv/FullyConnected, Relu/Clip into their producer."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..ir.graph import Graph, Node


def _single_consumer(g: Graph, name: str, cons) -> Node | None:
    users = cons.get(name, [])
    if len(users) != 1 or name in g.outputs:
        return None
    return users[0]


def _bypass(g: Graph, node: Node, producer: Node, removed: set | None = None,
            prod: dict | None = None, cons: dict | None = None) -> None:
    """Make ``producer`` write ``node``'s output and drop ``node``.

    With ``removed`` the node is only marked (the caller filters ``g.nodes`` once at
    the end) and the ``prod``/``cons`` maps are updated in place: a pass stays linear
    in the number of nodes instead of rescanning the graph after every fusion."""
    out = node.outputs[0]
    old = producer.outputs[0]
    producer.outputs[0] = out
    g.tensors[out].origin = g.tensors[out].origin if g.tensors[out].origin is not None \
        else g.tensors[old].origin
    if removed is None:
        g.nodes.remove(node)
        return
    removed.add(id(node))
    prod.pop(old, None)
    prod[out] = producer
    cons.pop(old, None)  # its only consumer was ``node``
    for i in node.inputs:
        if i and i != old and i in cons:
            cons[i] = [m for m in cons[i] if m is not node]
    for i in producer.inputs:
        if i and not any(m is producer for m in cons.setdefault(i, [])):
            cons[i].append(producer)


def _drop(g: Graph, removed: set) -> None:
    if removed:
        g.nodes = [n for n in g.nodes if id(n) not in removed]


def fuse_activation(g: Graph) -> bool:
    changed = False
    cons = g.consumers()
    prod = g.producers()
    removed: set = set()
    for n in list(g.nodes):
        if n.op not in ("Relu", "Clip") or id(n) in removed:
            continue
        x = n.inputs[0]
        t = g.tensors[x]
        if t.dtype != "float32" or x not in prod:
            continue
        p = prod[x]
        if not ops.get(p.op).fuses_activation or p.attrs.get("act") is not None or len(p.outputs) != 1:
            continue
        if p.op in ("Add", "Sub", "Mul") and g.tensors[p.inputs[0]].dtype != "float32":
            continue
        if _single_consumer(g, x, cons) is not n:
            continue
        if n.op == "Relu":
            act = [0.0, float("inf")]
        else:
            lo, hi = n.attrs.get("min"), n.attrs.get("max")
            act = [float("-inf") if lo is None else float(lo), float("inf") if hi is None else float(hi)]
        p.attrs["act"] = act
        _bypass(g, n, p, removed, prod, cons)
        changed = True
    _drop(g, removed)
    return changed


def fuse_bias_add(g: Graph) -> bool:
    """Conv(x, w) + const per-channel bias -> Conv(x, w, b)."""
    changed = False
    cons = g.consumers()
    prod = g.producers()
    removed: set = set()
    for n in list(g.nodes):
        if n.op != "Add" or id(n) in removed:
            continue
        a, b = n.inputs
        if g.tensors[a].is_const:
            a, b = b, a
        bt = g.tensors[b]
        if not bt.is_const or bt.dtype != "float32" or a not in prod:
            continue
        p = prod[a]
        if p.op not in ("Conv", "FullyConnected") or p.attrs.get("act") is not None:
            continue
        if _single_consumer(g, a, cons) is not n:
            continue
        y = g.tensors[a]
        if g.tensors[n.outputs[0]].shape != y.shape:
            continue
        if p.op == "Conv":
            C = g.tensors[p.inputs[1]].shape[0]
            axis = 1 if p.attrs["layout"] == "NCHW" else 3
        else:
            C = g.tensors[p.inputs[1]].shape[0]
            axis = y.rank - 1
        # the constant must vary only along the channel axis
        shape = [1] * (y.rank - bt.rank) + list(bt.shape)
        if any(d != 1 for i, d in enumerate(shape) if i != axis):
            continue
        vec = np.broadcast_to(bt.data.reshape(shape), [C if i == axis else 1 for i in range(y.rank)])
        vec = vec.reshape(-1).astype(np.float32)
        if len(p.inputs) > 2 and p.inputs[2]:
            old = g.tensors[p.inputs[2]].data.astype(np.float32)
            vec = old + vec
            p.inputs = p.inputs[:2]
        p.inputs = p.inputs[:2] + [g.add_const(vec, p.inputs[1] + "_bias")]
        _bypass(g, n, p, removed, prod, cons)
        changed = True
    _drop(g, removed)
    return changed


def fold_batchnorm(g: Graph) -> bool:
    """Conv followed by BatchNormalization (inference) -> Conv with scaled weights."""
    changed = False
    cons = g.consumers()
    prod = g.producers()
    removed: set = set()
    for n in list(g.nodes):
        if n.op != "BatchNormalization" or id(n) in removed:
            continue
        x = n.inputs[0]
        if x not in prod or prod[x].op != "Conv" or prod[x].attrs.get("act") is not None:
            continue
        p = prod[x]
        if _single_consumer(g, x, cons) is not n or g.tensors[x].dtype != "float32":
            continue
        if p.attrs["layout"] != n.attrs.get("layout", "NCHW"):
            continue
        vals = [g.tensors[i].data for i in n.inputs[1:5]]
        if any(v is None for v in vals):
            continue
        scale, bias, mean, var = [v.astype(np.float64) for v in vals]
        k = scale / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
        w = g.tensors[p.inputs[1]].data.astype(np.float64)
        w = w * k.reshape(-1, 1, 1, 1)
        b0 = g.tensors[p.inputs[2]].data.astype(np.float64) if len(p.inputs) > 2 and p.inputs[2] \
            else np.zeros_like(k)
        b = (b0 - mean) * k + bias
        p.inputs = [p.inputs[0], g.add_const(w.astype(np.float32), p.inputs[1] + "_bn"),
                    g.add_const(b.astype(np.float32), p.inputs[1] + "_bnbias")]
        _bypass(g, n, p, removed, prod, cons)
        changed = True
    _drop(g, removed)
    return changed
