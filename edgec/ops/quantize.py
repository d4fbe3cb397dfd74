"""Quantize (float -> int, or int -> int requantization) and Dequantize.

IR ``Quantize``: output quantization from the output tensor; attribute
``rounding`` is ``away`` (TFLite: ``round(x / scale)`` half away from zero, in
float32) or ``even`` (ONNX QuantizeLinear: half to even).  int8 -> int8 follows
TFLite Micro's requantize (``MultiplyByQuantizedMultiplier`` of ``s_in/s_out``).
IR ``Dequantize``: ``(q - zp) * scale`` in float32.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes, qmath
from ..ir.cgen import c_float
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import QuantParams
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import norm_axis, quant_of

QTYPES = ("int8", "uint8", "int16")


def _axis_shape(q: QuantParams, rank: int):
    shape = [1] * rank
    if q.axis is not None:
        shape[q.axis] = -1
    return shape


@register
class Quantize(Op):
    name = "Quantize"
    transpose_commutes = "unary"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        dt = n.attrs.get("dtype", "int8")
        return [OutSpec(x.shape, dt, n.attrs.get("quant"))]

    def check(self, g, n):
        x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
        if y.quant is None or y.dtype not in QTYPES:
            return f"Quantize to {y.dtype}"
        if y.quant.per_axis and not x.is_const:
            return "Quantize per axis"
        if x.dtype in QTYPES:
            if x.quant is None or x.quant.per_axis:
                return "Quantize (requantize) without per-tensor input quantization"
        elif x.dtype != "float32":
            return f"Quantize from {x.dtype}"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        y = g.tensors[n.outputs[0]]
        q = y.quant
        lo, hi = dtypes.int_range(y.dtype)
        if x.dtype.kind == "f":
            scale = q.scale.reshape(_axis_shape(q, x.ndim)).astype(np.float32)
            zp = q.zero_point.reshape(_axis_shape(q, x.ndim))
            with np.errstate(all="ignore"):
                v = x.astype(np.float32) / scale
            r = np.rint(v) if n.attrs.get("rounding") == "even" else qmath.np_round_half_away(v)
            r = np.nan_to_num(r, nan=0.0, posinf=2.0 ** 40, neginf=-(2.0 ** 40))
            return [np.clip(r.astype(np.float64) + zp, lo, hi).astype(dtypes.np_dtype(y.dtype))]
        si, zi = quant_of(g, n.inputs[0]).scalar()
        so, zo = q.scalar()
        m, s = qmath.quantize_multiplier(float(si) / float(so))
        acc = qmath.mul_by_quantized_multiplier(x.astype(np.int64) - zi, m, s) + zo
        return [np.clip(acc, lo, hi).astype(dtypes.np_dtype(y.dtype))]

    def emit(self, k):
        g, n = k.g, k.node
        x, y = k.tin(0), k.tout()
        lo, hi = dtypes.int_range(y.dtype)
        so, zo = y.quant.scalar()
        ct = dtypes.c_type(y.dtype)
        if x.dtype == "float32":
            rnd = "rintf" if n.attrs.get("rounding") == "even" else "roundf"
            body = (f"    float v = {rnd}({k.x(0)}[i] / {c_float(so)});\n"
                    f"    int32_t q;\n"
                    f"    if (v != v) v = 0.0f;\n"
                    f"    v = v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v);\n"
                    f"    q = (int32_t)v + {zo};\n")
        else:
            si, zi = quant_of(g, n.inputs[0]).scalar()
            m, s = qmath.quantize_multiplier(float(si) / float(so))
            body = f"    int32_t q = edgec_mbqm((int32_t){k.x(0)}[i] - {zi}, {m}, {s}) + {zo};\n"
        return (f"  for (int i = 0; i < {y.size}; ++i) {{\n{body}"
                f"    q = q < {lo} ? {lo} : q;\n    q = q > {hi} ? {hi} : q;\n"
                f"    y0[i] = ({ct})q;\n  }}\n")


@register
class Dequantize(Op):
    name = "Dequantize"
    transpose_commutes = "unary"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        return [OutSpec(x.shape, n.attrs.get("dtype", "float32"))]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.quant is None:
            return f"Dequantize of {x.dtype} without quantization"
        if x.quant.per_axis and not x.is_const:
            return "Dequantize per axis"
        if g.tensors[n.outputs[0]].dtype != "float32":
            return f"Dequantize to {g.tensors[n.outputs[0]].dtype}"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        q = quant_of(g, n.inputs[0])
        scale = q.scale.reshape(_axis_shape(q, x.ndim)).astype(np.float32)
        zp = q.zero_point.reshape(_axis_shape(q, x.ndim))
        return [((x.astype(np.int64) - zp).astype(np.float32) * scale).astype(np.float32)]

    def emit(self, k):
        x, y = k.tin(0), k.tout()
        s, z = x.quant.scalar()
        return (f"  for (int i = 0; i < {y.size}; ++i) {{\n"
                f"    y0[i] = (float)((int32_t){k.x(0)}[i] - {z}) * {c_float(s)};\n  }}\n")


# --- importers ------------------------------------------------------------------

@tflite_op("QUANTIZE")
def _tfl_quantize(ctx, op):
    x = ctx.inputs(op)[0]
    y = ctx.outputs(op)[0]
    ctx.add("Quantize", [x], [y], {"dtype": ctx.t(y).dtype, "rounding": "away"})


@tflite_op("DEQUANTIZE")
def _tfl_dequantize(ctx, op):
    ctx.add("Dequantize", ctx.inputs(op)[:1], ctx.outputs(op), {})


def _onnx_qparams(ctx, node, scale_i, zp_i, x_rank, default_dtype):
    scale = ctx.const_input(node, scale_i, "scale")
    zp = ctx.const_input(node, zp_i, "zero point")
    dt = dtypes.from_numpy(zp.dtype) if zp is not None else default_dtype
    if zp is None:
        zp = np.zeros(scale.shape, np.int64)
    axis = None
    if scale.size > 1:
        axis = norm_axis(ctx.attr(node, "axis", 1), x_rank, node.op_type)
    if ctx.has_attr(node, "block_size") and ctx.attr(node, "block_size"):
        raise UnsupportedError([f"{node.op_type} with blocked quantization"])
    return QuantParams(scale.reshape(-1), zp.reshape(-1).astype(np.int64), axis), dt


@onnx_op("QuantizeLinear")
def _onnx_quantize(ctx, node):
    x = ctx.inp(node, 0)
    out_dt = None
    if ctx.has_attr(node, "output_dtype") and ctx.attr(node, "output_dtype"):
        from onnx import helper
        out_dt = dtypes.from_numpy(helper.tensor_dtype_to_np_dtype(int(ctx.attr(node, "output_dtype"))))
    q, dt = _onnx_qparams(ctx, node, 1, 2, ctx.t(x).rank, out_dt or "uint8")
    if dt not in QTYPES + ("uint16",):
        raise UnsupportedError([f"QuantizeLinear to {dt}"])
    if ctx.t(x).dtype != "float32":
        raise UnsupportedError([f"QuantizeLinear from {ctx.t(x).dtype}"])
    ctx.add("Quantize", [x], [ctx.out(node)], {"dtype": dt, "rounding": "even", "quant": q},
            node.name)


@onnx_op("DequantizeLinear")
def _onnx_dequantize(ctx, node):
    x = ctx.inp(node, 0)
    xt = ctx.t(x)
    q, _ = _onnx_qparams(ctx, node, 1, 2, xt.rank, xt.dtype)
    if xt.dtype == "int32" and np.any(q.zero_point):
        raise EdgecError("DequantizeLinear of int32 with a non-zero zero point")
    if xt.quant is None or xt.quant != q:
        # Attach the parameters to a view of the input carrying them.
        if xt.is_const:
            v = ctx.g.add_const(xt.data, x + "_q", quant=q)
        else:
            v = ctx.tmp(x + "_q")
            ctx.g.add_tensor(v, xt.shape, xt.dtype, quant=q)
            ctx.add("Reshape", [x], [v], {"shape": list(xt.shape)})
        x = v
    ctx.add("Dequantize", [x], [ctx.out(node)], {}, node.name)
