"""Indexing: Gather, GatherElements, GatherND, ScatterElements and ScatterND.

Indices are int32 or int64 tensors, constant or computed; a negative index
counts from the end.  ONNX leaves out-of-range indices undefined (an error);
the generated C clamps them into the valid range so it never reads or writes
outside a buffer, and the numpy reference does the same.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import loop_nest, norm_axis, prod, strides

INDEX_TYPES = ("int32", "int64")


def _fix(idx: np.ndarray, d: int) -> np.ndarray:
    idx = idx.astype(np.int64)
    idx = np.where(idx < 0, idx + d, idx)
    return np.clip(idx, 0, max(d - 1, 0))


def _c_fix(var: str, d: int) -> str:
    """C statements normalizing index ``var`` (int64_t) into [0, d)."""
    return (f"if ({var} < 0) {var} += {d};\n"
            f"if ({var} < 0) {var} = 0;\nif ({var} > {d - 1}) {var} = {d - 1};")


def _check_indices(g, n, i, d: int | None = None):
    """The indices tensor; constant indices must lie in [-d, d) (ONNX: an error
    otherwise; only indices computed at run time are clamped in C)."""
    t = g.tensors[n.inputs[i]]
    if t.dtype not in INDEX_TYPES:
        raise EdgecError(f"{n.op}: indices of type {t.dtype}")
    if d is not None and t.is_const and t.data.size:
        lo, hi = int(t.data.min()), int(t.data.max())
        if lo < -d or hi >= d:
            raise EdgecError(f"{n.op}: constant index {lo if lo < -d else hi} out of range for a "
                             f"dimension of {d}")
    return t


def _elem_bytes(t) -> int:
    return dtypes.itemsize(t.dtype)


@register
class Gather(Op):
    name = "Gather"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", 0), x.rank, "Gather")
        return a, prod(x.shape[:a]), x.shape[a], prod(x.shape[a + 1:])

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        a, _, d, _ = self._dims(g, n)
        idx = _check_indices(g, n, 1, d)
        return [OutSpec(tuple(x.shape[:a]) + tuple(idx.shape) + tuple(x.shape[a + 1:]), x.dtype,
                        x.quant if not (x.quant and x.quant.per_axis) else None)]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.size == 0:
            return "Gather from an empty tensor"
        return None

    def reference(self, g, n, xs):
        a, *_ = self._dims(g, n)
        return [np.take(xs[0], _fix(xs[1], xs[0].shape[a]), axis=a)]

    def emit(self, k):
        a, outer, d, inner = self._dims(k.g, k.node)
        nidx = k.tin(1).size
        nb = inner * _elem_bytes(k.tin(0))
        return (f"  for (int o = 0; o < {outer}; ++o) {{\n"
                f"    for (int j = 0; j < {nidx}; ++j) {{\n"
                f"      int64_t ix = (int64_t){k.x(1)}[j];\n"
                + "".join(f"      {ln}\n" for ln in _c_fix("ix", d).splitlines()) +
                f"      memcpy(y0 + (o * {nidx} + j) * {inner}, {k.x(0)} + (o * {d} + (int)ix) * {inner}, "
                f"{nb}u);\n    }}\n  }}\n")


@register
class GatherElements(Op):
    name = "GatherElements"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = norm_axis(n.attrs.get("axis", 0), x.rank, n.op)
        idx = _check_indices(g, n, 1, x.shape[a] if x.rank else None)
        if idx.rank != x.rank:
            raise EdgecError(f"GatherElements: indices of rank {idx.rank} for data of rank {x.rank}")
        return [OutSpec(idx.shape, x.dtype, x.quant)]

    def check(self, g, n):
        if g.tensors[n.inputs[0]].size == 0:
            return "GatherElements from an empty tensor"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        a = norm_axis(n.attrs.get("axis", 0), x.ndim, n.op)
        return [np.take_along_axis(x, _fix(xs[1], x.shape[a]), axis=a)]

    def emit(self, k):
        x, idx = k.tin(0), k.tin(1)
        a = norm_axis(k.node.attrs.get("axis", 0), x.rank, "GatherElements")
        sx = strides(x.shape)
        src = [0 if d == a else sx[d] for d in range(x.rank)]
        body = (f"int64_t ix = (int64_t){k.x(1)}[{{io}}];\n{_c_fix('ix', x.shape[a])}\n"
                f"y0[{{io}}] = {k.x(0)}[{{ii}} + (int)ix * {sx[a]}];")
        return "  {\n" + loop_nest(list(idx.shape), {"ii": src, "io": strides(idx.shape)}, body,
                                   "    ") + "\n  }\n"


def _nd_dims(g, n):
    x = g.tensors[n.inputs[0]]
    idx = g.tensors[n.inputs[1]]
    b = int(n.attrs.get("batch_dims", 0))
    if idx.rank < 1:
        raise EdgecError(f"{n.op}: indices must have rank 1 or more")
    kk = idx.shape[-1]
    if b < 0 or b + kk > x.rank or tuple(idx.shape[:b]) != tuple(x.shape[:b]):
        raise EdgecError(f"{n.op}: indices {list(idx.shape)} do not fit data {list(x.shape)}")
    return x, idx, b, kk


@register
class GatherND(Op):
    name = "GatherND"

    def infer(self, g, n):
        _check_indices(g, n, 1)
        x, idx, b, kk = _nd_dims(g, n)
        return [OutSpec(tuple(idx.shape[:-1]) + tuple(x.shape[b + kk:]), x.dtype, x.quant)]

    def check(self, g, n):
        if g.tensors[n.inputs[0]].size == 0:
            return "GatherND from an empty tensor"
        return None

    def reference(self, g, n, xs):
        x, ind = xs
        b = int(n.attrs.get("batch_dims", 0))
        kk = ind.shape[-1]
        B = prod(x.shape[:b])
        xb = x.reshape((B,) + x.shape[b:])
        ib = ind.reshape(B, -1, kk)
        out = []
        for bi in range(B):
            for t in ib[bi]:
                pos = tuple(int(_fix(np.array(v), x.shape[b + j])) for j, v in enumerate(t))
                out.append(xb[bi][pos])
        inner = x.shape[b + kk:]
        return [np.array(out, dtype=x.dtype).reshape(tuple(ind.shape[:-1]) + tuple(inner))]

    def emit(self, k):
        x, idx, b, kk = _nd_dims(k.g, k.node)
        B = prod(x.shape[:b])
        per = prod(idx.shape[b:-1])
        inner = prod(x.shape[b + kk:])
        sx = strides(x.shape[b:])
        lines = [f"  for (int bi = 0; bi < {B}; ++bi) {{",
                 f"    for (int t = 0; t < {per}; ++t) {{",
                 f"      const int it = (bi * {per} + t) * {kk};",
                 f"      int64_t off = (int64_t)bi * {prod(x.shape[b:])};"]
        for j in range(kk):
            lines.append(f"      {{ int64_t ix = (int64_t){k.x(1)}[it + {j}];")
            lines += [f"        {ln}" for ln in _c_fix("ix", x.shape[b + j]).splitlines()]
            lines.append(f"        off += ix * {sx[j]}; }}")
        lines.append(f"      memcpy(y0 + (bi * {per} + t) * {inner}, {k.x(0)} + off, "
                     f"{inner * _elem_bytes(x)}u);")
        lines += ["    }", "  }"]
        return "\n".join(lines) + "\n"


REDUCTIONS = ("none", "add", "mul", "max", "min")


def _c_combine(red: str, dst: str, v: str, dt: str) -> str:
    if red == "none":
        return f"{dst} = {v};"
    if red == "add":
        return f"{dst} = {dst} + {v};"
    if red == "mul":
        return f"{dst} = {dst} * {v};"
    m = "EDGEC_FMAX" if red == "max" else "EDGEC_FMIN"
    if not dtypes.is_float(dt):
        m = "EDGEC_MAX" if red == "max" else "EDGEC_MIN"
    return f"{dst} = {m}({dst}, {v});"


def _np_combine(red, a, b):
    return {"none": lambda: b, "add": lambda: a + b, "mul": lambda: a * b,
            "max": lambda: np.maximum(a, b), "min": lambda: np.minimum(a, b)}[red]()


class Scatter(Op):
    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if n.attrs.get("reduction", "none") not in REDUCTIONS:
            return f"{n.op} with reduction {n.attrs.get('reduction')}"
        if x.quant is not None and n.attrs.get("reduction", "none") != "none":
            return f"{n.op}[quantized] with a reduction"
        if x.dtype == "bool" and n.attrs.get("reduction", "none") != "none":
            return f"{n.op}[bool] with a reduction"
        if x.size == 0:
            return f"{n.op} into an empty tensor"
        return None


@register
class ScatterElements(Scatter):
    name = "ScatterElements"

    def infer(self, g, n):
        x, idx, upd = (g.tensors[i] for i in n.inputs[:3])
        _check_indices(g, n, 1)
        norm_axis(n.attrs.get("axis", 0), x.rank, n.op)
        if idx.shape != upd.shape or idx.rank != x.rank or upd.dtype != x.dtype:
            raise EdgecError(f"ScatterElements: indices {list(idx.shape)} and updates "
                             f"{list(upd.shape)} do not fit data {list(x.shape)}")
        return [OutSpec(x.shape, x.dtype, x.quant)]

    def reference(self, g, n, xs):
        x, ind, upd = xs
        a = norm_axis(n.attrs.get("axis", 0), x.ndim, n.op)
        red = n.attrs.get("reduction", "none")
        y = np.array(x)
        ind = _fix(ind, x.shape[a])
        with np.errstate(all="ignore"):
            for pos in np.ndindex(*ind.shape):
                dst = list(pos)
                dst[a] = int(ind[pos])
                dst = tuple(dst)
                y[dst] = _np_combine(red, y[dst], upd[pos])
        return [y]

    def emit(self, k):
        x, idx = k.tin(0), k.tin(1)
        a = norm_axis(k.node.attrs.get("axis", 0), x.rank, "ScatterElements")
        sx = strides(x.shape)
        dst = [0 if d == a else sx[d] for d in range(x.rank)]
        red = k.node.attrs.get("reduction", "none")
        body = (f"int64_t ix = (int64_t){k.x(1)}[{{io}}];\n{_c_fix('ix', x.shape[a])}\n"
                + _c_combine(red, f"y0[{{id}} + (int)ix * {sx[a]}]", f"{k.x(2)}[{{io}}]", x.dtype))
        return (f"  memcpy(y0, {k.x(0)}, {x.nbytes}u);\n  {{\n"
                + loop_nest(list(idx.shape), {"id": dst, "io": strides(idx.shape)}, body, "    ")
                + "\n  }\n")


@register
class ScatterND(Scatter):
    name = "ScatterND"

    def infer(self, g, n):
        x, idx, upd = (g.tensors[i] for i in n.inputs[:3])
        _check_indices(g, n, 1)
        kk = idx.shape[-1] if idx.rank else 0
        want = tuple(idx.shape[:-1]) + tuple(x.shape[kk:])
        if idx.rank < 1 or kk > x.rank or tuple(upd.shape) != want or upd.dtype != x.dtype:
            raise EdgecError(f"ScatterND: indices {list(idx.shape)} and updates {list(upd.shape)} "
                             f"do not fit data {list(x.shape)}")
        return [OutSpec(x.shape, x.dtype, x.quant)]

    def reference(self, g, n, xs):
        x, ind, upd = xs
        kk = ind.shape[-1]
        red = n.attrs.get("reduction", "none")
        y = np.array(x)
        flat_i = ind.reshape(-1, kk)
        flat_u = upd.reshape((flat_i.shape[0],) + x.shape[kk:])
        with np.errstate(all="ignore"):
            for t, u in zip(flat_i, flat_u):
                pos = tuple(int(_fix(np.array(v), x.shape[j])) for j, v in enumerate(t))
                y[pos] = _np_combine(red, y[pos], u)
        return [y]

    def emit(self, k):
        x, idx = k.tin(0), k.tin(1)
        kk = idx.shape[-1]
        n_t = prod(idx.shape[:-1])
        inner = prod(x.shape[kk:])
        sx = strides(x.shape)
        red = k.node.attrs.get("reduction", "none")
        lines = [f"  memcpy(y0, {k.x(0)}, {x.nbytes}u);",
                 f"  for (int t = 0; t < {n_t}; ++t) {{",
                 "    int64_t off = 0;"]
        for j in range(kk):
            lines.append(f"    {{ int64_t ix = (int64_t){k.x(1)}[t * {kk} + {j}];")
            lines += [f"      {ln}" for ln in _c_fix("ix", x.shape[j]).splitlines()]
            lines.append(f"      off += ix * {sx[j]}; }}")
        lines.append(f"    for (int e = 0; e < {inner}; ++e) {{")
        lines.append("      " + _c_combine(red, "y0[off + e]", f"{k.x(2)}[t * {inner} + e]", x.dtype))
        lines += ["    }", "  }"]
        return "\n".join(lines) + "\n"


# --- ONNX ------------------------------------------------------------------------

@onnx_op("Gather")
def _onnx_gather(ctx, node):
    ctx.add("Gather", [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)],
            {"axis": int(ctx.attr(node, "axis", 0))}, node.name)


@onnx_op("GatherElements")
def _onnx_gather_elements(ctx, node):
    ctx.add("GatherElements", [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)],
            {"axis": int(ctx.attr(node, "axis", 0))}, node.name)


@onnx_op("GatherND")
def _onnx_gather_nd(ctx, node):
    ctx.add("GatherND", [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)],
            {"batch_dims": int(ctx.attr(node, "batch_dims", 0))}, node.name)


@onnx_op("ScatterElements", "Scatter")
def _onnx_scatter_elements(ctx, node):
    red = ctx.attr(node, "reduction", "none")
    if red not in REDUCTIONS:
        raise UnsupportedError([f"{node.op_type} with reduction {red!r}"])
    ctx.add("ScatterElements", [ctx.inp(node, i) for i in range(3)], [ctx.out(node)],
            {"axis": int(ctx.attr(node, "axis", 0)), "reduction": red}, node.name)


@onnx_op("ScatterND")
def _onnx_scatter_nd(ctx, node):
    red = ctx.attr(node, "reduction", "none")
    if red not in REDUCTIONS:
        raise UnsupportedError([f"ScatterND with reduction {red!r}"])
    ctx.add("ScatterND", [ctx.inp(node, i) for i in range(3)], [ctx.out(node)],
            {"reduction": red}, node.name)


@onnx_op("Compress")
def _onnx_compress(ctx, node):
    """Compress with a constant condition: a Gather of the selected positions."""
    x = ctx.inp(node, 0)
    cond = np.asarray(ctx.const_input(node, 1, "condition")).reshape(-1).astype(bool)
    axis = ctx.attr(node, "axis")
    if axis is None:
        flat = ctx.tmp(x + "_flat")
        ctx.add("Reshape", [x], [flat], {"shape": [ctx.t(x).size]})
        x, axis = flat, 0
    axis = norm_axis(axis, ctx.t(x).rank, "Compress")
    if cond.size > ctx.t(x).shape[axis]:
        raise EdgecError("Compress: the condition is longer than the axis")
    idx = ctx.g.add_const(np.nonzero(cond)[0].astype(np.int64), "compress_idx")
    ctx.add("Gather", [x, idx], [ctx.out(node)], {"axis": axis}, node.name)


@onnx_op("ReverseSequence")
def _onnx_reverse_sequence(ctx, node):
    """ReverseSequence with constant lengths: a GatherElements with constant indices."""
    x = ctx.inp(node, 0)
    shape = ctx.t(x).shape
    lens = np.asarray(ctx.const_input(node, 1, "sequence_lens")).reshape(-1).astype(np.int64)
    b = norm_axis(ctx.attr(node, "batch_axis", 1), len(shape), "ReverseSequence")
    t = norm_axis(ctx.attr(node, "time_axis", 0), len(shape), "ReverseSequence")
    if b == t or lens.size != shape[b] or lens.min(initial=0) < 0 or lens.max(initial=0) > shape[t]:
        raise EdgecError("ReverseSequence: sequence lengths do not fit the input")
    pos = np.indices(shape)
    tt, bb = pos[t], pos[b]
    L = lens[bb]
    idx = np.where(tt < L, L - 1 - tt, tt).astype(np.int64)
    ctx.add("GatherElements", [x, ctx.g.add_const(idx, "reverse_idx")], [ctx.out(node)],
            {"axis": t}, node.name)


@register
class TensorScatter(Op):
    """Write ``update`` into a copy of the cache along ``axis`` at
    ``write_indices[batch] + s`` (``circular``: modulo the cache length;
    ``linear``: positions past the end are dropped)."""
    name = "TensorScatter"

    def _dims(self, g, n):
        c, u = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        a = norm_axis(n.attrs.get("axis", -2), c.rank, "TensorScatter")
        if a == 0 or u.rank != c.rank or u.dtype != c.dtype or any(
                cu != uu for i, (cu, uu) in enumerate(zip(c.shape, u.shape)) if i != a) \
                or u.shape[a] > c.shape[a]:
            raise EdgecError(f"TensorScatter: update {list(u.shape)} does not fit {list(c.shape)}")
        return c, u, a

    def infer(self, g, n):
        c, u, a = self._dims(g, n)
        if n.input(2):
            _check_indices(g, n, 2)
        return [OutSpec(c.shape, c.dtype, c.quant)]

    def reference(self, g, n, xs):
        c, u, a = self._dims(g, n)
        cache, upd = xs[0], xs[1]
        y = np.array(cache)
        B, M, S = cache.shape[0], cache.shape[a], upd.shape[a]
        wi = xs[2].reshape(-1).astype(np.int64) if len(xs) > 2 and xs[2] is not None else np.zeros(B, np.int64)
        for pre in np.ndindex(*cache.shape[:a]):
            for s in range(S):
                t = int(wi[pre[0]]) + s
                if n.attrs.get("mode", "linear") == "circular":
                    t %= M
                if 0 <= t < M:
                    y[pre + (t,)] = upd[pre + (s,)]
        return [y]

    def emit(self, k):
        c, u, a = self._dims(k.g, k.node)
        pre = prod(c.shape[1:a])
        M, S, inner = c.shape[a], u.shape[a], prod(c.shape[a + 1:])
        circ = k.node.attrs.get("mode", "linear") == "circular"
        wi = f"(int64_t){k.x(2)}[b]" if k.has_input(2) else "0"
        fix = f"t = ((t % {M}) + {M}) % {M};" if circ else f"if (t < 0 || t >= {M}) continue;"
        return (f"  memcpy(y0, {k.x(0)}, {c.nbytes}u);\n"
                f"  for (int b = 0; b < {c.shape[0]}; ++b)\n"
                f"  for (int p = 0; p < {pre}; ++p)\n"
                f"  for (int s = 0; s < {S}; ++s) {{\n"
                f"    int64_t t = {wi} + s;\n    {fix}\n"
                f"    memcpy(y0 + ((b * {pre} + p) * {M} + t) * {inner}, "
                f"{k.x(1)} + ((b * {pre} + p) * {S} + s) * {inner}, {inner * dtypes.itemsize(c.dtype)}u);\n"
                f"  }}\n")


@onnx_op("TensorScatter")
def _onnx_tensor_scatter(ctx, node):
    ins = [ctx.inp(node, i) for i in range(3)]
    ctx.add("TensorScatter", [i for i in ins[:2]] + ([ins[2]] if ins[2] else []), [ctx.out(node)],
            {"mode": ctx.attr(node, "mode", "linear", ("linear", "circular")), "axis": int(ctx.attr(node, "axis", -2))},
            node.name)


@tflite_op("GATHER")
def _tfl_gather(ctx, op):
    o = ctx.options(op, "GatherOptions")
    axis = int(o.Axis()) if o is not None else 0
    if o is not None and int(o.BatchDims()) != 0:
        raise UnsupportedError(["GATHER with batch_dims"])
    ctx.add("Gather", ctx.inputs(op)[:2], ctx.outputs(op), {"axis": axis})
