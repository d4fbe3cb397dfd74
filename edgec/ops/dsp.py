"""int8 kernels for cores with the Arm DSP extension (Cortex-M4, M7, M33, M55).

The kernels themselves are C in ``templates/runtime/dsp_s8.c.j2`` (inline
assembly for the inner loops under GCC, portable C elsewhere); this module
decides per layer whether one applies and prepares its constants at compile
time: weights re-laid out for the kernel, the input offset folded into the
bias, and requantization tables (:func:`requant_table`) that reproduce
TFLite's double-rounding ``MultiplyByQuantizedMultiplier`` exactly with one
SMLAL and a shift.

Every function returns the C body of the layer, or ``None`` when the layer is
outside what the kernel handles (the caller then emits the plain kernel).
"""
from __future__ import annotations

import numpy as np

from ._util import act_range_quant, quant_of

# Scratch words (4 bytes) per group of four K values: q15 pairs of two pixels
# (4 words) plus two int8 im2col rows (1 word each).
CONV_SCRATCH_PER_GROUP = 24
DIRECT_SCRATCH_PER_GROUP = 16


def wanted(options: dict) -> bool:
    """DSP kernels for a build: on a target with the DSP extension unless
    ``options["kernels"] == "plain"``; ``"dsp"`` forces them anywhere (their
    portable C form: tests on the host)."""
    kernels = options.get("kernels", "auto")
    if kernels not in ("auto", "plain", "dsp", "mve"):
        from ..ir.errors import EdgecError
        raise EdgecError(f"unknown kernels option {kernels!r} (auto, plain, dsp or mve)")
    if kernels != "auto":
        return kernels in ("dsp", "mve")
    tgt = options.get("target")
    return tgt is not None and tgt.has("dsp")


def enabled(k) -> bool:
    return wanted(k.options)


