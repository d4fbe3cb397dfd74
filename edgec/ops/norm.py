"""Normalizations computed per slice of a float tensor:

* ``LayerNormalization`` (over the trailing axes from ``axis``; scale and bias
  of the normalized shape), ``RMSNormalization`` (no centering, no bias);
* ``InstanceNormalization`` (per sample and channel over the spatial axes,
  per-channel scale and bias);
* ``LpNormalization`` (divide by the L1 or L2 norm along one axis; a zero norm
  gives 0);
* ``LRN`` (local response normalization across channels, NCHW).

Statistics accumulate in the tensor's own float type, as the loops on a
microcontroller would; the numpy references compute in float64.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_literal
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import norm_axis, prod


def _float_only(g, n):
    x = g.tensors[n.inputs[0]]
    if x.dtype not in dtypes.FLOAT_TYPES:
        raise UnsupportedError([f"{n.op}[{x.dtype}]"])
    return x


class SliceNorm(Op):
    """Normalize each of ``outer`` contiguous blocks of ``inner`` elements.
    Subclasses say how scale and bias are indexed."""

    center = True  # subtract the mean (RMSNormalization does not)

    def _dims(self, g, n):
        raise NotImplementedError

    def infer(self, g, n):
        x = _float_only(g, n)
        self._dims(g, n)
        return [OutSpec(x.shape, x.dtype)]

    def _params(self, g, n, xs=None):
        """(scale, bias) as arrays of the block's length (``per_block``) or of
        the channel count (per channel)."""
        raise NotImplementedError

    def reference(self, g, n, xs):
        x = xs[0].astype(np.float64)
        outer, inner, C = self._dims(g, n)
        xb = x.reshape(outer, inner)
        eps = float(n.attrs.get("epsilon", 1e-5))
        mean = xb.mean(axis=1, keepdims=True) if self.center else 0.0
        var = ((xb - mean) ** 2).mean(axis=1, keepdims=True)
        y = (xb - mean) / np.sqrt(var + eps)
        scale, bias = self._ref_params(g, n, xs, outer, inner, C)
        y = y * scale + bias
        return [y.reshape(xs[0].shape).astype(xs[0].dtype)]

    def emit(self, k):
        g, n = k.g, k.node
        outer, inner, C = self._dims(g, n)
        x = k.tin(0)
        ct = dtypes.c_type(x.dtype)
        f = "f" if x.dtype == "float32" else ""
        sidx, bidx = self._c_index(k, inner, C)
        scale = self._c_operand(k, 1, sidx)
        bias = self._c_operand(k, 2, bidx) if k.has_input(2) else None
        eps = c_literal(float(n.attrs.get("epsilon", 1e-5)), x.dtype)
        yv = "(xp[i] - mean) * inv" if self.center else "xp[i] * inv"
        if scale:
            yv += f" * {scale}"
        if bias:
            yv += f" + {bias}"
        return (f"  for (int o = 0; o < {outer}; ++o) {{\n"
                f"    const {ct}* xp = {k.x(0)} + o * {inner};\n"
                f"    {ct}* yp = y0 + o * {inner};\n"
                f"    {ct} mean = 0;\n    {ct} var = 0;\n    {ct} inv;\n"
                + (f"    for (int i = 0; i < {inner}; ++i) mean += xp[i];\n"
                   f"    mean /= ({ct}){inner};\n" if self.center else "    (void)mean;\n")
                + f"    for (int i = 0; i < {inner}; ++i) {{\n"
                f"      const {ct} d = xp[i] - mean;\n      var += d * d;\n    }}\n"
                f"    inv = 1 / sqrt{f}(var / ({ct}){inner} + {eps});\n"
                f"    for (int i = 0; i < {inner}; ++i) yp[i] = {yv};\n"
                f"  }}\n")

    def _c_operand(self, k, i, idx):
        if not k.has_input(i):
            return None
        return f"{k.x(i)}[{idx}]"


@register
class LayerNormalization(SliceNorm):
    """Y only; scale and bias have the normalized shape (broadcast to it here)."""
    name = "LayerNormalization"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", -1), x.rank, n.op)
        inner = prod(x.shape[a:])
        for i in n.inputs[1:3]:
            if i:
                try:
                    np.broadcast_shapes(g.tensors[i].shape, x.shape[a:])
                except ValueError:
                    raise EdgecError(f"{n.op}: scale/bias {list(g.tensors[i].shape)} do not fit "
                                     f"the normalized shape {list(x.shape[a:])}") from None
        return prod(x.shape[:a]), inner, 1

    def _full(self, g, n, i):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", -1), x.rank, n.op)
        return tuple(x.shape[a:])

    def check(self, g, n):
        for i in n.inputs[1:3]:
            if i and not g.tensors[i].is_const and g.tensors[i].shape != self._full(g, n, i):
                return f"{n.op} with computed, broadcast scale or bias"
        return None

    def _ref_params(self, g, n, xs, outer, inner, C):
        full = self._full(g, n, 1)
        out = []
        for j, default in ((1, 1.0), (2, 0.0)):
            v = xs[j] if j < len(xs) and xs[j] is not None else None
            out.append(default if v is None else
                       np.broadcast_to(v.astype(np.float64), full).reshape(1, inner))
        return out

    def _c_index(self, k, inner, C):
        return "i", "i"

    def _c_operand(self, k, i, idx):
        if not k.has_input(i):
            return None
        t = k.tin(i)
        full = self._full(k.g, k.node, i)
        if t.is_const and t.shape != full:
            arr = np.broadcast_to(t.data, full)
            return f"{k.const(np.ascontiguousarray(arr), t.dtype, 'scale' if i == 1 else 'bias')}[{idx}]"
        return f"{k.x(i)}[{idx}]"


@register
class RMSNormalization(LayerNormalization):
    name = "RMSNormalization"
    center = False


@register
class InstanceNormalization(SliceNorm):
    name = "InstanceNormalization"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.rank < 2:
            raise EdgecError("InstanceNormalization needs a tensor of rank 2 or more")
        C = x.shape[1]
        for i in n.inputs[1:3]:
            if g.tensors[i].size != C:
                raise EdgecError(f"InstanceNormalization: {g.tensors[i].size} scale/bias values "
                                 f"for {C} channels")
        return x.shape[0] * C, prod(x.shape[2:]), C

    def _ref_params(self, g, n, xs, outer, inner, C):
        N = outer // C
        s = np.tile(xs[1].astype(np.float64).reshape(-1), N).reshape(outer, 1)
        b = np.tile(xs[2].astype(np.float64).reshape(-1), N).reshape(outer, 1)
        return s, b

    def _c_index(self, k, inner, C):
        return f"o % {C}", f"o % {C}"


@register
class LpNormalization(Op):
    name = "LpNormalization"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", -1), x.rank, n.op)
        return prod(x.shape[:a]), x.shape[a], prod(x.shape[a + 1:])

    def infer(self, g, n):
        x = _float_only(g, n)
        if n.attrs.get("p", 2) not in (1, 2):
            raise EdgecError(f"LpNormalization with p={n.attrs.get('p')} (1 or 2)")
        self._dims(g, n)
        return [OutSpec(x.shape, x.dtype)]

    def reference(self, g, n, xs):
        x = xs[0].astype(np.float64)
        a = norm_axis(n.attrs.get("axis", -1), x.ndim, n.op)
        p = n.attrs.get("p", 2)
        nrm = np.abs(x).sum(axis=a, keepdims=True) if p == 1 else \
            np.sqrt((x * x).sum(axis=a, keepdims=True))
        with np.errstate(all="ignore"):
            y = np.where(nrm == 0, 0, x / np.where(nrm == 0, 1, nrm))
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        outer, d, inner = self._dims(k.g, k.node)
        x = k.tin(0)
        ct = dtypes.c_type(x.dtype)
        f = "f" if x.dtype == "float32" else ""
        p = k.node.attrs.get("p", 2)
        acc = f"fabs{f}(v)" if p == 1 else "v * v"
        fin = "s" if p == 1 else f"sqrt{f}(s)"
        return (f"  for (int o = 0; o < {outer}; ++o) {{\n"
                f"    for (int i = 0; i < {inner}; ++i) {{\n"
                f"      const {ct}* xp = {k.x(0)} + o * {d * inner} + i;\n"
                f"      {ct}* yp = y0 + o * {d * inner} + i;\n"
                f"      {ct} s = 0;\n      {ct} nrm;\n"
                f"      for (int j = 0; j < {d}; ++j) {{\n"
                f"        const {ct} v = xp[j * {inner}];\n        s += {acc};\n      }}\n"
                f"      nrm = {fin};\n"
                f"      for (int j = 0; j < {d}; ++j) yp[j * {inner}] = nrm == 0 ? 0 : xp[j * {inner}] / nrm;\n"
                f"    }}\n  }}\n")


@register
class LRN(Op):
    name = "LRN"

    def infer(self, g, n):
        x = _float_only(g, n)
        if x.rank < 3:
            raise EdgecError("LRN needs an input of rank 3 or more (N, C, ...)")
        if not 1 <= int(n.attrs["size"]) < 1 << 31:
            raise EdgecError(f"LRN size {n.attrs['size']} (must be 1 or more)")
        return [OutSpec(x.shape, x.dtype)]

    def _win(self, n):
        size = int(n.attrs["size"])
        return (size - 1) // 2, -(-(size - 1) // 2)

    def reference(self, g, n, xs):
        x = xs[0].astype(np.float64)
        a = n.attrs
        lo, hi = self._win(n)
        C = x.shape[1]
        sq = np.zeros_like(x)
        for c in range(C):
            sq[:, c] = (x[:, max(0, c - lo):min(C, c + hi + 1)] ** 2).sum(axis=1)
        y = x / (a.get("bias", 1.0) + a.get("alpha", 1e-4) / a["size"] * sq) ** a.get("beta", 0.75)
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        x = k.tin(0)
        a = k.node.attrs
        N, C, S = x.shape[0], x.shape[1], prod(x.shape[2:])
        lo, hi = self._win(k.node)
        ct = dtypes.c_type(x.dtype)
        f = "f" if x.dtype == "float32" else ""
        lit = lambda v: c_literal(float(v), x.dtype)  # noqa: E731
        return (f"  for (int b = 0; b < {N}; ++b)\n"
                f"    for (int c = 0; c < {C}; ++c)\n"
                f"      for (int s = 0; s < {S}; ++s) {{\n"
                f"        const int c0 = c - {lo} < 0 ? 0 : c - {lo};\n"
                f"        const int c1 = c + {hi} > {C - 1} ? {C - 1} : c + {hi};\n"
                f"        {ct} sq = 0;\n"
                f"        for (int j = c0; j <= c1; ++j) {{\n"
                f"          const {ct} v = {k.x(0)}[(b * {C} + j) * {S} + s];\n          sq += v * v;\n"
                f"        }}\n"
                f"        y0[(b * {C} + c) * {S} + s] = {k.x(0)}[(b * {C} + c) * {S} + s] / "
                f"pow{f}({lit(a.get('bias', 1.0))} + {lit(a.get('alpha', 1e-4) / a['size'])} * sq, "
                f"{lit(a.get('beta', 0.75))});\n"
                f"      }}\n")


# --- ONNX ------------------------------------------------------------------------

def _onnx_layer_norm(op):
    def imp(ctx, node):
        if len([o for o in node.output if o]) > 1:
            # Mean / InvStdDev requested: the standard's function body computes them
            ctx.expand_function(node)
            return
        ins = [ctx.inp(node, i) for i in range(3)]
        ctx.add(op, [i for i in ins[:2]] + ([ins[2]] if ins[2] else []), [ctx.out(node)],
                {"axis": int(ctx.attr(node, "axis", -1)),
                 "epsilon": float(ctx.attr(node, "epsilon", 1e-5))}, node.name)
    return imp


onnx_op("LayerNormalization")(_onnx_layer_norm("LayerNormalization"))
onnx_op("RMSNormalization")(_onnx_layer_norm("RMSNormalization"))


@onnx_op("InstanceNormalization")
def _onnx_instance_norm(ctx, node):
    ctx.add("InstanceNormalization", [ctx.inp(node, i) for i in range(3)], [ctx.out(node)],
            {"epsilon": float(ctx.attr(node, "epsilon", 1e-5))}, node.name)


@onnx_op("LpNormalization")
def _onnx_lp_norm(ctx, node):
    ctx.add("LpNormalization", [ctx.inp(node, 0)], [ctx.out(node)],
            {"axis": int(ctx.attr(node, "axis", -1)), "p": int(ctx.attr(node, "p", 2))}, node.name)


@onnx_op("LRN")
def _onnx_lrn(ctx, node):
    ctx.add("LRN", [ctx.inp(node, 0)], [ctx.out(node)],
            {"size": int(ctx.attr(node, "size")), "alpha": float(ctx.attr(node, "alpha", 1e-4)),
             "beta": float(ctx.attr(node, "beta", 0.75)), "bias": float(ctx.attr(node, "bias", 1.0))},
            node.name)
