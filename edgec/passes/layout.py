"""NCHW -> NHWC: rewrite ONNX-style convolutions and pooling into TFLite's layout.

edgec's kernels take either layout through strides, so compiling never needs this;
writing a TFLite file does (TFLite knows only NHWC).  Every NCHW ``Conv``,
``MaxPool`` and ``AveragePool`` becomes the NHWC op between two Transposes (weights
re-laid out OIHW -> OHWI at compile time), then the transposes are simplified away:

* inverse pairs cancel, consecutive ones compose;
* they move through layout-agnostic ops (elementwise Add/Sub/Mul of two equally
  transposed operands, unary activations, Concat with its axis permuted), so a chain
  of convolutions, residual adds and activations runs NHWC end to end;
* a transpose that only moves dimensions of size 1 is a Reshape (no data movement).

What is left is a transpose at the graph's edges where the data really moves (e.g.
before a Flatten of a C x H x W feature map: the flattening order is the model's).
The model's inputs and outputs keep their shapes.  The pass is exact (pure data
movement) and runs on float graphs before quantization.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..ir.graph import Graph, Node

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]


def needs_nhwc(g: Graph) -> bool:
    return any(ops.get(n.op).layout_sensitive and n.attrs.get("layout") == "NCHW" for n in g.nodes)


def _perm_shape(shape, perm):
    return tuple(shape[p] for p in perm)


def to_nhwc(g: Graph) -> Graph:
    g = g.copy()
    g.fold_constants = False
    new: list[Node] = []
    converted = 0
    for n in g.nodes:
        x = g.tensors[n.inputs[0]] if n.inputs else None
        if not ops.get(n.op).layout_sensitive or n.attrs.get("layout") != "NCHW" or x is None or x.rank != 4 \
                or x.is_const:
            new.append(n)
            continue
        converted += 1
        y = g.tensors[n.outputs[0]]
        xn = g.unique_name(x.name + "_nhwc")
        g.add_tensor(xn, _perm_shape(x.shape, TO_NHWC), x.dtype, quant=x.quant)
        new.append(Node("Transpose", [x.name], [xn], {"perm": list(TO_NHWC)}, n.name + "_to_nhwc"))
        ins = [xn] + list(n.inputs[1:])
        if n.op == "Conv":
            w = g.tensors[ins[1]]
            ins[1] = g.add_const(np.transpose(w.data, TO_NHWC), w.name + "_ohwi", quant=w.quant)
            g.tensors[ins[1]].origin = w.origin
        yn = g.unique_name(y.name + "_nhwc")
        g.add_tensor(yn, _perm_shape(y.shape, TO_NHWC), y.dtype, quant=y.quant)
        new.append(Node(n.op, ins, [yn], dict(n.attrs, layout="NHWC"), n.name))
        new.append(Node("Transpose", [yn], [y.name], {"perm": list(TO_NCHW)}, n.name + "_to_nchw"))
    g.nodes = new
    while _simplify(g):
        pass
    g.remove_dead()
    g.topo_sort()
    g.validate()
    left = sum(1 for n in g.nodes if n.op == "Transpose")
    g.meta.transforms = [*g.meta.transforms,
        f"to_nhwc ({converted} NCHW conv/pool layers to NHWC, {left} transposes left)"]
    return g


def _simplify(g: Graph) -> bool:
    prod = g.producers()

    def tp(name):
        p = prod.get(name)
        return p if p is not None and p.op == "Transpose" else None

    for n in list(g.nodes):
        if n.op == "Transpose":
            perm = [int(p) for p in n.attrs["perm"]]
            a = tp(n.inputs[0])
            if a is not None:  # compose
                comp = [int(a.attrs["perm"][p]) for p in perm]
                src = a.inputs[0]
                if comp == list(range(len(comp))) and n.outputs[0] not in g.outputs:
                    g.replace_uses(n.outputs[0], src)
                    g.nodes.remove(n)
                else:
                    n.inputs = [src]
                    n.attrs = {"perm": comp}
                return True
            x = g.tensors[n.inputs[0]]
            moved = [p for p in perm if x.shape[p] != 1]
            if moved == sorted(moved):  # only size-1 dimensions move: a reshape
                n.op = "Reshape"
                n.attrs = {"shape": list(g.tensors[n.outputs[0]].shape)}
                return True
            continue
        commutes = ops.get(n.op).transpose_commutes
        if commutes is not None and len(n.outputs) == 1:
            acts = [i for i in n.inputs if i and not g.tensors[i].is_const]
            consts = [i for i in n.inputs if i and g.tensors[i].is_const]
            if not acts or any(g.tensors[c].size != 1 for c in consts):
                continue
            ts = [tp(i) for i in acts]
            if any(t is None for t in ts):
                continue
            perm = [int(p) for p in ts[0].attrs["perm"]]
            if any([int(p) for p in t.attrs["perm"]] != perm for t in ts):
                continue
            if commutes == "binary" and len({g.tensors[i].shape for i in acts}) != 1:
                continue
            # n(T(a), T(b), ...) -> T(n(a, b, ...))
            y = g.tensors[n.outputs[0]]
            inv = [perm.index(i) for i in range(len(perm))]
            pre = g.unique_name(y.name + "_pre")
            g.add_tensor(pre, _perm_shape(y.shape, inv), y.dtype, quant=y.quant)
            src = {i: tp(i).inputs[0] for i in acts}
            n.inputs = [src.get(i, i) for i in n.inputs]
            if commutes == "concat":
                axis = int(n.attrs["axis"]) % len(perm)
                n.attrs = dict(n.attrs, axis=perm[axis])
            n.outputs = [pre]
            idx = g.nodes.index(n)
            g.nodes.insert(idx + 1, Node("Transpose", [pre], [y.name], {"perm": perm}, n.name + "_t"))
            return True
    return False
