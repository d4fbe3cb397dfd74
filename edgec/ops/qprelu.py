"""QPRelu: TFLite's int8 PRELU, as TFLite Micro computes it.

TFLite Micro's Prepare makes two quantized multipliers from doubles of the float32
scales: ``s_in / s_out`` (identity) and ``s_in * s_alpha / s_out`` (alpha).  Eval
(``reference_ops::BroadcastPrelu4DSlow``) broadcasts input and alpha to the output's
shape (both right-aligned in four dimensions); per element ``v = x - zp_in``, then
``zp_out + MultiplyByQuantizedMultiplier(v, identity)`` when ``v >= 0``, else
``zp_out + MultiplyByQuantizedMultiplier(v * (alpha - zp_alpha), alpha multiplier)``,
clamped to int8.  Alpha is int8 with one scale (Keras' PReLU with ``shared_axes=[1, 2]``
gives alpha ``[1, 1, C]``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_int8_per_tensor, quant_of


@dataclass(frozen=True)
class PreluParams:
    input_zero_point: int
    alpha_zero_point: int
    output_zero_point: int
    multiplier_identity: int
    shift_identity: int
    multiplier_alpha: int
    shift_alpha: int


def prepare(g, n) -> PreluParams:
    si, zi = quant_of(g, n.inputs[0]).scalar()
    sa, za = quant_of(g, n.inputs[1]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    si, sa, so = (float(np.float32(s)) for s in (si, sa, so))
    m1, s1 = qmath.quantize_multiplier(si / so)
    m2, s2 = qmath.quantize_multiplier(si * sa / so)
    return PreluParams(int(zi), int(za), int(zo), m1, s1, m2, s2)


def _shape4(shape) -> list[int]:
    return [1] * (4 - len(shape)) + [int(d) for d in shape]


def _strides4(shape, out4) -> list[int]:
    """Element strides of a tensor broadcast to the four-dimensional output (0 where
    the tensor's dimension is 1 and the output's is not)."""
    s4 = _shape4(shape)
    strides, step = [0] * 4, 1
    for d in range(3, -1, -1):
        strides[d] = 0 if s4[d] == 1 and out4[d] != 1 else step
        step *= s4[d]
    return strides


def prelu_int8(x: np.ndarray, alpha: np.ndarray, out_shape, p: PreluParams) -> np.ndarray:
    """TFLite Micro's BroadcastPrelu4DSlow on int8 values."""
    v = np.broadcast_to(x, out_shape).astype(np.int64) - p.input_zero_point
    a = np.broadcast_to(alpha, out_shape).astype(np.int64) - p.alpha_zero_point
    pos = qmath.mul_by_quantized_multiplier(v, p.multiplier_identity, p.shift_identity)
    neg = qmath.mul_by_quantized_multiplier(v * a, p.multiplier_alpha, p.shift_alpha)
    y = np.where(v >= 0, pos, neg) + p.output_zero_point
    return np.clip(y, -128, 127).astype(np.int8)


class QPRelu(Op):
    name = "QPRelu"

    def infer(self, g, n):
        x, a, y = (g.tensors[t] for t in (n.inputs[0], n.inputs[1], n.outputs[0]))
        if len(x.shape) > 4 or len(a.shape) > 4:
            raise UnsupportedError([f"PRELU[int8] of rank {max(len(x.shape), len(a.shape))}"])
        try:
            shape = np.broadcast_shapes(tuple(x.shape), tuple(a.shape))
        except ValueError:
            raise EdgecError(f"PRELU {n.name!r}: alpha shape {list(a.shape)} does not broadcast "
                             f"to input shape {list(x.shape)}") from None
        if a.dtype != "int8" or a.quant is None or a.quant.scale.size != 1:
            raise UnsupportedError([f"PRELU[int8] with alpha {a.dtype}"
                                    + (" per-axis" if a.quant is not None and a.quant.scale.size != 1 else "")])
        return [OutSpec(tuple(shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "PRELU")

    def reference(self, g, n, xs):
        return [prelu_int8(xs[0], xs[1], tuple(g.tensors[n.outputs[0]].shape), prepare(g, n))]

    def emit(self, k):
        p = prepare(k.g, k.node)
        out4 = _shape4(k.tout().shape)
        sx, sa = _strides4(k.tin(0).shape, out4), _strides4(k.tin(1).shape, out4)
        x, a = k.x(0), k.x(1)
        return (f"  int o = 0;\n"
                f"  for (int b = 0; b < {out4[0]}; ++b)\n"
                f"  for (int h = 0; h < {out4[1]}; ++h)\n"
                f"  for (int w = 0; w < {out4[2]}; ++w)\n"
                f"  for (int c = 0; c < {out4[3]}; ++c, ++o) {{\n"
                f"    const int32_t v = (int32_t){x}[b * {sx[0]} + h * {sx[1]} + w * {sx[2]} + c * {sx[3]}]"
                f" - ({p.input_zero_point});\n"
                f"    int32_t q;\n"
                f"    if (v >= 0) {{\n"
                f"      q = edgec_mbqm(v, {p.multiplier_identity}, {p.shift_identity});\n"
                f"    }} else {{\n"
                f"      const int32_t al = (int32_t){a}[b * {sa[0]} + h * {sa[1]} + w * {sa[2]} + c * {sa[3]}]"
                f" - ({p.alpha_zero_point});\n"
                f"      q = edgec_mbqm(v * al, {p.multiplier_alpha}, {p.shift_alpha});\n"
                f"    }}\n"
                f"    q += {p.output_zero_point};\n"
                f"    y0[o] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));\n"
                f"  }}\n")


register(QPRelu)


@tflite_op("PRELU", quantized=True)
def _tfl_prelu_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"PRELU[{x.dtype}]"])
    ctx.add("QPRelu", ctx.inputs(op)[:2], ctx.outputs(op))
