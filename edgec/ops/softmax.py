"""Softmax, LogSoftmax and Hardmax along one axis.

int8 Softmax follows TFLite Micro bit for bit: the input difference to the row
maximum is rescaled by a multiplier of ``beta * input_scale``, exponentiated
with gemmlowp's fixed-point ``exp_on_negative_values`` (5 integer bits), summed
with 12 integer bits, inverted with ``one_over_one_plus_x_for_x_in_0_1`` and
written with zero point -128 and scale 1/256.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import norm_axis, prod, quant_of

SCALED_DIFF_INTEGER_BITS = 5
ACCUM_INTEGER_BITS = 12


def softmax_q_params(beta: float, input_scale: float):
    real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    mult, left_shift = qmath.quantize_multiplier_greater_than_one(real)
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) \
        / (1 << left_shift)
    diff_min = -int(np.floor(radius))
    return mult, left_shift, diff_min


def softmax_int8_rows(x: np.ndarray, beta: float, input_scale: float) -> np.ndarray:
    """TFLite reference_ops::Softmax (int8 in, int8 out), row-wise on the last axis."""
    mult, left_shift, diff_min = softmax_q_params(beta, input_scale)
    x = x.astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    ok = diff >= diff_min
    rescaled = qmath.srdhm(qmath.wrap32(diff << left_shift), mult)
    e = qmath.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    contrib = np.where(ok, qmath.rounding_divide_by_pot(e, ACCUM_INTEGER_BITS), 0)
    sums = qmath.wrap32(contrib.sum(axis=-1, keepdims=True))
    out = np.empty_like(x)
    flat_s = sums.reshape(-1)
    flat_e = e.reshape(-1, x.shape[-1])
    flat_ok = ok.reshape(-1, x.shape[-1])
    flat_out = out.reshape(-1, x.shape[-1])
    for r in range(flat_s.size):
        s = int(flat_s[r])
        headroom = qmath.count_leading_zeros32(s)
        bits_over = ACCUM_INTEGER_BITS - headroom
        shifted = ((s << headroom) & 0xFFFFFFFF) - (1 << 31)
        scale = int(qmath.one_over_one_plus_x_for_x_in_0_1(np.array(shifted)))
        unsat = qmath.rounding_divide_by_pot(qmath.srdhm(scale, flat_e[r]), bits_over + 31 - 8)
        flat_out[r] = np.where(flat_ok[r], np.clip(unsat - 128, -128, 127), -128)
    return out.astype(np.int8)


class SoftmaxFamily(Op):
    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        axis = norm_axis(n.attrs.get("axis", -1), x.rank, n.op)
        return prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis + 1:])

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        self._dims(g, n)
        beta = n.attrs.get("beta", 1.0)
        if not (isinstance(beta, (int, float, np.floating)) and math.isfinite(beta) and beta > 0):
            # the int8 kernel's multiplier is beta * input scale; a float softmax with a
            # NaN, infinite or non-positive beta computes nothing meaningful either
            raise EdgecError(f"{self.name} beta {beta!r} (must be positive and finite)")
        return [OutSpec(x.shape, x.dtype)]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype == "int8" and self.name == "Softmax":
            y = g.tensors[n.outputs[0]]
            if x.quant is None or y.quant is None or y.dtype != "int8":
                return "Softmax[int8] without quantization"
            _, zo = y.quant.scalar()
            if zo != -128 or abs(float(y.quant.scale[0]) - 1.0 / 256) > 1e-3 / 256:
                return "Softmax[int8] with output quantization other than 1/256, -128"
            outer, d, inner = self._dims(g, n)
            if inner != 1:
                return "Softmax[int8] along an inner axis"
            return None
        if x.dtype not in ("float32", "float64"):
            return f"{self.name}[{x.dtype}]"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        axis = norm_axis(n.attrs.get("axis", -1), x.ndim, n.op)
        beta = float(n.attrs.get("beta", 1.0))
        if x.dtype == np.int8:
            xq = np.moveaxis(x, axis, -1)
            s, _ = quant_of(g, n.inputs[0]).scalar()
            y = softmax_int8_rows(xq, beta, float(s))
            return [np.moveaxis(y, -1, axis)]
        xd = x.astype(np.float64)
        if self.name == "Hardmax":
            idx = np.argmax(xd, axis=axis)
            y = np.zeros_like(xd)
            np.put_along_axis(y, np.expand_dims(idx, axis), 1.0, axis)
            return [y.astype(x.dtype)]
        z = (xd - xd.max(axis=axis, keepdims=True)) * beta
        if self.name == "LogSoftmax":
            y = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
        else:
            e = np.exp(z)
            y = e / e.sum(axis=axis, keepdims=True)
        return [y.astype(x.dtype)]

    def emit(self, k):
        g, n = k.g, k.node
        outer, d, inner = self._dims(g, n)
        x = k.tin(0)
        ctx = dict(outer=outer, d=d, inner=inner, mode=self.name,
                   beta=float(n.attrs.get("beta", 1.0)))
        if x.dtype == "int8":
            s, _ = quant_of(g, n.inputs[0]).scalar()
            mult, left_shift, diff_min = softmax_q_params(ctx["beta"], float(s))
            k.need("softmax_q")
            return k.render("softmax_int8.c.j2", mult=mult, left_shift=left_shift,
                            diff_min=diff_min, **ctx)
        ctype = "float" if x.dtype == "float32" else "double"
        return k.render("softmax.c.j2", ctype=ctype, f="f" if ctype == "float" else "", **ctx)


@register
class Softmax(SoftmaxFamily):
    name = "Softmax"
    quantize = "compute"


@register
class LogSoftmax(SoftmaxFamily):
    name = "LogSoftmax"


@register
class Hardmax(SoftmaxFamily):
    name = "Hardmax"


def _onnx(op):
    def imp(ctx, node):
        x = ctx.inp(node, 0)
        xt = ctx.t(x)
        out = ctx.out(node)
        if ctx.opset >= 13:
            ctx.add(op, [x], [out], {"axis": int(ctx.attr(node, "axis", -1))}, node.name)
            return
        # opsets < 13: the input is coerced to 2-D at `axis`
        axis = norm_axis(ctx.attr(node, "axis", 1), max(xt.rank, 1), op) if xt.rank else 0
        flat = ctx.tmp(x + "_2d")
        ctx.add("Reshape", [x], [flat], {"shape": [prod(xt.shape[:axis]), prod(xt.shape[axis:])]})
        y = ctx.tmp(out + "_2d")
        ctx.add(op, [flat], [y], {"axis": 1}, node.name)
        ctx.add("Reshape", [y], [out], {"shape": list(xt.shape)})
    return imp


onnx_op("Softmax")(_onnx("Softmax"))
onnx_op("LogSoftmax")(_onnx("LogSoftmax"))
onnx_op("Hardmax")(_onnx("Hardmax"))


@tflite_op("SOFTMAX")
def _tfl_softmax(ctx, op):
    o = ctx.options(op, "SoftmaxOptions")
    beta = float(o.Beta()) if o is not None else 1.0
    ctx.add("Softmax", ctx.inputs(op)[:1], ctx.outputs(op), {"axis": -1, "beta": beta})


@tflite_op("LOG_SOFTMAX")
def _tfl_log_softmax(ctx, op):
    ctx.add("LogSoftmax", ctx.inputs(op)[:1], ctx.outputs(op), {"axis": -1})