def mve_wanted(options: dict) -> bool:
    """Helium kernels: a target with MVE (``options["kernels"] == "mve"`` forces
    them, in their portable form off such a core); DSP kernels otherwise."""
    kernels = options.get("kernels", "auto")
    if kernels != "auto":
        return kernels == "mve"
    tgt = options.get("target")
    return tgt is not None and tgt.has("mve")


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
    factor once per layer (:func:`_rq_args`)."""
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


def _pad_to(a: np.ndarray, n: int, axis: int = 0) -> np.ndarray:
    extra = n - a.shape[axis]
    if extra <= 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return np.pad(a, widths)


def _rq_args(k, table, O_pad):
    """The C arguments ``rqm, rqs, hk`` of a :func:`requant_table`: M per channel
    (int32), S - 1 per channel (int8), and the layer's odd factor hk with
    H = hk << (S - 1) (``edgec_rq_ch``): 5 bytes of flash a channel."""
    t = _pad_to(np.asarray(table, np.int64), O_pad)
    sm1 = np.array([requant_shift(h) - 1 if h else 0 for h in t[:, 1].tolist()], np.int64)
    hks = {int(h) >> int(e) for h, e in zip(t[:, 1].tolist(), sm1.tolist()) if h}
    assert len(hks) == 1, hks  # H = 2^(S-1) * (1 + 2 zp) or 2^(S-1): one factor per layer
    hk = hks.pop()
    return (f"{k.const(t[:, 0], 'int32', 'rqm')}, {k.const(sm1, 'int8', 'rqs')}, {hk}")


# --- CONV_2D / DEPTHWISE_CONV_2D --------------------------------------------------

def conv_kind(g, n, mve: bool = False) -> str | None:
    """``gemm`` / ``dw`` when an int8 Conv node has a DSP (``mve``: Helium)
    kernel, else None."""
    from .conv import geometry, requant_params
    a = n.attrs
    x = g.tensors[n.inputs[0]]
    if a["layout"] != "NHWC" or x.dtype != "int8" or x.quant is None:
        return None
    if not mve and requant_table(*requant_params(g, n), 0) is None:
        return None
    N, H, W, C, O, KH, KW, Cg, OH, OW = geometry(g, n)
    if a["group"] == 1:
        return "gemm"
    if a.get("fused_add") or not (a["group"] == C and Cg == 1 and O == C):
        return None
    if mve:
        return "dw"
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    if KH == 3 and KW == 3 and sh == sw and sh in (1, 2) and dh == 1 and dw == 1:
        return "dw"
    return None


def has_kernel(k) -> bool:
    """Whether this layer (int8 Conv or FullyConnected) gets a DSP or Helium kernel."""
    if not wanted(k.options):
        return False
    g, n = k.g, k.node
    mve = mve_wanted(k.options)
    if n.op == "Conv":
        return conv_kind(g, n, mve) is not None
    if n.op == "FullyConnected":
        from .gemm import fc_dims, fc_requant
        x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if x.dtype != "int8" or w.quant is None or int(w.quant.zero_point[0]) != 0:
            return False
        return mve or (fc_dims(g, n)[2] % 4 == 0 and requant_table(*fc_requant(g, n), 0) is not None)
    return False


def conv(k, geom, m, s) -> str | None:
    g, n = k.g, k.node
    mve = mve_wanted(k.options)
    kind = conv_kind(g, n, mve)
    if kind is None:
        return None
    from .conv import weights_ohwi
    N, H, W, C, O, KH, KW, Cg, OH, OW = geom
    a = n.attrs
    _, xzp = quant_of(g, n.inputs[0]).scalar()
    ys, yzp = quant_of(g, a.get("fused_add", {}).get("conv_output", n.outputs[0])).scalar()
    lo, hi = act_range_quant(a.get("act"), ys, yzp)
    w = weights_ohwi(g, n).astype(np.int64)
    bias = (k.tin(2).data.astype(np.int64) if k.has_input(2) else np.zeros(O, np.int64))
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    pt, pl, pb, pr = a["pads"]
    xb, yb = H * W * C, OH * OW * O
    if mve:
        if kind == "gemm":
            return _mve_conv(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
                             w, bias, m, s, xzp, yzp, lo, hi, xb, yb)
        if conv_kind(g, n) != "dw":
            # Helium has no lane-wise 32-bit multiply-accumulate: the DSP 3x3 kernel
            # (SMLAD on pairs of taps) is faster where it applies, this one is general
            return _mve_dw(k, N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, w, bias, m, s,
                           xzp, yzp, lo, hi, xb, yb)
    table, zp_left = requant_table(m, s, yzp)
    if kind == "gemm":
        return _conv_gemm(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
                          w, bias, table, zp_left, xzp, lo, hi, xb, yb)
    return _dw3x3(k, N, H, W, C, OH, OW, sh, pt, pl, w, bias, table, zp_left, xzp, lo, hi,
                  xb, yb)


def _conv_gemm(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
               w, bias, table, zp_left, xzp, lo, hi, xb, yb):
    K = KH * KW * C
    n4 = (K + 3) // 4
    O2 = O + (O & 1)
    wk = _pad_to(_pad_to(w.reshape(O, K), 4 * n4, axis=1), O2)
    # fold the input offset: padded taps read the zero point (im2col)
    fb = wrap32(bias - xzp * w.reshape(O, K).sum(axis=1))
    # channel pairs, groups of four K: [O2/2][n4][2][4]
    lay = wk.reshape(O2 // 2, 2, n4, 4).transpose(0, 2, 1, 3)
    direct = KH == 1 and KW == 1 and max(pt, pl, pb, pr) == 0 and C % 4 == 0
    scratch = (DIRECT_SCRATCH_PER_GROUP if direct else CONV_SCRATCH_PER_GROUP) * n4
    s0 = k.scratch(scratch)
    fused = k.node.attrs.get("fused_add")
    if direct and sh == 1 and sw == 1 and OH == H and OW == W and not fused:
        k.allow_inplace(0, 0, "pixels")
    args = ", ".join(str(v) for v in (H, W, C, OH, OW, O, KH, KW, sh, sw, dh, dw, pt, pl,
                                      int(direct), xzp, zp_left, lo, hi))
    pre = ""
    if fused:
        skip_i = fused["skip_input"]
        pre = _add_struct(k, fused)
        add = f"x{skip_i} + b * {yb}, &{k.function('add')}"
        k.allow_inplace(skip_i, 0, "same")
    else:
        add = "(const int8_t*)0, (const edgec_add_t*)0"
    call = (f"edgec_dsp_conv(x0 + b * {xb}, y0 + b * {yb}, (int32_t*){s0}, "
            f"{k.const(lay.reshape(-1), 'int8', 'w')}, {k.const(_pad_to(fb, O2), 'int32', 'b')}, "
            f"{_rq_args(k, table, O2)}, {args}, {add});")
    k.need("dsp_s8")
    return pre + _batch(N, call)


def _add_struct(k, fused) -> str:
    """The fused ADD's constants as a local ``edgec_add_t add``."""
    g = k.g
    node = fused["node"]
    ta, tb, rq, fast, zp, lo, hi = add_tables(g, node)
    tv, ts = (ta, tb) if fused["conv_operand"] == 0 else (tb, ta)
    return (_lut(k, tv, "lut_v") + _lut(k, ts, "lut_s") +
            f"  static const edgec_add_t {k.function('add')} = {{&{k.function('lut_v')}, "
            f"&{k.function('lut_s')}, {k.const(rq, 'int32', 'arq')}, {fast}, {zp}, {lo}, {hi}}};\n")


