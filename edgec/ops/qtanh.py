"""QTanh: TFLite's int8 TANH, as TFLite Micro computes it.

The input as LOGISTIC's (:mod:`edgec.ops.qlogistic`: FixedPoint<int32, 4>, the same
Prepare and range radius); per element inside the radius gemmlowp's fixed-point tanh,
rounded from Q0.31 to 1/128 steps (``RoundingDivideByPOT(.., 24)``), clamped to int8.
TFLite Micro's kernel writes the output as scale 1/128, zero point 0 whatever the output
tensor declares (the converter always declares that); edgec refuses another zero point
rather than compute values the model would misread.  The kernel is the same 256-entry
table as LOGISTIC's.
"""
from __future__ import annotations

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_int8_per_tensor
from .qlogistic import Q4Params, fixed_point_q4, lut_kernel, prepare, saturated

OUTPUT_FRACTION_BITS = 7     # the output in 1/128 steps


def tanh_int8(x: np.ndarray, p: Q4Params) -> np.ndarray:
    """TFLite Micro's reference_integer_ops::Tanh on int8 values."""
    v, _, a = fixed_point_q4(x, p)
    neg = np.where(a < 0, a, -a)          # -|a| in FixedPoint<int32, 4>
    # tanh(|a|) = (1 - exp(-2|a|)) / (1 + exp(-2|a|)); -2|a| is the same raw value read as
    # FixedPoint<int32, 5> (gemmlowp's ExactMulByPot<1>)
    t = qmath.one_minus_x_over_one_plus_x_for_x_in_0_1(qmath.exp_on_negative_values(neg, 5))
    r = np.where(a == 0, 0, np.where(a < 0, -t, t))
    q = qmath.rounding_divide_by_pot(r, 31 - OUTPUT_FRACTION_BITS)
    return saturated(np.clip(q, -128, 127), v, p)


class QTanh(Op):
    name = "QTanh"

    def infer(self, g, n):
        x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
        if y.quant is not None and y.quant.zero_point.size == 1 and int(y.quant.zero_point[0]) != 0:
            raise EdgecError(f"TANH output zero point {int(y.quant.zero_point[0])} "
                             "(TFLite Micro's int8 kernel writes zero point 0)")
        return [OutSpec(tuple(x.shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "TANH")

    def reference(self, g, n, xs):
        return [tanh_int8(xs[0], prepare(g, n, "TANH"))]

    def emit(self, k):
        return lut_kernel(k, tanh_int8, prepare(k.g, k.node, "TANH"))


register(QTanh)


@tflite_op("TANH", quantized=True)
def _tfl_tanh_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"TANH[{x.dtype}]"])
    ctx.add("QTanh", ctx.inputs(op)[:1], ctx.outputs(op))
