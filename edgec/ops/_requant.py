"""Requantization of int8 kernels, in one place: TFLite's per-output-channel
(multiplier, shift) pairs (Conv, FullyConnected), their C constants, and the
tables of the DSP / Helium kernels (:func:`requant_table`) that reproduce
TFLite's double-rounding ``MultiplyByQuantizedMultiplier`` exactly with one
SMLAL and a shift.  Below every op module (it imports only the IR)."""
from __future__ import annotations

import numpy as np

from ..ir import qmath


def channel_multipliers(x_scale, w_scales, y_scale, channels: int):
    """(multiplier, shift) int64 arrays of ``x_scale * w_scale[c] / y_scale`` for
    ``channels`` output channels (one weight scale: the same pair for all), as
    TFLite's GetQuantizedConvolutionMultipler computes them: the float32 scales
    multiplied in double (a float32 product made some multipliers differ in the
    last bits: off-by-one outputs)."""
    ws = np.asarray(w_scales, np.float32).reshape(-1)
    if ws.size == 1:
        m, s = qmath.quantize_multiplier(float(np.float32(x_scale)) * float(ws[0])
                                         / float(np.float32(y_scale)))
        return np.full(channels, m, np.int64), np.full(channels, s, np.int64)
    ms, ss = [], []
    for sc in ws:
        m, s = qmath.quantize_multiplier(float(np.float32(x_scale)) * float(sc)
                                         / float(np.float32(y_scale)))
        ms.append(m)
        ss.append(s)
    return np.array(ms, np.int64), np.array(ss, np.int64)


def is_per_channel(m, s) -> bool:
    """Whether the channels' (multiplier, shift) pairs differ (else one pair for all)."""
    return len(set(zip(np.asarray(m).tolist(), np.asarray(s).tolist()))) > 1


def c_multipliers(k, m, s):
    """(per_channel, mult, shift) for the plain and sparse kernels: per channel,
    ``int32`` multipliers and ``int8`` shifts in flash (``k.const``); else the
    single pair as integers."""
    if is_per_channel(m, s):
        return True, k.const(m, "int32", "mult"), k.const(s, "int8", "shift")
    return False, int(m[0]), int(s[0])


def wrap32(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    return ((a + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def requant_table(m, s, zp: int):
    """(table [O, 2] int32 of {M, H}, zp left for the kernel to add) or None.

    For M in (2^30, 2^31) and a right shift e >= 2, TFLite's
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, M), e)`` is
    ``floor((acc*M + 2^30 + 2^(30+e) - [acc<0]*2^31) / 2^(31+e))`` (both
    roundings are floors of the same sum), computed as the high word of a
    64-bit SMLAL shifted right by e-1: H = 2^(e-2), S = e-1.  A multiplier of
    0 (a channel whose weights are all zero) gives 0 with H = 1, S = 1.  The
    output zero point joins H (``zp << S``) when that cannot overflow.  Either
    way H is 2^(S-1) times an odd number (1 + 2 zp, or 1), so S follows from H
    (:func:`requant_shift`) and the kernels get S - 1 per channel and that odd
    factor once per layer (``dsp._rq_args``)."""
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    rows = []
    for M, sh in zip(m.tolist(), s.tolist()):
        if M == 0:
            rows.append((0, 2))
            continue
        if sh > -2 or M <= (1 << 30) or M >= (1 << 31):
            return None
        rows.append((M, -sh))
    fold = max(e for _, e in rows) - 1 <= 22
    table = np.zeros((len(rows), 2), np.int64)
    for i, (M, e) in enumerate(rows):
        S = e - 1
        H = 1 << (e - 2)
        if fold:
            H += zp * (1 << S)
        assert requant_shift(H) == S
        table[i] = (M, H)
    return table.astype(np.int32), (0 if fold else zp)


def requant_shift(h: int) -> int:
    """S of a {M, H} pair: H = 2^(S-1) * odd."""
    h = int(h)
    return (h & -h).bit_length()


def requant_reference(acc, table, zp_left: int) -> np.ndarray:
    """What the C kernel computes from a :func:`requant_table` row (tests)."""
    acc = np.asarray(acc, dtype=np.int64)
    M, H = (np.asarray(table[..., i], dtype=np.int64) for i in range(2))
    S = np.vectorize(requant_shift, otypes=[np.int64])(H)
    t = acc * M + H * (1 << 32) + (1 << 30) - (acc < 0) * (1 << 31)
    return ((t >> 32) >> S) + zp_left