def lut_form(t):
    """(a, b, k, d) with t[i] == a + ((i * b) >> k) + d[i] for i < 256, d int8 and
    every step in int32, or None: a table of 256 int32 as a line plus an int8
    correction (``edgec_lut_t``)."""
    t = np.asarray(t, np.int64)
    i = np.arange(256, dtype=np.int64)
    a = int(t[0])
    slope = (int(t[255]) - a) / 255.0
    for sh in range(16, -1, -1):
        b = int(round(slope * (1 << sh)))
        if 255 * abs(b) >= (1 << 31):
            continue
        line = a + ((i * b) >> sh)
        d = t - line
        if d.min() >= -128 and d.max() <= 127 and np.abs(line).max() < (1 << 31):
            return a, b, sh, d
    return None


def _lut(k, t, name: str) -> str:
    """A local ``static const edgec_lut_t`` of table t (256 values), named
    ``k.function(name)`` (a symbol of the layer), its data ``<that>_tab``."""
    form = lut_form(t)
    sym = k.function(name)
    if form is None:
        return f"  static const edgec_lut_t {sym} = {{{k.const(t, 'int32', name + '_tab')}, 0, 0, 0, 0}};\n"
    a, b, sh, d = form
    return f"  static const edgec_lut_t {sym} = {{0, {k.const(d, 'int8', name + '_tab')}, {a}, {b}, {sh}}};\n"


def _mve_tables(k, m, s, n):
    m = np.asarray(m, np.int64)
    s = np.asarray(s, np.int64)
    return (k.const(_pad_to(m, n), "int32", "mult"), k.const(_pad_to(np.maximum(s, 0), n), "int32", "lsh"),
            k.const(_pad_to(np.minimum(s, 0), n), "int32", "rsh"))


def _mve_conv(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
              w, bias, m, s, xzp, yzp, lo, hi, xb, yb):
    K = KH * KW * C
    K16 = (K + 15) // 16 * 16
    O4 = (O + 3) // 4 * 4
    wk = _pad_to(_pad_to(w.reshape(O, K), K16, axis=1), O4)
    fb = wrap32(bias - xzp * w.reshape(O, K).sum(axis=1))
    direct = KH == 1 and KW == 1 and max(pt, pl, pb, pr) == 0
    s0 = k.scratch(K16 + O)
    fused = k.node.attrs.get("fused_add")
    if direct and sh == 1 and sw == 1 and OH == H and OW == W and not fused:
        k.allow_inplace(0, 0, "pixels")
    mult, lsh, rsh = _mve_tables(k, m, s, O4)
    args = ", ".join(str(v) for v in (H, W, C, OH, OW, O, KH, KW, sh, sw, dh, dw, pt, pl,
                                      int(direct), xzp, yzp, lo, hi))
    pre = ""
    if fused:
        skip_i = fused["skip_input"]
        pre = _add_struct(k, fused)
        add = f"x{skip_i} + b * {yb}, &{k.function('add')}"
        k.allow_inplace(skip_i, 0, "same")
    else:
        add = "(const int8_t*)0, (const edgec_add_t*)0"
    call = (f"edgec_mve_conv(x0 + b * {xb}, y0 + b * {yb}, (int8_t*){s0}, "
            f"{k.const(wk.reshape(-1), 'int8', 'w')}, {k.const(_pad_to(fb, O4), 'int32', 'b')}, "
            f"{mult}, {lsh}, {rsh}, {args}, {add});")
    k.need("dsp_s8")
    k.need("mve_s8")
    return pre + _batch(N, call)


