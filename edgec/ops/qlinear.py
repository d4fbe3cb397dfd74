"""ONNX's integer ("QOperator") operators: MatMulInteger, ConvInteger,
QLinearMatMul, QLinearConv and DynamicQuantizeLinear, with ONNX semantics
(not TFLite's: rounding half to even, multipliers in float).

The importers lower them to integer arithmetic edgec already compiles: the
inputs are widened to int32 and their zero points subtracted, ``MatMul`` or
``ConvNd`` accumulate in int32, and ``Requantize`` scales the accumulator back:
``y = saturate(rint(acc * m + zero_point))`` with ``m = a_scale * b_scale /
y_scale`` computed in float32 and the product in double, as the ONNX reference
does.  Scales and zero points may be constants or computed.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from .where import broadcast_kernel
from ._util import broadcast_shape

QTYPES = ("uint8", "int8", "uint16", "int16")


@register
class Requantize(Op):
    """Inputs ``acc`` (int32), ``m`` (float32 multiplier), ``zp`` (integer zero
    point), broadcasting; attribute ``dtype`` of the result."""
    name = "Requantize"

    def infer(self, g, n):
        acc, m, zp = (g.tensors[i] for i in n.inputs[:3])
        if acc.dtype != "int32" or m.dtype != "float32" or n.attrs["dtype"] not in QTYPES:
            raise UnsupportedError([f"Requantize {acc.dtype} x {m.dtype} -> {n.attrs['dtype']}"])
        shape = broadcast_shape(acc.shape, m.shape, zp.shape, where="Requantize")
        if tuple(shape) != tuple(acc.shape):
            raise EdgecError("Requantize: the multiplier must broadcast to the accumulator")
        return [OutSpec(acc.shape, n.attrs["dtype"])]

    def reference(self, g, n, xs):
        acc, m, zp = xs[:3]
        lo, hi = dtypes.int_range(n.attrs["dtype"])
        r = acc.astype(np.float64) * m.astype(np.float64) + zp.astype(np.float64)
        return [np.clip(np.rint(r), lo, hi).astype(dtypes.np_dtype(n.attrs["dtype"]))]

    def emit(self, k):
        lo, hi = dtypes.int_range(k.node.attrs["dtype"])
        ct = dtypes.c_type(k.node.attrs["dtype"])
        body = (f"double r = rint((double){k.x(0)}[{{i0}}] * (double){k.x(1)}[{{i1}}] + "
                f"(double){k.x(2)}[{{i2}}]);\n"
                f"r = r < {lo} ? {lo} : (r > {hi} ? {hi} : r);\n"
                f"y0[{{io}}] = ({ct})r;")
        return broadcast_kernel([k.tin(i).shape for i in range(3)], k.tout().shape, body)


@register
class DynamicQuantizeLinear(Op):
    """uint8 quantization with the scale and zero point of the tensor's own range
    (ONNX DynamicQuantizeLinear, float32 arithmetic as its reference)."""
    name = "DynamicQuantizeLinear"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype != "float32":
            raise UnsupportedError([f"DynamicQuantizeLinear[{x.dtype}]"])
        if x.size == 0:
            raise UnsupportedError(["DynamicQuantizeLinear of an empty tensor"])
        return [OutSpec(x.shape, "uint8"), OutSpec((), "float32"), OutSpec((), "uint8")]

    def reference(self, g, n, xs):
        x = xs[0].astype(np.float32)
        f = np.float32
        mx, mn = f(max(f(0), x.max())), f(min(f(0), x.min()))
        scale = f(f(1.0) if mx == mn else f(mx - mn)) / f(255)
        zp = f(f(0) - f(mn / scale))
        zpi = np.rint(f(min(f(255), max(f(0), zp))))
        y = np.clip(np.rint(x / scale) + zpi, 0, 255)
        return [y.astype(np.uint8), np.array(scale, np.float32), np.array(zpi, np.uint8)]

    def emit(self, k):
        x = k.tin(0)
        outs = [j < len(k.node.outputs) and bool(k.node.outputs[j]) for j in range(3)]
        lines = ["  float mx = 0.0f;", "  float mn = 0.0f;", "  float scale;", "  float zp;",
                 f"  for (int i = 0; i < {x.size}; ++i) {{",
                 f"    const float v = {k.x(0)}[i];",
                 "    if (v > mx) mx = v;", "    if (v < mn) mn = v;", "  }",
                 "  scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;",
                 "  zp = 0.0f - mn / scale;",
                 "  zp = rintf(zp < 0.0f ? 0.0f : (zp > 255.0f ? 255.0f : zp));"]
        if outs[0]:
            lines += [f"  for (int i = 0; i < {x.size}; ++i) {{",
                      f"    float q = rintf({k.x(0)}[i] / scale) + zp;",
                      "    if (!(q >= 0.0f)) q = 0.0f;",
                      "    if (q > 255.0f) q = 255.0f;",
                      "    y0[i] = (uint8_t)q;", "  }"]
        if outs[1]:
            lines.append("  y1[0] = scale;")
        if outs[2]:
            lines.append("  y2[0] = (uint8_t)zp;")
        return "\n".join(lines) + "\n"


# --- importers ---------------------------------------------------------------------

def _int32(ctx, name: str, zp: str, axis_shape=None) -> str:
    """int32(name) - int32(zp); ``axis_shape`` reshapes a per-axis zero point."""
    t = ctx.t(name)
    if t.dtype not in QTYPES + ("int32",):
        raise UnsupportedError([f"integer operator on {t.dtype}"])
    w = ctx.tmp(name + "_i32")
    ctx.add("Cast", [name], [w], {"to": "int32"})
    if not zp:
        return w
    z = ctx.tmp(zp + "_i32")
    ctx.add("Cast", [zp], [z], {"to": "int32"})
    if axis_shape is not None and ctx.t(z).size > 1:
        z2 = ctx.tmp(zp + "_axis")
        ctx.add("Reshape", [z], [z2], {"shape": axis_shape})
        z = z2
    d = ctx.tmp(name + "_shifted")
    ctx.add("Sub", [w, z], [d])
    return d


def _matmul_int(ctx, node, a, b, azp, bzp, out) -> None:
    # a's zero point is per row (axis -2 of A), b's per column (last axis of B)
    ash = [ctx.t(azp).size, 1] if azp and ctx.t(azp).size > 1 else None
    A = _int32(ctx, a, azp, ash)
    B = _int32(ctx, b, bzp, None)
    ctx.add("MatMul", [A, B], [out], {}, node.name)


@onnx_op("MatMulInteger")
def _onnx_matmul_integer(ctx, node):
    _matmul_int(ctx, node, ctx.inp(node, 0), ctx.inp(node, 1), ctx.inp(node, 2), ctx.inp(node, 3),
                ctx.out(node))


def _conv_int(ctx, node, x, w, xzp, wzp, bias, out) -> None:
    from .conv_nd import onnx_attrs
    xt, wt = ctx.t(x), ctx.t(w)
    X = _int32(ctx, x, xzp, None)
    W = _int32(ctx, w, wzp, [wt.shape[0]] + [1] * (wt.rank - 1))
    ctx.add("ConvNd", [X, W, bias] if bias else [X, W], [out], onnx_attrs(ctx, node, xt, wt), node.name)


@onnx_op("ConvInteger")
def _onnx_conv_integer(ctx, node):
    _conv_int(ctx, node, ctx.inp(node, 0), ctx.inp(node, 1), ctx.inp(node, 2), ctx.inp(node, 3), "",
              ctx.out(node))


def _multiplier(ctx, sa: str, sb: str, sy: str, shape=None) -> str:
    """float32 sa * sb / sy (folds when the scales are constants)."""
    for s in (sa, sb, sy):
        if ctx.t(s).dtype != "float32":
            raise UnsupportedError([f"quantization scale of type {ctx.t(s).dtype}"])
    p = ctx.tmp("qscale_ab")
    ctx.add("Mul", [sa, sb], [p])
    m = ctx.tmp("qscale_m")
    ctx.add("Div", [p, sy], [m])
    if shape is not None and ctx.t(m).size > 1:
        m2 = ctx.tmp("qscale_axis")
        ctx.add("Reshape", [m], [m2], {"shape": shape})
        m = m2
    return m


def _out_dtype(ctx, yzp: str, fallback: str) -> str:
    return ctx.t(yzp).dtype if yzp else fallback


@onnx_op("QLinearMatMul")
def _onnx_qlinear_matmul(ctx, node):
    a, sa, azp, b, sb, bzp, sy, yzp = (ctx.inp(node, i) for i in range(8))
    acc = ctx.tmp("qmm_acc")
    _matmul_int(ctx, node, a, b, azp, bzp, acc)
    m = _multiplier(ctx, sa, sb, sy)
    dt = _out_dtype(ctx, yzp, ctx.t(a).dtype)
    z = yzp or ctx.g.add_const(np.zeros((), dtypes.np_dtype(dt)), "yzp")
    ctx.add("Requantize", [acc, m, z], [ctx.out(node)], {"dtype": dt}, node.name)


@onnx_op("QLinearConv")
def _onnx_qlinear_conv(ctx, node):
    x, sx, xzp, w, sw, wzp, sy, yzp = (ctx.inp(node, i) for i in range(8))
    bias = ctx.inp(node, 8)
    acc = ctx.tmp("qconv_acc")
    _conv_int(ctx, node, x, w, xzp, wzp, bias, acc)
    wt = ctx.t(w)
    m = _multiplier(ctx, sx, sw, sy, [1, wt.shape[0]] + [1] * (wt.rank - 2))
    dt = _out_dtype(ctx, yzp, ctx.t(x).dtype)
    z = yzp or ctx.g.add_const(np.zeros((), dtypes.np_dtype(dt)), "yzp")
    ctx.add("Requantize", [acc, m, z], [ctx.out(node)], {"dtype": dt}, node.name)


@onnx_op("DynamicQuantizeLinear")
def _onnx_dql(ctx, node):
    ctx.add("DynamicQuantizeLinear", [ctx.inp(node, 0)], [ctx.out(node, j) for j in range(3)], {},
            node.name)
