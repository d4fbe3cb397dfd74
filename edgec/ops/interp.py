"""edgec's own reference interpreter: runs a Graph node by node with each op's
numpy ``reference`` (float ops as math, int8 ops bit-exact with TFLite Micro).

Used for calibration (float graphs), as the reference of transformed graphs
(quantized, binarized, pruned) and when debugging a kernel."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from .. import ops
from ..ir.errors import EdgecError
from ..ir.graph import Graph


def run(g: Graph, inputs, keep_all: bool = False) -> dict[str, np.ndarray]:
    """``inputs``: list in graph-input order, or {name: array}.  Returns the
    outputs by name (every tensor with ``keep_all``)."""
    if not isinstance(inputs, dict):
        if len(inputs) != len(g.inputs):
            raise EdgecError(f"the graph has {len(g.inputs)} inputs, got {len(inputs)} arrays")
        inputs = dict(zip(g.inputs, inputs))
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        t = g.tensors[name]
        a = np.asarray(inputs[name])
        if a.size != t.size:
            raise EdgecError(f"input {name!r}: got shape {list(a.shape)}, expected {list(t.shape)}")
        env[name] = a.reshape(t.shape).astype(dtypes.np_dtype(t.dtype), copy=False)
    for name, t in g.tensors.items():
        if t.is_const:
            env[name] = t.data
    for n in g.nodes:
        xs = [env[i] if i else None for i in n.inputs]
        ys = ops.get(n.op).reference(g, n, xs)
        for o, y in zip(n.outputs, ys):
            if o:
                t = g.tensors[o]
                env[o] = np.asarray(y).astype(dtypes.np_dtype(t.dtype), copy=False).reshape(t.shape)
    if keep_all:
        return env
    return {o: env[o] for o in g.outputs}
