"""Fixed-point arithmetic of the TFLite int8 quantization spec, in numpy.

These are the integer operations TFLite Micro's reference kernels (and CMSIS-NN,
which matches them bit for bit) use to requantize: gemmlowp's saturating
rounding doubling high multiply and rounding right shift, with multipliers
computed by ``QuantizeMultiplier`` (frexp, round half away from zero).  The C the
native backend emits performs exactly the same operations; the numpy versions
are the reference the C is tested against.

All array functions take and return int64 arrays holding int32 values.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import EdgecError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def tfl_round(x: float) -> float:
    """std::round: half away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def np_round_half_away(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, np.floor(x + 0.5), -np.floor(-x + 0.5))


def quantize_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier: m ~= q * 2**(shift - 31) with q in [2**30, 2**31)."""
    if m == 0.0:
        return 0, 0
    if math.isnan(m):
        raise EdgecError("a requantization multiplier is NaN (from quantization scales or "
                         "parameters that are not finite)")
    if math.isinf(m):
        # a float32 ratio of absurd scales overflowed: saturate as below
        return (INT32_MAX if m > 0 else -INT32_MAX), 30
    q, shift = math.frexp(m)
    q_fixed = int(tfl_round(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if shift > 30:
        # TFLite clamps (it only happens for absurd scales).
        shift = 30
        q_fixed = INT32_MAX
    return q_fixed, shift


def quantize_multiplier_greater_than_one(m: float) -> tuple[int, int]:
    q, shift = quantize_multiplier(m)
    if shift < 0:
        raise ValueError("multiplier below one")
    return q, shift


def srdhm(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul of int32 values (as int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C integer division truncates toward zero.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, INT32_MAX, q).astype(np.int64)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def wrap32(x) -> np.ndarray:
    """Two's-complement wrap to int32 (what C does on Cortex-M and x86)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def mul_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier (TFLite's double-rounding version)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(srdhm(wrap32(x << left), multiplier), right)


def saturating_rounding_mul_by_pot(x, exponent: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    r = wrap32(x << exponent)
    r = np.where(x > threshold, INT32_MAX, r)
    return np.where(x < -threshold, INT32_MIN, r)


# ---- gemmlowp fixed-point exp / reciprocal (used by int8 softmax) ----------

def _fx_mul(a, b):
    return srdhm(a, b)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """Input and output: FixedPoint<int32, 0> raw values."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = a + (1 << 28)
    x2 = _fx_mul(x, x)
    x3 = _fx_mul(x2, x)
    x4 = _fx_mul(x2, x2)
    x4_over_4 = saturating_rounding_mul_by_pot(x4, -2)
    t = saturating_rounding_mul_by_pot(_fx_mul(x4_over_4 + x3, constant_1_over_3) + x2, -1)
    return constant_term + _fx_mul(constant_term, x + t)


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values for FixedPoint<int32, integer_bits> input;
    returns FixedPoint<int32, 0> raw values."""
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_q_minus_q = (a & mask) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_mul_by_pot(a_mod_q_minus_q, integer_bits))
    remainder = a_mod_q_minus_q - a
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                           (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            shift = frac_bits + exponent
            if shift < 31:
                bit = (remainder & (1 << shift)) != 0
                result = np.where(bit, _fx_mul(result, mult), result)
    if integer_bits > 5:
        clamp = -(1 << (frac_bits + 5))  # -32 in FixedPoint<integer_bits>
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _reciprocal_half_denominator(a):
    """gemmlowp's Newton-Raphson division shared by 1/(1+x) and (1-x)/(1+x): for
    FixedPoint<int32,0> x in [0,1), 1/((1+x)/2) as FixedPoint<int32,2> (three steps)."""
    a = np.asarray(a, dtype=np.int64)
    s = a + INT32_MAX
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))  # RoundingHalfSum
    x = 1515870810 + _fx_mul(half_denominator, -1010580540)  # 48/17 - 32/17 * d, F2
    one_f2 = 1 << 29
    for _ in range(3):
        hdx = _fx_mul(half_denominator, x)          # F2
        one_minus = one_f2 - hdx                     # F2
        x = x + saturating_rounding_mul_by_pot(_fx_mul(x, one_minus), 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a):
    """FixedPoint<int32,0> in [0,1) -> 1/(1+x) as FixedPoint<int32,0>."""
    return saturating_rounding_mul_by_pot(_reciprocal_half_denominator(a), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """FixedPoint<int32,0> in [0,1) -> (1-x)/(1+x) as FixedPoint<int32,0> (gemmlowp's tanh)."""
    return saturating_rounding_mul_by_pot(_reciprocal_half_denominator(a) - (1 << 29), 2)


def count_leading_zeros32(x: int) -> int:
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()
