"""QElu: TFLite's int8 ELU, as TFLite Micro computes it.

TFLite Micro's ELU Prepare fills a 256-entry table from float32 arithmetic, and Eval looks
each element up.  For each int8 level ``v``: ``d = input_scale * (v - input_zp)``;
``t = exp(d) - 1`` for ``d < 0``, else ``d``; ``round(t * (1 / output_scale))`` (half away
from zero) plus the output zero point, truncated to int32 and clamped to int8.  Every step
is float32 (the scales as float32, ``1 / output_scale`` computed once, ``std::exp`` on a
float); numpy computes the same float32 steps here, ``exp`` in float64 rounded to float32
(the correctly rounded float ``exp``, which is what a C library's ``expf`` returns).
Quantizations whose scaled values leave int32 (the C conversion is undefined there, and
targets differ) are refused.

The kernel is LOGISTIC's table (:func:`edgec.ops.qlogistic.lut_kernel`): this same
reference evaluated on every level at compile time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_int8_per_tensor, quant_of
from .qlogistic import lut_kernel


@dataclass(frozen=True)
class EluParams:
    input_scale: float       # float32 values
    input_zero_point: int
    inverse_output_scale: float
    output_zero_point: int


def prepare(g, n) -> EluParams:
    in_scale, in_zp = quant_of(g, n.inputs[0]).scalar()
    out_scale, out_zp = quant_of(g, n.outputs[0]).scalar()
    p = EluParams(float(np.float32(in_scale)), int(in_zp),
                  float(np.float32(1) / np.float32(out_scale)), int(out_zp))
    rescaled = _rescaled(np.arange(-128, 128), p)
    if not np.all(np.abs(rescaled.astype(np.float64)) < 2.0 ** 31):
        raise EdgecError(f"ELU input scale {in_scale:g} over output scale {out_scale:g} puts values outside "
                         f"int32 (TFLite Micro's float to int conversion is undefined there)")
    return p


def _rescaled(levels, p: EluParams) -> np.ndarray:
    """``round(elu(d) / output_scale) + output_zp`` in float32, before the int32 conversion."""
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.float32(p.input_scale) * (np.asarray(levels, dtype=np.int64) - p.input_zero_point).astype(np.float32)
        e = np.exp(d.astype(np.float64)).astype(np.float32) - np.float32(1)
        t = np.where(d < np.float32(0), e, d).astype(np.float32)
        s = (t * np.float32(p.inverse_output_scale)).astype(np.float32)
        # std::round: half away from zero, exactly (in float64, where s + 1/2 does not round)
        s64 = s.astype(np.float64)
        r = np.trunc(s64 + np.copysign(0.5, s64)).astype(np.float32)
        return (r + np.float32(p.output_zero_point)).astype(np.float32)


def elu_int8(x: np.ndarray, p: EluParams) -> np.ndarray:
    """TFLite Micro's ELU table, applied to int8 values."""
    q = np.trunc(_rescaled(x, p).astype(np.float64))
    return np.clip(q, -128, 127).astype(np.int8)


class QElu(Op):
    name = "QElu"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if check_int8_per_tensor(g, n, "ELU") is None:
            prepare(g, n)             # refuses scales whose table leaves int32
        return [OutSpec(tuple(x.shape), x.dtype)]

    def check(self, g, n):
        return check_int8_per_tensor(g, n, "ELU")

    def reference(self, g, n, xs):
        return [elu_int8(xs[0], prepare(g, n))]

    def emit(self, k):
        return lut_kernel(k, elu_int8, prepare(k.g, k.node))


register(QElu)


@tflite_op("ELU", quantized=True)
def _tfl_elu_q(ctx, op):
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "int8":
        raise UnsupportedError([f"ELU[{x.dtype}]"])
    ctx.add("QElu", ctx.inputs(op)[:1], ctx.outputs(op))
