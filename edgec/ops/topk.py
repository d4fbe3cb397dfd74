"""TopK: the k largest (or smallest) values along an axis and their indices,
sorted, ties broken by the lower index (as the ONNX reference).  The C selects
one rank at a time (O(k*n) per slice, no scratch memory)."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError
from . import OutSpec, Op, onnx_op, register
from ._util import norm_axis, prod


@register
class TopK(Op):
    name = "TopK"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", -1), x.rank, "TopK")
        k = int(n.attrs["k"])
        if not 0 <= k <= x.shape[a]:
            raise EdgecError(f"TopK: k={k} for a dimension of {x.shape[a]}")
        return a, prod(x.shape[:a]), x.shape[a], prod(x.shape[a + 1:]), k

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        a, _, _, _, k = self._dims(g, n)
        shape = tuple(k if i == a else d for i, d in enumerate(x.shape))
        return [OutSpec(shape, x.dtype, x.quant), OutSpec(shape, "int64")]

    def check(self, g, n):
        if g.tensors[n.inputs[0]].dtype == "bool":
            return "TopK[bool]"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        a, _, d, _, k = self._dims(g, n)
        pos = np.indices(x.shape)[a]
        if n.attrs.get("largest", 1):
            order = np.lexsort((pos, -x.astype(np.float64) if x.dtype.kind == "f" else
                                np.negative(x.astype(np.float64))), axis=a)
        else:
            order = np.lexsort((pos, x), axis=a)
        idx = np.take(order, np.arange(k), axis=a)
        return [np.take_along_axis(x, idx, axis=a), idx.astype(np.int64)]

    def emit(self, k):
        a, outer, d, inner, kk = self._dims(k.g, k.node)
        ct = dtypes.c_type(k.tin(0).dtype)
        better = ">" if k.node.attrs.get("largest", 1) else "<"
        worse = "<" if better == ">" else ">"
        y1 = "y1" if len(k.node.outputs) > 1 and k.node.outputs[1] else None
        return (f"  for (int o = 0; o < {outer}; ++o) {{\n"
                f"    for (int i = 0; i < {inner}; ++i) {{\n"
                f"      const {ct}* xp = {k.x(0)} + o * {d * inner} + i;\n"
                f"      {ct} pv = 0;\n      int pi = -1;\n"
                f"      for (int r = 0; r < {kk}; ++r) {{\n"
                f"        int bi = -1;\n        {ct} bv = 0;\n"
                f"        for (int j = 0; j < {d}; ++j) {{\n"
                f"          const {ct} v = xp[j * {inner}];\n"
                f"          if (pi >= 0 && !(v {worse} pv || (v == pv && j > pi))) continue;\n"
                f"          if (bi < 0 || v {better} bv) {{ bi = j; bv = v; }}\n"
                f"        }}\n"
                f"        if (bi < 0) bi = 0;\n"
                f"        pv = xp[bi * {inner}];\n        pi = bi;\n"
                f"        y0[(o * {kk} + r) * {inner} + i] = pv;\n"
                + (f"        {y1}[(o * {kk} + r) * {inner} + i] = bi;\n" if y1 else "")
                + "      }\n    }\n  }\n")


@onnx_op("TopK")
def _onnx_topk(ctx, node):
    if ctx.opset >= 10:
        kk = int(np.asarray(ctx.const_input(node, 1, "k")).reshape(-1)[0])
    else:
        kk = int(ctx.attr(node, "k"))
    ctx.add("TopK", [ctx.inp(node, 0)], [ctx.out(node, 0), ctx.out(node, 1)],
            {"k": kk, "axis": int(ctx.attr(node, "axis", -1)),
             "largest": int(ctx.attr(node, "largest", 1))}, node.name)
