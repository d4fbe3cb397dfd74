"""Concat along one axis (any element type).  int8 inputs whose quantization
differs from the output's are requantized as TFLite Micro's CONCATENATION does."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes, qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import norm_axis, prod, tfl_activation


@register
class Concat(Op):
    name = "Concat"
    quantize = "compute"
    transpose_commutes = "concat"

    def infer(self, g, n):
        ts = [g.tensors[i] for i in n.inputs]
        r = ts[0].rank
        axis = norm_axis(n.attrs["axis"], r, "Concat")
        shape = list(ts[0].shape)
        for t in ts[1:]:
            if t.rank != r or t.dtype != ts[0].dtype or any(
                    a != b for i, (a, b) in enumerate(zip(t.shape, shape)) if i != axis):
                raise EdgecError(f"Concat: inputs {[list(t.shape) for t in ts]} do not fit along axis {axis}")
            shape[axis] += t.shape[axis]
        return [OutSpec(tuple(shape), ts[0].dtype, ts[0].quant)]

    def check(self, g, n):
        y = g.tensors[n.outputs[0]]
        if y.quant is not None and y.dtype == "int8":
            for i in n.inputs:
                q = g.tensors[i].quant
                if q is None or q.per_axis:
                    return "Concat[int8] with per-axis or missing quantization"
        return None

    def _requant(self, g, n, i):
        xq = g.tensors[n.inputs[i]].quant
        yq = g.tensors[n.outputs[0]].quant
        if yq is None or xq is None or xq == yq:
            return None
        si, zi = xq.scalar()
        so, zo = yq.scalar()
        m, s = qmath.quantize_multiplier(float(si) / float(so))
        return zi, zo, m, s

    def reference(self, g, n, xs):
        axis = norm_axis(n.attrs["axis"], xs[0].ndim, "Concat")
        parts = []
        for i, x in enumerate(xs):
            rq = self._requant(g, n, i) if g.tensors[n.outputs[0]].dtype == "int8" else None
            if rq:
                zi, zo, m, s = rq
                x = np.clip(qmath.mul_by_quantized_multiplier(x.astype(np.int64) - zi, m, s) + zo,
                            -128, 127).astype(np.int8)
            parts.append(x)
        return [np.concatenate(parts, axis=axis)]

    def emit(self, k):
        g, n = k.g, k.node
        y = k.tout()
        axis = norm_axis(n.attrs["axis"], y.rank, "Concat")
        outer = prod(y.shape[:axis])
        inner_y = prod(y.shape[axis:])
        if k.packed:
            return self._emit_packed(k, axis, outer, inner_y)
        lines = []
        off = 0
        for i in range(len(n.inputs)):
            t = k.tin(i)
            inner = prod(t.shape[axis:])
            rq = self._requant(g, n, i) if y.dtype == "int8" else None
            if rq:
                zi, zo, m, s = rq
                lines.append(
                    f"  for (int o = 0; o < {outer}; ++o)\n"
                    f"    for (int j = 0; j < {inner}; ++j) {{\n"
                    f"      int32_t q = edgec_mbqm((int32_t){k.x(i)}[o * {inner} + j] - {zi}, {m}, {s}) + {zo};\n"
                    f"      q = q < -128 ? -128 : (q > 127 ? 127 : q);\n"
                    f"      y0[o * {inner_y} + {off} + j] = (int8_t)q;\n    }}\n")
            else:
                lines.append(
                    f"  for (int o = 0; o < {outer}; ++o)\n"
                    f"    memcpy(y0 + o * {inner_y} + {off}, {k.x(i)} + o * {inner}, {inner * t.nbytes // max(t.size, 1)}u);\n")
            off += inner
        return "".join(lines)

    def _emit_packed(self, k, axis, outer, inner_y):
        """Thousands of inputs (``k.packed``, addresses from ``k.packed_input``): one loop
        over tables of offsets, sizes and requantization parameters in flash, not one
        loop per input (C compilers are superlinear in those).  Constant inputs keep a
        statement each."""
        g, n = k.g, k.node
        y = k.tout()
        item = y.nbytes // max(y.size, 1)
        live, off, inner, rqs, lines = [], [], [], [], []
        pos = 0
        for i in range(len(n.inputs)):
            t = k.tin(i)
            w = prod(t.shape[axis:])
            rq = self._requant(g, n, i) if y.dtype == "int8" else None
            if t.is_const:
                x = k.x(i)
                if rq:
                    zi, zo, m, s = rq
                    lines.append(
                        f"  for (int o = 0; o < {outer}; ++o)\n"
                        f"    for (int j = 0; j < {w}; ++j) {{\n"
                        f"      int32_t q = edgec_mbqm((int32_t){x}[o * {w} + j] - {zi}, {m}, {s}) + {zo};\n"
                        f"      q = q < -128 ? -128 : (q > 127 ? 127 : q);\n"
                        f"      y0[o * {inner_y} + {pos} + j] = (int8_t)q;\n    }}\n")
                else:
                    lines.append(f"  for (int o = 0; o < {outer}; ++o)\n"
                                 f"    memcpy(y0 + o * {inner_y} + {pos}, {x} + o * {w}, {w * item}u);\n")
            else:
                live.append(i)
                off.append(pos)
                inner.append(w)
                rqs.append(rq)
            pos += w
        offs = k.const(np.array(off, np.int32), "int32", "off")
        ws = k.const(np.array(inner, np.int32), "int32", "len")
        ty = dtypes.c_type(y.dtype)
        head = (f"  for (int i = 0; i < {len(live)}; ++i)\n"
                f"    for (int o = 0; o < {outer}; ++o) {{\n"
                f"      const {ty}* x = (const {ty}*){k.packed_input('i')} + o * {ws}[i];\n"
                f"      {ty}* yo = y0 + o * {inner_y} + {offs}[i];\n")
        if not any(rqs):
            lines.append(head + f"      memcpy(yo, x, (size_t){ws}[i] * {item}u);\n    }}\n")
            return "".join(lines)
        zo = next(r[1] for r in rqs if r)
        zi, m, s = ([(r[j] if r else 0) for r in rqs] for j in (0, 2, 3))
        flag = k.const(np.array([1 if r else 0 for r in rqs], np.int8), "int8", "rq")
        zis = k.const(np.array(zi, np.int32), "int32", "zi")
        ms = k.const(np.array(m, np.int32), "int32", "m")
        ss = k.const(np.array(s, np.int32), "int32", "s")
        lines.append(
            head +
            f"      if (!{flag}[i]) {{\n"
            f"        memcpy(yo, x, (size_t){ws}[i]);\n"
            f"        continue;\n      }}\n"
            f"      for (int j = 0; j < {ws}[i]; ++j) {{\n"
            f"        int32_t q = edgec_mbqm((int32_t)x[j] - {zis}[i], {ms}[i], (int){ss}[i]) + {zo};\n"
            f"        q = q < -128 ? -128 : (q > 127 ? 127 : q);\n"
            f"        yo[j] = (int8_t)q;\n      }}\n    }}\n")
        return "".join(lines)


@onnx_op("Concat")
def _onnx_concat(ctx, node):
    ins = [ctx.inp(node, i) for i in range(ctx.n_inputs(node))]
    ins = [i for i in ins if i and ctx.t(i).size > 0] or ins[:1]
    ctx.add("Concat", ins, [ctx.out(node)], {"axis": int(ctx.attr(node, "axis"))}, node.name)


@tflite_op("CONCATENATION")
def _tfl_concat(ctx, op):
    o = ctx.options(op, "ConcatenationOptions")
    if tfl_activation(o.FusedActivationFunction()) is not None:
        raise UnsupportedError(["CONCATENATION with a fused activation"])
    ctx.add("Concat", ctx.inputs(op), ctx.outputs(op), {"axis": int(o.Axis())})


@tflite_op("PACK")
def _tfl_pack(ctx, op):
    """PACK (stack along a new axis): each input reshaped with a 1 at ``axis``, then
    concatenated.  TFLite Micro copies int8 values as they are, so int8 inputs must
    share the output's quantization."""
    ins, out = ctx.inputs(op), ctx.outputs(op)[0]
    o = ctx.options(op, "PackOptions")
    rank = ctx.t(ins[0]).rank
    axis = int(o.Axis()) if o is not None else 0
    axis = axis + rank + 1 if axis < 0 else axis
    if not 0 <= axis <= rank:
        raise EdgecError(f"PACK: axis {axis} for inputs of rank {rank}")
    if o is not None and o.ValuesCount() != len(ins):
        raise EdgecError(f"PACK: values_count {o.ValuesCount()} for {len(ins)} inputs")
    yq = ctx.t(out).quant
    if ctx.t(out).dtype == "int8" and any(ctx.t(i).quant != yq for i in ins):
        raise UnsupportedError(["PACK of int8 inputs with different quantization"])
    parts = []
    for i in ins:
        shape = list(ctx.t(i).shape)
        shape.insert(axis, 1)
        r = ctx.tmp(i + "_packed")
        ctx.add("Reshape", [i], [r], {"shape": shape})
        parts.append(r)
    ctx.add("Concat", parts, [out], {"axis": axis})
