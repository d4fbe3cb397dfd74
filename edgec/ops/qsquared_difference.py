"""QSquaredDifference: TFLite's int8 SQUARED_DIFFERENCE, as TFLite Micro computes it.

Prepare (TFLite Micro's ``PrepareQuantized`` with ``left_shift`` 7): input offsets minus
the zero points; with ``twice_max = 2 * max(s1, s2)`` (doubles of the float32 scales), the
input multipliers ``s_i / twice_max`` (``QuantizeMultiplierSmallerThanOneExp``) and the
output multiplier ``twice_max^2 / (2^14 * s_out)`` (``QuantizeMultiplier``).  Per element:
each input plus its offset, times 2^7, scaled by its multiplier; the difference squared
(at most 32640^2: no int32 overflow); ``MultiplyByQuantizedMultiplier`` by the output
multiplier, plus the output zero point, clamped to int8.  The inputs broadcast as numpy
(TFLite Micro's ``BroadcastBinaryFunction4DSlow``); the C is a loop nest with broadcast
strides, as ``ops/binary.py``'s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import broadcast_shape, broadcast_strides, coalesce, loop_nest, quant_of

LEFT_SHIFT = 7     # 255^2 * 2^14 fits int32


@dataclass(frozen=True)
class SquaredDifferenceParams:
    in1_offset: int
    in2_offset: int
    out_offset: int
    m1: int
    s1: int
    m2: int
    s2: int
    mo: int
    so: int


def prepare(g, n) -> SquaredDifferenceParams:
    s1, z1 = quant_of(g, n.inputs[0]).scalar()
    s2, z2 = quant_of(g, n.inputs[1]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    s1, s2 = float(np.float32(s1)), float(np.float32(s2))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = qmath.quantize_multiplier(s1 / twice_max)
    m2, sh2 = qmath.quantize_multiplier(s2 / twice_max)
    # (1 << 14) * output scale is a float product in TFLite Micro: exact (a power of two)
    mo, sho = qmath.quantize_multiplier(twice_max * twice_max / float(np.float32(1 << (2 * LEFT_SHIFT)) * np.float32(so)))
    return SquaredDifferenceParams(-int(z1), -int(z2), int(zo), m1, sh1, m2, sh2, mo, sho)


def squared_difference_int8(a: np.ndarray, b: np.ndarray, p: SquaredDifferenceParams) -> np.ndarray:
    a, b = np.broadcast_arrays(a.astype(np.int64), b.astype(np.int64))
    sa = qmath.mul_by_quantized_multiplier((a + p.in1_offset) * (1 << LEFT_SHIFT), p.m1, p.s1)
    sb = qmath.mul_by_quantized_multiplier((b + p.in2_offset) * (1 << LEFT_SHIFT), p.m2, p.s2)
    d = sa - sb
    y = qmath.mul_by_quantized_multiplier(d * d, p.mo, p.so) + p.out_offset
    return np.clip(y, -128, 127).astype(np.int8)


class QSquaredDifference(Op):
    name = "QSquaredDifference"

    def infer(self, g, n):
        a, b = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if a.dtype != b.dtype:
            raise EdgecError(f"SQUARED_DIFFERENCE: operand types differ ({a.dtype}, {b.dtype})")
        return [OutSpec(broadcast_shape(a.shape, b.shape, where="SQUARED_DIFFERENCE"), a.dtype)]

    def check(self, g, n):
        ts = [g.tensors[i] for i in (*n.inputs[:2], n.outputs[0])]
        if any(t.dtype != "int8" or t.quant is None for t in ts):
            return "SQUARED_DIFFERENCE (int8 with quantization parameters only)"
        if any(t.quant.scale.size != 1 for t in ts):
            return "SQUARED_DIFFERENCE with per-axis quantization"
        return None

    def reference(self, g, n, xs):
        return [squared_difference_int8(xs[0], xs[1], prepare(g, n))]

    def emit(self, k):
        p = prepare(k.g, k.node)
        out = k.tout()
        sa = broadcast_strides(k.tin(0).shape, out.shape)
        sb = broadcast_strides(k.tin(1).shape, out.shape)
        so = broadcast_strides(out.shape, out.shape)
        shape, (sa, sb, so) = coalesce(out.shape, [sa, sb, so])
        body = (f"const int32_t s1 = edgec_mbqm(((int32_t){k.x(0)}[{{ia}}] + {p.in1_offset}) * {1 << LEFT_SHIFT}, "
                f"{p.m1}, {p.s1});\n"
                f"const int32_t s2 = edgec_mbqm(((int32_t){k.x(1)}[{{ib}}] + {p.in2_offset}) * {1 << LEFT_SHIFT}, "
                f"{p.m2}, {p.s2});\n"
                f"int32_t acc = edgec_mbqm((s1 - s2) * (s1 - s2), {p.mo}, {p.so}) + {p.out_offset};\n"
                f"y0[{{io}}] = (int8_t)(acc < -128 ? -128 : (acc > 127 ? 127 : acc));")
        return "  {\n" + loop_nest(shape, {"ia": sa, "ib": sb, "io": so}, body, "    ") + "\n  }\n"


register(QSquaredDifference)


@tflite_op("SQUARED_DIFFERENCE", quantized=True)
def _tfl_squared_difference_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"SQUARED_DIFFERENCE[{x.dtype}]"])
    ctx.add("QSquaredDifference", ctx.inputs(op)[:2], ctx.outputs(op))
