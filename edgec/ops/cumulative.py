"""Running sums and products along one axis (CumSum, CumProd) and the triangular
masks (Trilu).  Any numeric element type; integers wrap around like numpy."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError
from . import OutSpec, Op, onnx_op, register
from ._util import norm_axis, prod


class Cumulative(Op):
    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs["axis"], x.rank, n.op)
        return prod(x.shape[:a]), x.shape[a], prod(x.shape[a + 1:])

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype == "bool":
            raise EdgecError(f"{n.op} of a bool tensor")
        self._dims(g, n)
        return [OutSpec(x.shape, x.dtype)]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.quant is not None:
            return f"{n.op}[quantized {x.dtype}]"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        a = norm_axis(n.attrs["axis"], x.ndim, n.op)
        rev = n.attrs.get("reverse", 0)
        excl = n.attrs.get("exclusive", 0)
        v = np.flip(x, a) if rev else x
        wide = np.float64 if x.dtype.kind == "f" else (np.uint64 if x.dtype.kind == "u" else np.int64)
        with np.errstate(over="ignore"):
            fn = np.cumsum if self.name == "CumSum" else np.cumprod
            y = fn(v.astype(wide), axis=a)
            if excl:
                ident = np.zeros_like if self.name == "CumSum" else np.ones_like
                first = ident(np.take(y, [0], axis=a))
                y = np.concatenate([first, np.delete(y, -1, axis=a)], axis=a)
        y = y.astype(x.dtype)
        return [np.ascontiguousarray(np.flip(y, a) if rev else y)]

    def emit(self, k):
        outer, d, inner = self._dims(k.g, k.node)
        dt = k.tin(0).dtype
        ct = dtypes.c_type(dt)
        acc_t = ct if dtypes.is_float(dt) else "uint64_t"
        rev = k.node.attrs.get("reverse", 0)
        excl = k.node.attrs.get("exclusive", 0)
        op = "+=" if self.name == "CumSum" else "*="
        init = "0" if self.name == "CumSum" else "1"
        j = f"({d - 1} - j)" if rev else "j"
        v = f"({acc_t}){k.x(0)}[base + {j} * {inner}]"
        if excl:
            step = f"y0[base + {j} * {inner}] = ({ct})acc;\n        acc {op} {v};"
        else:
            step = f"acc {op} {v};\n        y0[base + {j} * {inner}] = ({ct})acc;"
        return (f"  for (int o = 0; o < {outer}; ++o) {{\n"
                f"    for (int i = 0; i < {inner}; ++i) {{\n"
                f"      const int base = o * {d * inner} + i;\n"
                f"      {acc_t} acc = {init};\n"
                f"      for (int j = 0; j < {d}; ++j) {{\n"
                f"        {step}\n"
                f"      }}\n    }}\n  }}\n")


@register
class CumSum(Cumulative):
    name = "CumSum"


@register
class CumProd(Cumulative):
    name = "CumProd"


def _onnx_cum(op):
    def imp(ctx, node):
        axis = ctx.const_input(node, 1, "axis")
        if axis is None or np.asarray(axis).size != 1:
            raise EdgecError(f"{op}: the axis must be a scalar")
        ctx.add(op, [ctx.inp(node, 0)], [ctx.out(node)],
                {"axis": int(np.asarray(axis).reshape(-1)[0]),
                 "exclusive": int(ctx.attr(node, "exclusive", 0)),
                 "reverse": int(ctx.attr(node, "reverse", 0))}, node.name)
    return imp


onnx_op("CumSum")(_onnx_cum("CumSum"))
onnx_op("CumProd")(_onnx_cum("CumProd"))


@register
class Trilu(Op):
    """Keep the upper (``upper=1``: column - row >= k) or lower (column - row <= k)
    triangle of the last two dimensions, zero elsewhere."""
    name = "Trilu"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.rank < 2:
            raise EdgecError("Trilu needs a tensor of rank 2 or more")
        return [OutSpec(x.shape, x.dtype, x.quant)]

    def check(self, g, n):
        if g.tensors[n.inputs[0]].quant is not None:
            return "Trilu[quantized]"
        return None

    def reference(self, g, n, xs):
        k = int(n.attrs.get("k", 0))
        fn = np.triu if n.attrs.get("upper", 1) else np.tril
        return [fn(xs[0], k)]

    def emit(self, k):
        x = k.tin(0)
        R, C = x.shape[-2], x.shape[-1]
        kk = max(-(R + C), min(R + C, int(k.node.attrs.get("k", 0))))
        keep = f"c - r >= {kk}" if k.node.attrs.get("upper", 1) else f"c - r <= {kk}"
        return (f"  for (int b = 0; b < {prod(x.shape[:-2])}; ++b)\n"
                f"    for (int r = 0; r < {R}; ++r)\n"
                f"      for (int c = 0; c < {C}; ++c) {{\n"
                f"        const int i = (b * {R} + r) * {C} + c;\n"
                f"        y0[i] = ({keep}) ? {k.x(0)}[i] : 0;\n      }}\n")


@onnx_op("Trilu")
def _onnx_trilu(ctx, node):
    kk = ctx.const_input(node, 1, "k") if ctx.inp(node, 1) else None
    kk = 0 if kk is None else int(np.asarray(kk).reshape(-1)[0])
    ctx.add("Trilu", [ctx.inp(node, 0)], [ctx.out(node)],
            {"k": kk, "upper": int(ctx.attr(node, "upper", 1))}, node.name)
