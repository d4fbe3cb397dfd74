"""int8 kernels for cores with the Arm DSP extension (Cortex-M4, M7, M33, M55).

The kernels themselves are C in ``templates/runtime/dsp_s8.c`` (inline
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

from ..ir.errors import EdgecError
from ._requant import requant_reference, requant_shift, requant_table, wrap32  # noqa: F401 (re-exported)
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

def conv_kind(cp, mve: bool = False) -> str | None:
    """``gemm`` / ``dw`` when an int8 NHWC Conv (``cp``: its
    :class:`edgec.ops.conv.ConvParams`) has a DSP (``mve``: Helium) kernel, else None
    (the node's layout and types are :func:`edgec.ops.conv.simd_kind`'s to check)."""
    if not mve and requant_table(cp.m, cp.s, 0) is None:
        return None
    if cp.group == 1:
        return "gemm"
    if cp.fused or not (cp.group == cp.C and cp.Cg == 1 and cp.O == cp.C):
        return None
    if mve:
        return "dw"
    if cp.KH == 3 and cp.KW == 3 and cp.sh == cp.sw and cp.sh in (1, 2) and cp.dh == 1 and cp.dw == 1:
        return "dw"
    return None


def conv(k, cp, kind: str, mve: bool, w, bias, add=None) -> str:
    """The DSP / Helium kernel ``kind`` (:func:`conv_kind`) of an int8 Conv: ``w``
    its OHWI weights and ``bias`` its bias (int64 arrays), ``add`` the tables of an
    ADD fused into it (:func:`edgec.ops.binary.add_tables`)."""
    N, H, W, C, O, KH, KW, Cg, OH, OW = cp.geometry
    xzp, yzp, lo, hi = -cp.input_offset, cp.output_offset, cp.act_lo, cp.act_hi
    m, s = cp.m, cp.s
    sh, sw, dh, dw, pt, pl, pb, pr = cp.sh, cp.sw, cp.dh, cp.dw, cp.pt, cp.pl, cp.pb, cp.pr
    xb, yb = H * W * C, OH * OW * O
    if mve:
        if kind == "gemm":
            return _mve_conv(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
                             w, bias, m, s, xzp, yzp, lo, hi, xb, yb, add)
        if conv_kind(cp) != "dw":
            # Helium has no lane-wise 32-bit multiply-accumulate: the DSP 3x3 kernel
            # (SMLAD on pairs of taps) is faster where it applies, this one is general
            return _mve_dw(k, N, H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, w, bias, m, s,
                           xzp, yzp, lo, hi, xb, yb)
    table, zp_left = requant_table(m, s, yzp)
    if kind == "gemm":
        return _conv_gemm(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
                          w, bias, table, zp_left, xzp, lo, hi, xb, yb, add)
    return _dw3x3(k, N, H, W, C, OH, OW, sh, pt, pl, w, bias, table, zp_left, xzp, lo, hi,
                  xb, yb)


def _conv_gemm(k, N, H, W, C, O, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr,
               w, bias, table, zp_left, xzp, lo, hi, xb, yb, add_tabs):
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
        pre = _add_struct(k, fused, add_tabs)
        add = f"x{skip_i} + b * {yb}, &{k.function('add')}"
        k.allow_inplace(skip_i, 0, "same")
    else:
        add = "(const int8_t*)0, (const edgec_add_t*)0"
    call = (f"edgec_dsp_conv(x0 + b * {xb}, y0 + b * {yb}, (int32_t*){s0}, "
            f"{k.const(lay.reshape(-1), 'int8', 'w')}, {k.const(_pad_to(fb, O2), 'int32', 'b')}, "
            f"{_rq_args(k, table, O2)}, {args}, {add});")
    k.need("dsp_s8")
    return pre + _batch(N, call)


def _add_struct(k, fused, tables) -> str:
    """The fused ADD's constants (``tables``: :func:`edgec.ops.binary.add_tables`)
    as a local ``edgec_add_t add``."""
    ta, tb, rq, fast, zp, lo, hi = tables
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
              w, bias, m, s, xzp, yzp, lo, hi, xb, yb, add_tabs):
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
        pre = _add_struct(k, fused, add_tabs)
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

def add_applies(k) -> bool:
    """Whether an int8 Add/Sub gets :func:`add` (same-shaped tensors, speed, not
    ``--kernels plain``; portable C, so on every target)."""
    shape = k.tout().shape
    return k.tin(0).shape == shape and k.tin(1).shape == shape and k.optimize == "speed" and \
        k.options.get("kernels", "auto") != "plain"


def add(k, tables) -> str:
    """Elementwise int8 Add/Sub of same-shaped tensors (:func:`add_applies`) with the
    tables of :func:`edgec.ops.binary.add_tables` (see :func:`lut_form`)."""
    ta, tb, rq, fast, zp, lo, hi = tables
    k.need("dsp_s8")
    if k.tin(0).nbytes == k.tout().nbytes:
        k.allow_inplace(0, 0, "same")
        k.allow_inplace(1, 0, "same")
    return (_lut(k, ta, "lut_a") + _lut(k, tb, "lut_b") +
            f"  edgec_add_s8({k.x(0)}, {k.x(1)}, y0, {k.tout().size}, &{k.function('lut_a')}, "
            f"&{k.function('lut_b')}, "
            f"{k.const(rq, 'int32', 'rq')}, {fast}, {zp}, {lo}, {hi});\n")