def _mve_dw(k, N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, w, bias, m, s, xzp, yzp,
            lo, hi, xb, yb):
    C4 = (C + 3) // 4 * 4
    wt = _pad_to(w.reshape(C, KH * KW).T, C4, axis=1)  # [KH*KW][C4]
    mult, lsh, rsh = _mve_tables(k, m, s, C4)
    args = ", ".join(str(v) for v in (H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, -xzp, yzp,
                                      lo, hi))
    call = (f"edgec_mve_dw(x0 + b * {xb}, y0 + b * {yb}, {k.const(wt.reshape(-1), 'int8', 'w')}, "
            f"{k.const(_pad_to(wrap32(bias), C4), 'int32', 'b')}, {mult}, {lsh}, {rsh}, {args});")
    k.need("dsp_s8")
    k.need("mve_s8")
    return _batch(N, call)


def _dw3x3(k, N, H, W, C, OH, OW, st, pt, pl, w, bias, table, zp_left, xzp, lo, hi, xb, yb):
    OWe = OW + (OW & 1)
    Wp = max(pl + W, (OWe + 2) if st == 1 else (2 * OWe + 2))
    Wp += Wp & 1
    Hp = max(pt + H, (OH - 1) * st + 3)
    # w: [C, 3, 3, 1] as int8 [C][9]; the kernel makes the 16-bit pairs per channel
    wq = w.reshape(C, 9)
    s0 = k.scratch(2 * Hp * Wp + 4 * OWe)
    if st == 1 and OH == H and OW == W:
        k.allow_inplace(0, 0, "same")
    args = ", ".join(str(v) for v in (H, W, C, OH, OW, st, pt, pl, Hp, Wp, -xzp, zp_left, lo, hi))
    call = (f"edgec_dsp_dw3x3(x0 + b * {xb}, y0 + b * {yb}, (int16_t*){s0}, "
            f"{k.const(wq.reshape(-1), 'int8', 'w')}, {k.const(wrap32(bias), 'int32', 'b')}, "
            f"{_rq_args(k, table, C)}, {args});")
    k.need("dsp_s8")
    return _batch(N, call)


def _batch(N: int, call: str) -> str:
    if N == 1:
        return "  {\n    const int b = 0;\n    " + call + "\n  }\n"
    return f"  for (int b = 0; b < {N}; ++b) {{\n    {call}\n  }}\n"


# --- FULLY_CONNECTED ----------------------------------------------------------------

