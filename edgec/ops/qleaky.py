"""QLeakyRelu: TFLite's int8 LEAKY_RELU, as TFLite Micro computes it.

IR op ``QLeakyRelu`` with attribute ``alpha`` (float32).  Two quantized
multipliers, from doubles: ``s_in / s_out`` (identity) and ``s_in * alpha / s_out``;
per element ``v = x - zp_in``, then ``zp_out + MultiplyByQuantizedMultiplier(v, ...)``
with the identity multiplier when ``v >= 0`` and the alpha one otherwise, clamped
to int8.
"""
from __future__ import annotations

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError
from . import OutSpec, Op, register
from ._util import check_int8_per_tensor, quant_of


def params(g, n) -> dict:
    si, zi = quant_of(g, n.inputs[0]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    si, so = float(np.float32(si)), float(np.float32(so))
    alpha = float(np.float32(n.attrs["alpha"]))
    m_id, s_id = qmath.quantize_multiplier(si / so)
    m_a, s_a = qmath.quantize_multiplier(si * alpha / so)
    return {"zi": zi, "zo": zo, "m_id": m_id, "s_id": s_id, "m_a": m_a, "s_a": s_a}


class QLeakyRelu(Op):
    name = "QLeakyRelu"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if not np.isfinite(np.float32(n.attrs["alpha"])):
            raise EdgecError(f"LEAKY_RELU alpha {n.attrs['alpha']} (the int8 kernel needs a finite one)")
        return [OutSpec(tuple(x.shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "LEAKY_RELU")

    def reference(self, g, n, xs):
        p = params(g, n)
        v = xs[0].astype(np.int64) - p["zi"]
        pos = qmath.mul_by_quantized_multiplier(v, p["m_id"], p["s_id"])
        neg = qmath.mul_by_quantized_multiplier(v, p["m_a"], p["s_a"])
        y = np.where(v >= 0, pos, neg) + p["zo"]
        return [np.clip(y, -128, 127).astype(np.int8)]

    def emit(self, k):
        p = params(k.g, k.node)
        size = k.tin(0).size
        return (f"  for (int i = 0; i < {size}; ++i) {{\n"
                f"    const int32_t v = (int32_t){k.x(0)}[i] - ({p['zi']});\n"
                f"    int32_t q = (v >= 0 ? edgec_mbqm(v, {p['m_id']}, {p['s_id']})\n"
                f"                        : edgec_mbqm(v, {p['m_a']}, {p['s_a']})) + {p['zo']};\n"
                f"    y0[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));\n"
                f"  }}\n")


register(QLeakyRelu)
