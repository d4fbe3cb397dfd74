"""BatchNormalization (inference): y = (x - mean) / sqrt(var + eps) * scale + bias,
per channel (axis 1 for NCHW, last axis for NHWC).  Usually folded into the
preceding convolution by :func:`edgec.passes.fuse.fold_batchnorm`; otherwise it
runs as a per-channel multiply-add with constants precomputed in double."""
from __future__ import annotations

import numpy as np

from ..ir.errors import EdgecError, Reason, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import check_per_channel, prod


def _scale_shift(g, n):
    scale, bias, mean, var = [g.tensors[i].data.astype(np.float64) for i in n.inputs[1:5]]
    k = scale / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
    return k, bias - mean * k


@register
class BatchNormalization(Op):
    name = "BatchNormalization"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.rank == 0:
            raise EdgecError("BatchNormalization of a scalar")
        C = x.shape[self._axis(g, n)]
        for i, what in enumerate(("scale", "bias", "mean", "var"), 1):
            check_per_channel(g, n, i, C, what)
        return [OutSpec(x.shape, x.dtype)]

    def check(self, g, n):
        for i in n.inputs[1:5]:
            if not g.tensors[i].is_const:
                return Reason("BatchNormalization with computed statistics", i)
        if g.tensors[n.inputs[0]].dtype not in ("float32", "float64"):
            return f"BatchNormalization[{g.tensors[n.inputs[0]].dtype}]"
        return None

    def _axis(self, g, n):
        x = g.tensors[n.inputs[0]]
        return 1 if n.attrs.get("layout", "NCHW") == "NCHW" and x.rank > 1 else x.rank - 1

    def reference(self, g, n, xs):
        x = xs[0]
        scale, bias, mean, var = [v.astype(np.float64) for v in xs[1:5]]
        axis = self._axis(g, n)
        shape = [1] * x.ndim
        shape[axis] = -1
        k = scale / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))
        y = (x.astype(np.float64) - mean.reshape(shape)) * k.reshape(shape) + bias.reshape(shape)
        return [y.astype(x.dtype)]

    def emit(self, k):
        g, n = k.g, k.node
        x = k.tin(0)
        axis = self._axis(g, n)
        kk, sh = _scale_shift(g, n)
        dt = x.dtype
        ks = k.const(kk.astype(np.float32 if dt == "float32" else np.float64), dt, "scale")
        ss = k.const(sh.astype(np.float32 if dt == "float32" else np.float64), dt, "shift")
        outer = prod(x.shape[:axis])
        C = x.shape[axis]
        inner = prod(x.shape[axis + 1:])
        return (f"  for (int o = 0; o < {outer}; ++o)\n"
                f"    for (int c = 0; c < {C}; ++c)\n"
                f"      for (int i = 0; i < {inner}; ++i) {{\n"
                f"        const int idx = (o * {C} + c) * {inner} + i;\n"
                f"        y0[idx] = x0[idx] * {ks}[c] + {ss}[c];\n      }}\n")


@onnx_op("BatchNormalization")
def _onnx_bn(ctx, node):
    if len([o for o in node.output if o]) > 1:
        raise UnsupportedError(["BatchNormalization in training mode"])
    if ctx.attr(node, "training_mode", 0):
        raise UnsupportedError(["BatchNormalization in training mode"])
    ins = [ctx.inp(node, i) for i in range(5)]
    ctx.add("BatchNormalization", ins, [ctx.out(node)],
            {"epsilon": float(ctx.attr(node, "epsilon", 1e-5)), "layout": "NCHW"}, node.name)
