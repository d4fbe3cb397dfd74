"""QRsqrt: TFLite's int8 RSQRT, as TFLite Micro computes it.

Prepare: the output multiplier and shift from ``1 / (sqrt(s_in) * s_out)`` (doubles of the
float32 scales, ``QuantizeMultiplier``).  Per element ``v = x - zp_in``: ``v == 0`` gives 127
(TFLite Micro's "any value close to 0 is the max output"); else ``1 / sqrt(v)`` as a
quantized multiplier and exponent (``GetInvSqrtQuantizedMultiplierExp``: a Newton-Raphson
iteration in gemmlowp's FixedPoint<int32, 3>), applied to 1 with 20 bits of headroom, then
rescaled by the output multiplier (shift less those 20 bits), plus the output zero point,
clamped to int8.

TFLite Micro refuses to run a model whose input holds a value below the input zero point
("Rsqrt is only defined for positive values": Invoke fails); a compiled model cannot fail
part-way, so edgec gives such levels 127, as for the zero point.

An int8 input has 256 values, so the kernel is a table (``qlogistic.lut_kernel``): the
reference evaluated on every level at compile time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import qmath
from ..ir.errors import UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_int8_per_tensor, quant_of
from .qlogistic import lut_kernel

HEADROOM = 20          # TFLite Micro's kShift: 1/sqrt(v) is computed as 2^20 / sqrt(v)
REVERSE_SHIFT = -1     # TFLite's kReverseShift: the exponent as a left shift


@dataclass(frozen=True)
class RsqrtParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def prepare(g, n) -> RsqrtParams:
    si, zi = quant_of(g, n.inputs[0]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    real = 1.0 / (math.sqrt(float(np.float32(si))) * float(np.float32(so)))
    m, s = qmath.quantize_multiplier(real)
    return RsqrtParams(int(zi), int(zo), m, s)


def inv_sqrt_multiplier_exp(v: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(v, kReverseShift): 1/sqrt(v) ~= m * 2^(e - 31)."""
    if v <= 1:
        return qmath.INT32_MAX, 0
    shift = 11
    while v >= 1 << 29:
        v //= 4
        shift += 1
    pairs = (qmath.count_leading_zeros32(v) - 1) // 2 - 1
    shift -= pairs
    v <<= 2 * pairs
    srdhm = lambda a, b: int(qmath.srdhm(a, b))                         # noqa: E731
    sat_pot = lambda a, e: int(qmath.saturating_rounding_mul_by_pot(a, e))  # noqa: E731
    half_input = sat_pot(v >> 1, -1)            # F3
    half_three = (1 << 28) + (1 << 27)          # 1.5 in F3
    x = 1 << 28                                 # 1 in F3
    for _ in range(5):
        x3 = sat_pot(srdhm(srdhm(x, x), x), 6)                           # F9 -> F3
        d = int(qmath.wrap32(srdhm(half_three, x) - srdhm(half_input, x3)))  # F6
        x = sat_pot(d, 3)                                                # F6 -> F3
    x = srdhm(x, 1518500250)                    # times sqrt(2)/2 in F0
    if shift < 0:
        x = int(qmath.wrap32(x << -shift))
        shift = 0
    return x, shift * REVERSE_SHIFT


def rsqrt_int8(x: np.ndarray, p: RsqrtParams) -> np.ndarray:
    """TFLite Micro's int8 RSQRT on each value (127 at and below the zero point)."""
    flat = x.astype(np.int64).ravel()
    out = np.empty(flat.shape, np.int64)
    for i, xi in enumerate(flat):
        v = int(xi) - p.input_zero_point
        if v <= 0:
            out[i] = 127
            continue
        m, e = inv_sqrt_multiplier_exp(v)
        data = qmath.mul_by_quantized_multiplier(1, m, e + HEADROOM)
        out[i] = qmath.mul_by_quantized_multiplier(data, p.multiplier, p.shift - HEADROOM) + p.output_zero_point
    return np.clip(out, -128, 127).astype(np.int8).reshape(x.shape)


class QRsqrt(Op):
    name = "QRsqrt"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        return [OutSpec(tuple(x.shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "RSQRT")

    def reference(self, g, n, xs):
        return [rsqrt_int8(xs[0], prepare(g, n))]

    def emit(self, k):
        return lut_kernel(k, rsqrt_int8, prepare(k.g, k.node))


register(QRsqrt)


@tflite_op("RSQRT", quantized=True)
def _tfl_rsqrt_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"RSQRT[{x.dtype}]"])
    ctx.add("QRsqrt", ctx.inputs(op)[:1], ctx.outputs(op))
