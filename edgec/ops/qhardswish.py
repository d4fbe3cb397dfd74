"""QHardSwish: TFLite's int8 HARD_SWISH, as TFLite Micro computes it.

Prepare (TFLite Micro's ``HardSwishPrepare``), in float32 as it does: the input on a
"hires" scale ``input_scale / 128``; the output multiplier ``hires / output_scale`` and
the "reluish" multiplier ``hires / (3 / 32768)`` (the scale on which 3.0 is 32768), each
by ``QuantizeMultiplier`` and then rounded to an int16 multiplier
(``DownScaleInt32ToInt16Multiplier``).  An output multiplier exponent above 0 (an output
scale at or below about ``input_scale / 128``) is refused, as TFLite Micro refuses it.

Per element, all in int16 (TFLite's ``reference_ops::HardSwish``): ``v = (x - zp_in) * 128``;
``v`` times the output multiplier (gemmlowp's rounding doubling high multiply); ``v``
rescaled to the reluish scale (saturating left shifts around the multiply, or a rounding
right shift), mapped from [-1, 1] to [0, 1], multiplied in by a doubling high multiply
that truncates; the output exponent as a rounding right shift; plus the output zero point,
clamped to int8.  The output quantization is free (unlike LOGISTIC's).

The kernel is LOGISTIC's 256-entry table (:func:`edgec.ops.qlogistic.lut_kernel`): the
reference evaluated on every input level at compile time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_int8_per_tensor, quant_of
from .qlogistic import lut_kernel

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


@dataclass(frozen=True)
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    output_multiplier: int      # int16
    output_exponent: int        # <= 0
    reluish_multiplier: int     # int16
    reluish_exponent: int


def _int16_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier (round the Q31 value to
    Q15; at or above INT32_MAX - 2^15 it saturates to INT16_MAX)."""
    q, shift = qmath.quantize_multiplier(m)
    if q >= qmath.INT32_MAX - (1 << 15):
        return INT16_MAX, shift
    return (q + (1 << 15)) >> 16, shift


def prepare(g, n) -> HardSwishParams:
    in_scale, in_zp = quant_of(g, n.inputs[0]).scalar()
    out_scale, out_zp = quant_of(g, n.outputs[0]).scalar()
    hires = np.float32(1.0 / 128.0) * np.float32(in_scale)
    out_m, out_e = _int16_multiplier(float(np.float32(hires / np.float32(out_scale))))
    if out_e > 0:
        raise EdgecError(f"HARD_SWISH output scale {out_scale:g} is too small for input scale {in_scale:g} "
                         f"(TFLite Micro's int8 kernel needs input_scale / 128 / output_scale below 1)")
    rel_m, rel_e = _int16_multiplier(float(np.float32(hires / np.float32(3.0 / 32768.0))))
    return HardSwishParams(int(in_zp), int(out_zp), out_m, out_e, rel_m, rel_e)


def _wrap16(x):
    return ((np.asarray(x, dtype=np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _srdhm16(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = np.where(s >= 0, s >> 15, -((-s) >> 15))          # C division truncates
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, _wrap16(q))


def _sdhm16(a, b):
    """SaturatingDoublingHighMul on int16: the same, truncating instead of rounding."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    ab = a * b
    q = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, _wrap16(q))


def _rdbp16(x, exponent: int):
    """gemmlowp's RoundingDivideByPOT on int16: the mask ``2^exponent - 1`` is an int16 too
    (it wraps for exponents of 16 or more, as it does in C), the sums wrap to int16."""
    x = np.asarray(x, dtype=np.int64)
    mask = int(_wrap16((1 << exponent) - 1))
    threshold = _wrap16((mask >> 1) + (x < 0))
    return _wrap16((x >> exponent) + ((x & mask) > threshold))


def _saturating_left_shift16(x, amount: int):
    return np.clip(np.asarray(x, dtype=np.int64) * (1 << amount), INT16_MIN, INT16_MAX)


def hardswish_int8(x: np.ndarray, p: HardSwishParams) -> np.ndarray:
    """TFLite's reference_ops::HardSwish on int8 values."""
    hires = _wrap16((x.astype(np.int64) - p.input_zero_point) * 128)
    preshift = _srdhm16(hires, p.output_multiplier)
    r = hires
    if p.reluish_exponent > 0:
        r = _saturating_left_shift16(r, p.reluish_exponent - 1)
    r = _srdhm16(r, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        r = _saturating_left_shift16(r, 1)
    if p.reluish_exponent < 0:
        r = _rdbp16(r, -p.reluish_exponent)
    r = (r + (1 << 15)) >> 1                               # [-1, 1] -> [0, 1]
    y = _rdbp16(_sdhm16(r, preshift), -p.output_exponent)
    y = _wrap16(y + p.output_zero_point)
    return np.clip(y, -128, 127).astype(np.int8)


class QHardSwish(Op):
    name = "QHardSwish"

    def infer(self, g, n):
        x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
        if check_int8_per_tensor(g, n, "HARD_SWISH") is None:
            prepare(g, n)             # refuses the output scales TFLite Micro refuses
        return [OutSpec(tuple(x.shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "HARD_SWISH")

    def reference(self, g, n, xs):
        return [hardswish_int8(xs[0], prepare(g, n))]

    def emit(self, k):
        return lut_kernel(k, hardswish_int8, prepare(k.g, k.node))


register(QHardSwish)


@tflite_op("HARD_SWISH", quantized=True)
def _tfl_hard_swish_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"HARD_SWISH[{x.dtype}]"])
    ctx.add("QHardSwish", ctx.inputs(op)[:1], ctx.outputs(op))
