"""OneHot: ``values[1]`` where the index (negative counts from the end) equals
the position along the new axis, ``values[0]`` elsewhere (also for indices out
of range)."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError
from . import OutSpec, Op, onnx_op, register
from ._util import norm_axis, prod


@register
class OneHot(Op):
    name = "OneHot"

    def _dims(self, g, n):
        ind = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", -1), ind.rank + 1, "OneHot")
        return a, int(n.attrs["depth"]), prod(ind.shape[:a]), prod(ind.shape[a:])

    def infer(self, g, n):
        ind, vals = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        a, depth, _, _ = self._dims(g, n)
        if vals.size != 2 or depth < 0:
            raise EdgecError("OneHot: values must have 2 elements and depth be >= 0")
        shape = tuple(ind.shape[:a]) + (depth,) + tuple(ind.shape[a:])
        return [OutSpec(shape, vals.dtype)]

    def check(self, g, n):
        if g.tensors[n.inputs[0]].dtype == "bool":
            return "OneHot with bool indices"
        return None

    def reference(self, g, n, xs):
        ind, vals = xs[0], xs[1].reshape(-1)
        a, depth, _, _ = self._dims(g, n)
        i = ind.astype(np.float64)
        i = np.trunc(np.where(i < 0, i + depth, i))
        pos = np.arange(depth).reshape((1,) * a + (depth,) + (1,) * (ind.ndim - a))
        hit = np.expand_dims(i, a) == pos
        return [np.where(hit, vals[1], vals[0]).astype(vals.dtype)]

    def emit(self, k):
        a, depth, outer, inner = self._dims(k.g, k.node)
        it = k.tin(0).dtype
        idx = f"{k.x(0)}[o * {inner} + i]"
        neg = f"if (v < 0) v += {depth};\n" if it not in ("uint8", "uint16", "uint32", "uint64") else ""
        if dtypes.is_float(it):
            get = f"const double fv = (double){idx};\n      int64_t v = fv != fv ? -1 : (int64_t)fv;\n"
        else:
            get = f"int64_t v = (int64_t){idx};\n"
        return (f"  for (int o = 0; o < {outer}; ++o)\n"
                f"    for (int i = 0; i < {inner}; ++i) {{\n"
                f"      {get}      {neg}"
                f"      for (int d = 0; d < {depth}; ++d)\n"
                f"        y0[(o * {depth} + d) * {inner} + i] = {k.x(1)}[d == v ? 1 : 0];\n"
                f"    }}\n")


@onnx_op("OneHot")
def _onnx_onehot(ctx, node):
    depth = float(np.asarray(ctx.const_input(node, 1, "depth")).reshape(-1)[0])
    ctx.add("OneHot", [ctx.inp(node, 0), ctx.inp(node, 2)], [ctx.out(node)],
            {"depth": int(depth), "axis": int(ctx.attr(node, "axis", -1))}, node.name)