def fully_connected(k, M, N, K, m, s) -> str | None:
    g, n = k.g, k.node
    if int(quant_of(g, n.inputs[1]).zero_point[0]) != 0:
        return None
    _, xzp = quant_of(g, n.inputs[0]).scalar()
    ys, yzp = quant_of(g, n.outputs[0]).scalar()
    lo, hi = act_range_quant(n.attrs.get("act"), ys, yzp)
    if mve_wanted(k.options):
        w = k.tin(1).data.astype(np.int64)
        bias = k.tin(2).data.astype(np.int64) if k.has_input(2) else np.zeros(N, np.int64)
        K16 = (K + 15) // 16 * 16
        N4 = (N + 3) // 4 * 4
        fb = wrap32(bias - xzp * w.sum(axis=1))
        mult, lsh, rsh = _mve_tables(k, m, s, N4)
        k.need("dsp_s8")
        k.need("mve_s8")
        return (f"  edgec_mve_fc(x0, y0, {k.const(_pad_to(_pad_to(w, K16, axis=1), N4).reshape(-1), 'int8', 'w')}, "
                f"{k.const(_pad_to(fb, N4), 'int32', 'b')}, {mult}, {lsh}, {rsh}, {M}, {N}, {K}, "
                f"{yzp}, {lo}, {hi});\n")
    if K % 4:
        return None
    rt = requant_table(m, s, yzp)
    if rt is None:
        return None
    table, zp_left = rt
    w = k.tin(1).data.astype(np.int64)
    bias = k.tin(2).data.astype(np.int64) if k.has_input(2) else np.zeros(N, np.int64)
    fb = wrap32(bias - xzp * w.sum(axis=1))
    N4 = (N + 3) // 4 * 4
    lay = _pad_to(w, N4).reshape(N4 // 4, 4, K // 4, 4).transpose(0, 2, 1, 3)
    call = (f"edgec_dsp_fc(x0, y0, {k.const(lay.reshape(-1), 'int8', 'w')}, "
            f"{k.const(_pad_to(fb, N4), 'int32', 'b')}, {_rq_args(k, table, N4)}, "
            f"{M}, {N}, {K}, {zp_left}, {lo}, {hi});")
    k.need("dsp_s8")
    return "  " + call + "\n"


# --- pooling ------------------------------------------------------------------------

def global_avgpool(k, N, C, H, W, OH, OW, lo, hi) -> str | None:
    a = k.node.attrs
    if a["layout"] != "NHWC" or OH != 1 or OW != 1 or H * W > 256 or \
            list(a["kernel"]) != [H, W] or max(a["pads"]) != 0:
        return None
    k.need("dsp_s8")
    body = f"edgec_dsp_global_avgpool(x0 + b * {H * W * C}, y0 + b * {C}, {H * W}, {C}, {lo}, {hi});"
    return _batch(N, body)


# --- quantized ADD / SUB (tables) ------------------------------------------------------

def add_tables(g, n):
    """Constants of ``edgec_add_s8`` for an int8 Add/Sub node: the per-input
    rescaling of TFLite Micro's ADD as two 256-entry tables, then the output
    requantization ({M, H, S} and fast=1 when :func:`requant_table` applies,
    else {M, shift, 0} for edgec_mbqm)."""
    from ..ir import qmath
    from .binary import add_params
    p = add_params(g, n)
    v = np.arange(-128, 128, dtype=np.int64)
    ta = qmath.mul_by_quantized_multiplier((v + p["in1_offset"]) << p["left_shift"], p["m1"], p["s1"])
    tb = qmath.mul_by_quantized_multiplier((v + p["in2_offset"]) << p["left_shift"], p["m2"], p["s2"])
    if n.op == "Sub":
        tb = -tb
    so, zo = quant_of(g, n.outputs[0]).scalar()
    lo, hi = act_range_quant(n.attrs.get("act"), so, zo)
    rt = requant_table([p["mo"]], [p["so"]], zo)
    if rt is not None:
        M, H = (int(v) for v in rt[0][0])
        rq, zp = [M, H, requant_shift(H)], rt[1]
        fast = 1
    else:
        rq, zp, fast = np.array([p["mo"], p["so"], 0], np.int64), zo, 0
    return wrap32(ta), wrap32(tb), np.asarray(rq, np.int64), fast, zp, lo, hi


def add(k) -> str | None:
    """Elementwise int8 Add/Sub of same-shaped tensors (speed: tables, see
    :func:`lut_form`; portable
    C, so on every target but with ``--kernels plain``)."""
    g, n = k.g, k.node
    shape = k.tout().shape
    if k.tin(0).shape != shape or k.tin(1).shape != shape or k.optimize != "speed" or \
            k.options.get("kernels", "auto") == "plain":
        return None
    ta, tb, rq, fast, zp, lo, hi = add_tables(g, n)
    k.need("dsp_s8")
    if k.tin(0).nbytes == k.tout().nbytes:
        k.allow_inplace(0, 0, "same")
        k.allow_inplace(1, 0, "same")
    return (_lut(k, ta, "lut_a") + _lut(k, tb, "lut_b") +
            f"  edgec_add_s8({k.x(0)}, {k.x(1)}, y0, {k.tout().size}, &{k.function('lut_a')}, "
            f"&{k.function('lut_b')}, "
            f"{k.const(rq, 'int32', 'rq')}, {fast}, {zp}, {lo}, {hi});\n")
