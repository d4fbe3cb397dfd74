"""Transpose: a permutation of axes (any element type, int8 keeps its quantization)."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import coalesce, loop_nest, strides


@register
class Transpose(Op):
    name = "Transpose"
    quantize = "follow"

    def _perm(self, g, n):
        x = g.tensors[n.inputs[0]]
        perm = n.attrs.get("perm")
        if perm is None:
            perm = list(range(x.rank))[::-1]
        perm = [int(p) for p in perm]
        if sorted(perm) != list(range(x.rank)):
            raise EdgecError(f"Transpose: {perm} is not a permutation of {x.rank} axes")
        return perm

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        perm = self._perm(g, n)
        q = x.quant
        if q is not None and q.axis is not None:
            q = type(q)(q.scale, q.zero_point, perm.index(q.axis))
        return [OutSpec(tuple(x.shape[p] for p in perm), x.dtype, q)]

    def reference(self, g, n, xs):
        return [np.ascontiguousarray(np.transpose(xs[0], self._perm(g, n)))]

    def emit(self, k):
        x = k.tin(0)
        perm = self._perm(k.g, k.node)
        out_shape = [x.shape[p] for p in perm]
        sx = strides(x.shape)
        src = [sx[p] for p in perm]
        shape, (si, so) = coalesce(out_shape, [src, strides(out_shape)])
        body = "y0[{io}] = x0[{ii}];"
        return "  {\n" + loop_nest(shape, {"ii": si, "io": so}, body, "    ") + "\n  }\n"


@onnx_op("Transpose")
def _onnx_transpose(ctx, node):
    ctx.add("Transpose", [ctx.inp(node, 0)], [ctx.out(node)],
            {"perm": ctx.attr(node, "perm")}, node.name)


@tflite_op("TRANSPOSE")
def _tfl_transpose(ctx, op):
    ins = ctx.inputs(op)
    perm = ctx.const(ins[1])
    if perm is None:
        from ..ir.errors import UnsupportedError
        raise UnsupportedError(["TRANSPOSE with a computed permutation"])
    ctx.add("Transpose", [ins[0]], ctx.outputs(op), {"perm": [int(p) for p in perm]})
