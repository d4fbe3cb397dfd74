"""QMean: TFLite's int8 MEAN and SUM, as TFLite Micro computes them.

IR op ``QMean`` with attributes ``axes`` (sorted, non-negative), ``keepdims`` and
``sum`` (1: SUM, 0: MEAN).  TFLite Micro (the 2026 releases this project tests
against; older ones had special cases for a 4-D mean over H and W and for equal
input and output parameters) computes every int8 MEAN and SUM one way
(``QuantizedMeanOrSum``): the int32 sum of the raw values minus ``zp_in * count``,
times ``s_in / s_out`` as a quantized multiplier, with ``1 / count`` folded into
that multiplier for a mean (shifted left by ``floor(log2(count))``, at most 32 and
at most ``31 + shift``, then divided by the count, truncating), plus ``zp_out``,
clamped to int8.  The fuzzer checks it against the interpreter (edgec/fuzz).
"""
from __future__ import annotations

import numpy as np

from ..ir import qmath
from . import OutSpec, Op, register
from ._util import check_int8_per_tensor, loop_nest, prod, quant_of
from .reduce import out_shape, reduction_loops


def params(g, n) -> dict:
    """The integer constants of a QMean node (see the module doc)."""
    x = g.tensors[n.inputs[0]]
    si, zi = quant_of(g, n.inputs[0]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    axes = tuple(n.attrs["axes"])
    count = prod(x.shape[a] for a in axes)
    # TFLite: (double)input_scale / (double)output_scale, the scales being float32
    mult, shift = qmath.quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
    p = {"count": count, "zi": zi, "zo": zo, "mult": mult, "shift": shift}
    if not n.attrs.get("sum") and count > 0:
        sh = min(count.bit_length() - 1, 32, 31 + shift)
        p["mult"] = (mult << sh) // count  # sh >= 0: QuantizeMultiplier's shift is >= -31
        p["shift"] = shift - sh
    return p


class QMean(Op):
    name = "QMean"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        return [OutSpec(out_shape(x.shape, tuple(n.attrs["axes"]), n.attrs.get("keepdims", 0)), x.dtype)]

    def check(self, g, n):
        if g.tensors[n.inputs[0]].size == 0:
            return "MEAN / SUM of an empty tensor"
        return check_int8_per_tensor(g, n, "MEAN / SUM")

    def macs(self, g, n):
        return g.tensors[n.inputs[0]].size

    def reference(self, g, n, xs):
        p = params(g, n)
        axes = tuple(n.attrs["axes"])
        x = xs[0].astype(np.int64)
        s = qmath.wrap32((x - p["zi"]).sum(axis=axes))
        q = qmath.mul_by_quantized_multiplier(s, p["mult"], p["shift"]) + p["zo"]
        y = np.clip(q, -128, 127).astype(np.int8)
        return [y.reshape(out_shape(xs[0].shape, axes, n.attrs.get("keepdims", 0)))]

    def emit(self, k):
        g, n = k.g, k.node
        x = k.tin(0)
        p = params(g, n)
        axes = tuple(n.attrs["axes"])
        oshape, ox, oy, ishape, ix = reduction_loops(x.shape, axes)
        src = k.x(0)
        step = f"acc += (int32_t){src}[{{ix}} + {{jx}}] - ({p['zi']});"
        final = f"int32_t q = edgec_mbqm(acc, {p['mult']}, {p['shift']}) + {p['zo']};"
        body = "\n".join([
            "int32_t acc = 0;",
            loop_nest(ishape, {"jx": ix}, step, "", var="j"),
            final,
            "y0[{oy}] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));",
        ])
        return "  {\n" + loop_nest(oshape, {"ix": ox, "oy": oy}, body, "    ") + "\n  }\n"


register(QMean)
