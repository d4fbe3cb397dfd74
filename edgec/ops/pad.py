"""Pad with a constant, or by reflecting, repeating the edge or wrapping around.
int8 constant padding pads with the output zero point unless a value is given."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_literal
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import coalesce, loop_nest, strides


@register
class Pad(Op):
    name = "Pad"
    quantize = "follow"

    def _pads(self, g, n):
        x = g.tensors[n.inputs[0]]
        p = [int(v) for v in n.attrs["pads"]]
        if len(p) != 2 * x.rank:
            raise EdgecError(f"Pad: {len(p)} pad values for rank {x.rank}")
        return p[:x.rank], p[x.rank:]

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        b, e = self._pads(g, n)
        shape = tuple(d + a + c for d, a, c in zip(x.shape, b, e))
        if any(d <= 0 for d in shape):
            raise EdgecError(f"Pad: output shape {list(shape)} is empty")
        return [OutSpec(shape, x.dtype, x.quant)]

    def check(self, g, n):
        b, e = self._pads(g, n)
        if min(b + e) < 0:
            return "Pad with negative pads (cropping)"
        if n.attrs.get("mode", "constant") not in ("constant", "reflect", "edge", "wrap"):
            return f"Pad mode {n.attrs.get('mode')}"
        return None

    def _value(self, g, n):
        x = g.tensors[n.inputs[0]]
        v = n.attrs.get("value")
        if v is None:
            v = int(x.quant.zero_point[0]) if x.quant is not None else 0
        return v

    def reference(self, g, n, xs):
        b, e = self._pads(g, n)
        x = xs[0]
        mode = n.attrs.get("mode", "constant")
        width = list(zip(b, e))
        if min(b + e) < 0:
            sl = tuple(slice(max(-a, 0), d - max(-c, 0)) for a, c, d in zip(b, e, x.shape))
            x = x[sl]
            width = [(max(a, 0), max(c, 0)) for a, c in width]
        if mode == "constant":
            return [np.pad(x, width, constant_values=np.array(self._value(g, n)).astype(x.dtype))]
        return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])]

    def emit(self, k):
        g, n = k.g, k.node
        x, y = k.tin(0), k.tout()
        b, e = self._pads(g, n)
        mode = n.attrs.get("mode", "constant")
        if mode == "constant":
            val = c_literal(self._value(g, n), y.dtype)
            sy = strides(y.shape)
            inner = x.shape[-1] if b[-1] == 0 and e[-1] == 0 else 1
            lines = [f"  for (int i = 0; i < {y.size}; ++i) y0[i] = ({dtypes.c_type(y.dtype)}){val};\n"]
            off = sum(bi * s for bi, s in zip(b, sy))
            shape, (sx, so) = coalesce(x.shape, [strides(x.shape), sy])
            lines.append("  {\n" + loop_nest(shape, {"ix": sx, "iy": so},
                                              f"y0[{off} + {{iy}}] = x0[{{ix}}];", "    ") + "\n  }\n")
            return "".join(lines)
        # reflect / edge: compute the source index per dimension
        sx = strides(x.shape)
        sy = strides(y.shape)
        lines = ["  for (int i = 0; i < %d; ++i) {\n    int rem = i;\n    int src = 0;\n" % y.size]
        for d in range(y.rank):
            lines.append(f"    {{ int c = rem / {sy[d]}; rem -= c * {sy[d]}; c -= {b[d]};\n")
            if mode == "edge":
                lines.append(f"      c = c < 0 ? 0 : (c >= {x.shape[d]} ? {x.shape[d] - 1} : c);\n")
            elif mode == "wrap":
                lines.append(f"      c = ((c % {x.shape[d]}) + {x.shape[d]}) % {x.shape[d]};\n")
            else:
                lines.append(f"      if ({x.shape[d]} > 1) {{ while (c < 0 || c >= {x.shape[d]}) "
                             f"c = c < 0 ? -c : {2 * x.shape[d] - 2} - c; }} else c = 0;\n")
            lines.append(f"      src += c * {sx[d]}; }}\n")
        lines.append("    y0[i] = x0[src];\n  }\n")
        return "".join(lines)


@onnx_op("Pad")
def _onnx_pad(ctx, node):
    x = ctx.inp(node, 0)
    r = ctx.t(x).rank
    if ctx.opset < 11:
        pads = ctx.attr(node, "pads")
        value = ctx.attr(node, "value", 0.0)
    else:
        pads = ctx.const_input(node, 1, "pads")
        v = ctx.const_input(node, 2, "value") if ctx.inp(node, 2) else None
        value = None if v is None else v.reshape(-1)[0].item()
        axes = ctx.const_input(node, 3, "axes") if ctx.inp(node, 3) else None
        if axes is not None:
            full = [0] * (2 * r)
            axes = [int(a) % r for a in axes.reshape(-1)]
            pv = [int(p) for p in np.asarray(pads).reshape(-1)]
            for j, a in enumerate(axes):
                full[a] = pv[j]
                full[a + r] = pv[j + len(axes)]
            pads = full
    mode = ctx.attr(node, "mode", "constant", ("constant", "reflect", "edge", "wrap"))
    if value is None:
        value = 0
    ctx.add("Pad", [x], [ctx.out(node)],
            {"pads": [int(p) for p in np.asarray(pads).reshape(-1)], "mode": mode, "value": value},
            node.name)


@tflite_op("PAD", "PADV2")
def _tfl_pad(ctx, op):
    ins = ctx.inputs(op)
    p = ctx.const(ins[1])
    if p is None:
        raise UnsupportedError(["PAD with computed paddings"])
    p = np.asarray(p).reshape(-1, 2)
    value = None
    if len(ins) > 2 and ins[2]:
        v = ctx.const(ins[2])
        value = None if v is None else v.reshape(-1)[0].item()
    ctx.add("Pad", [ins[0]], ctx.outputs(op),
            {"pads": [int(a) for a in p[:, 0]] + [int(b) for b in p[:, 1]], "mode": "constant",
             "value": value})
