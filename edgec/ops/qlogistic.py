"""QLogistic: TFLite's int8 LOGISTIC, as TFLite Micro computes it.

Prepare (TFLite Micro's ``CalculateArithmeticOpDataLogistic``): the input scale times
2^27 as a multiplier and left shift from ``frexp`` (the input in FixedPoint<int32, 4>), and
the input range radius beyond which the output saturates.  Per element: ``v = x - zp_in``;
``v <= -radius`` gives -128, ``v >= radius`` 127, else gemmlowp's fixed-point logistic of
``MultiplyByQuantizedMultiplier(v, ...)``, rounded from Q0.31 to 1/256 steps, plus the
output zero point -128.  The output must be quantized with zero point -128 (TFLite Micro
refuses anything else).

An int8 input has 256 values, so the kernel is a table: edgec evaluates the reference on
every input level at compile time and the C looks each element up (256 bytes of flash, one
load per element); the table is the reference's own output, bit for bit TFLite Micro's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_int8_per_tensor, quant_of

INPUT_INTEGER_BITS = 4      # the input in FixedPoint<int32, 4>
OUTPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class Q4Params:
    """The input of TFLite Micro's int8 LOGISTIC and TANH as FixedPoint<int32, 4>."""
    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def prepare(g, n, what: str = "LOGISTIC") -> Q4Params:
    """The compile-time parameters, as TFLite Micro's Prepare computes them (LOGISTIC's
    ``CalculateArithmeticOpDataLogistic``, TANH's ``CalculateArithmeticOpData``): ``frexp``
    directly, not :func:`qmath.quantize_multiplier`, whose clamps (shift at most 30) this
    Prepare does not apply (an input scale of 8 or more gives a shift of 31 or more, and a
    radius of 0: every output saturates).  A mantissa that rounds up to 2^31 overflows
    TFLite Micro's int32 cast; it is halved here, with the exponent one higher."""
    scale, zp = quant_of(g, n.inputs[0]).scalar()
    real = float(np.float32(scale)) * float(1 << (31 - INPUT_INTEGER_BITS))
    q, shift = math.frexp(real)
    mult = int(qmath.tfl_round(q * (1 << 31)))
    if mult == 1 << 31:          # frexp's mantissa rounded up to 1.0
        mult //= 2
        shift += 1
    if shift < 0:
        raise EdgecError(f"{what} input scale {scale:g} is too small for TFLite Micro's int8 kernel "
                         f"(it needs at least 2^-28)")
    max_rescaled = ((1 << INPUT_INTEGER_BITS) - 1) * float(1 << (31 - INPUT_INTEGER_BITS)) / float(1 << shift)
    return Q4Params(zp, mult, shift, int(math.floor(max_rescaled)))


def fixed_point_q4(x: np.ndarray, p: Q4Params):
    """(v, inside, a): the inputs less their zero point, where they are inside the range
    radius, and there the FixedPoint<int32, 4> raw values (0 outside)."""
    v = x.astype(np.int64) - p.input_zero_point
    inside = (v > -p.input_range_radius) & (v < p.input_range_radius)
    a = qmath.mul_by_quantized_multiplier(np.where(inside, v, 0), p.input_multiplier, p.input_left_shift)
    return v, inside, a


def saturated(y: np.ndarray, v: np.ndarray, p: Q4Params) -> np.ndarray:
    """-128 at or below minus the radius, 127 at or above it, ``y`` between."""
    y = np.where(v <= -p.input_range_radius, -128, np.where(v >= p.input_range_radius, 127, y))
    return y.astype(np.int8)


def lut_kernel(k, fn, params) -> str:
    """The C of an elementwise int8 -> int8 function: its 256 values as a table in flash."""
    levels = np.arange(-128, 128, dtype=np.int8)
    table = k.const(fn(levels, params), "int8", "lut")
    return (f"  for (int i = 0; i < {k.tin(0).size}; ++i) {{\n"
            f"    y0[i] = {table}[(int){k.x(0)}[i] + 128];\n"
            f"  }}\n")


def logistic_int8(x: np.ndarray, p: Q4Params) -> np.ndarray:
    """TFLite Micro's reference_integer_ops::Logistic on int8 values."""
    v, inside, a = fixed_point_q4(x, p)
    # gemmlowp::logistic: 1 / (1 + exp(-|a|)) for |a|, 1 - that for a < 0, 1/2 at 0
    pos = np.where(a > 0, a, -a)
    on_pos = qmath.one_over_one_plus_x_for_x_in_0_1(qmath.exp_on_negative_values(-pos, INPUT_INTEGER_BITS))
    r = np.where(a > 0, on_pos, qmath.INT32_MAX - on_pos)
    r = np.where(a == 0, 1 << 30, r)
    q = qmath.rounding_divide_by_pot(r, 31 - 8) + OUTPUT_ZERO_POINT
    return saturated(np.clip(q, -128, 127), v, p)


class QLogistic(Op):
    name = "QLogistic"

    def infer(self, g, n):
        x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
        if y.quant is not None and y.quant.zero_point.size == 1 and int(y.quant.zero_point[0]) != OUTPUT_ZERO_POINT:
            raise EdgecError(f"LOGISTIC output zero point {int(y.quant.zero_point[0])} "
                             f"(TFLite Micro's int8 kernel needs {OUTPUT_ZERO_POINT})")
        return [OutSpec(tuple(x.shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "LOGISTIC")

    def reference(self, g, n, xs):
        return [logistic_int8(xs[0], prepare(g, n))]

    def emit(self, k):
        return lut_kernel(k, logistic_int8, prepare(k.g, k.node))


register(QLogistic)


@tflite_op("LOGISTIC", quantized=True)
def _tfl_logistic_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"LOGISTIC[{x.dtype}]"])
    ctx.add("QLogistic", ctx.inputs(op)[:1], ctx.outputs(op))
