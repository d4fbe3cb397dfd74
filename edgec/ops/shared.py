"""``--optimize size``: one generic kernel per operator type (templates/runtime/
ref_s8.c), its geometry and quantization passed at run time as a constant
int32 array per layer, instead of a kernel specialized into every layer.  For
flash-starved parts; the DSP kernels have a shared form of their own
(edgec/ops/dsp.py: the same C, not inlined)."""
from __future__ import annotations

from dataclasses import field, fields

import numpy as np


def packed(c: str):
    """A dataclass field that goes into a shared kernel's ``int32_t p[]``: the
    packed fields' order in the dataclass is their index in p[], ``c`` the name
    templates/runtime/ref_s8.c gives that index in the ``/* p: ... */`` table
    above the kernel (tests/test_ops_structure.py checks that both sides agree)."""
    return field(default=0, metadata={"p": c})


def p_names(cls) -> list[tuple[str, str]]:
    """(field name, C name) of a parameter dataclass's packed fields, in p[] order."""
    return [(f.name, f.metadata["p"]) for f in fields(cls) if "p" in f.metadata]


def pack(params) -> tuple[int, ...]:
    """The packed fields of a parameter dataclass, in p[] order."""
    return tuple(int(getattr(params, f)) for f, _ in p_names(type(params)))


def _params(k, values) -> str:
    return k.const(np.asarray([int(v) for v in values], np.int64), "int32", "p")


def _mult_shift(k, m, s, per_channel):
    m = np.asarray(m, np.int64)
    s = np.asarray(s, np.int64)
    if not per_channel:
        m, s = m[:1], s[:1]
    return k.const(m, "int32", "mult"), k.const(s, "int8", "shift")


def conv(k, cp, w: str, bias: str | None) -> str:
    """int8 Conv (``cp``: its :class:`edgec.ops.conv.ConvParams`; ``w`` and ``bias``
    the C names of its weights and bias): ``edgec_ref_conv`` with p[] packed from
    the dataclass's fields."""
    k.need("ref_s8")
    mult, shift = _mult_shift(k, cp.m, cp.s, cp.per_channel)
    p = _params(k, pack(cp))
    bias = bias or "(const int32_t*)0"
    return f"  edgec_ref_conv(x0, y0, {w}, {bias}, {mult}, {shift}, {p});\n"


def fully_connected(k, c, m, s) -> str:
    k.need("ref_s8")
    mult, shift = _mult_shift(k, m, s, c["per_channel"])
    p = _params(k, (c["M"], c["N"], c["K"], c["input_offset"], c["weight_offset"],
                    c["output_offset"], c["act_lo"], c["act_hi"], int(c["per_channel"])))
    bias = c["bias"] or "(const int32_t*)0"
    return f"  edgec_ref_fc(x0, y0, {c['w']}, {bias}, {mult}, {shift}, {p});\n"


def pool(k, c) -> str:
    k.need("ref_s8")
    xs, ys = c["xs"], c["ys"]
    p = _params(k, (c["N"], c["C"], c["H"], c["W"], c["OH"], c["OW"], c["kh"], c["kw"], c["sh"],
                    c["sw"], c["dh"], c["dw"], c["pt"], c["pl"], int(c["is_max"]),
                    int(c["count_include_pad"]), c["Hp"], c["Wp"], c["act_lo"], c["act_hi"],
                    xs["n"], xs["h"], xs["w"], xs["c"], ys["n"], ys["h"], ys["w"], ys["c"]))
    return f"  edgec_ref_pool(x0, y0, {p});\n"


def add(k, prm, lo, hi) -> str | None:
    """int8 Add/Sub of same-shaped tensors."""
    shape = k.tout().shape
    if k.tin(0).shape != shape or k.tin(1).shape != shape:
        return None
    k.need("ref_s8")
    p = _params(k, (k.tout().size, prm["in1_offset"], prm["in2_offset"], prm["left_shift"],
                    prm["m1"], prm["s1"], prm["m2"], prm["s2"], prm["mo"], prm["so"],
                    prm["out_offset"], lo, hi, int(k.node.op == "Sub")))
    k.allow_inplace(0, 0, "same")
    k.allow_inplace(1, 0, "same")
    return f"  edgec_ref_add({k.x(0)}, {k.x(1)}, y0, {p});\n"
