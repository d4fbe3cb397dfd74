"""Slice (strided, negative steps) and Split (lowered to one Slice per output).

IR ``Slice``: attributes ``starts``, ``steps`` and ``sizes``, one per dimension
of the input, already resolved (clamped, negative indices made positive): output
element ``i`` along a dimension reads input ``start + i * step``.  Any element
type; int8 keeps its quantization.
"""
from __future__ import annotations

import numpy as np

from ..ir.errors import EdgecError
from ..ir.errors import UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import coalesce, loop_nest, norm_axis, strides


@register
class Slice(Op):
    name = "Slice"

    def _params(self, g, n):
        x = g.tensors[n.inputs[0]]
        st, sp, sz = n.attrs["starts"], n.attrs["steps"], n.attrs["sizes"]
        if not (len(st) == len(sp) == len(sz) == x.rank):
            raise EdgecError(f"Slice: parameters for {len(st)} dimensions, input has {x.rank}")
        for d, (a, s, c) in enumerate(zip(st, sp, sz)):
            if s == 0 or c < 0 or (c > 0 and not (0 <= a < x.shape[d] and
                                                   0 <= a + (c - 1) * s < x.shape[d])):
                raise EdgecError(f"Slice: dimension {d} reads outside the input")
        return st, sp, sz

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        _, _, sz = self._params(g, n)
        return [OutSpec(tuple(sz), x.dtype, x.quant)]

    def reference(self, g, n, xs):
        st, sp, sz = self._params(g, n)
        idx = tuple(np.arange(a, a + c * s, s)[:c] if c else np.arange(0) for a, s, c in zip(st, sp, sz))
        return [np.ascontiguousarray(xs[0][np.ix_(*idx)]) if idx else np.array(xs[0])]

    def emit(self, k):
        st, sp, sz = self._params(k.g, k.node)
        sx = strides(k.tin(0).shape)
        base = sum(a * s for a, s in zip(st, sx))
        shape, (si, so) = coalesce(sz, [[s * t for s, t in zip(sp, sx)], strides(sz)])
        body = f"y0[{{io}}] = {k.x(0)}[{base} + {{ii}}];"
        return "  {\n" + loop_nest(shape, {"ii": si, "io": so}, body, "    ") + "\n  }\n"


def resolve(shape, starts, ends, axes=None, steps=None):
    """ONNX Slice parameters -> per-dimension (starts, steps, sizes)."""
    r = len(shape)
    starts = [int(v) for v in starts]
    ends = [int(v) for v in ends]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise EdgecError("Slice: starts, ends, axes and steps differ in length")
    st, sp, sz = [0] * r, [1] * r, list(shape)
    seen = set()
    for s, e, a, step in zip(starts, ends, axes, steps):
        a = norm_axis(a, r, "Slice")
        if a in seen:
            raise EdgecError("Slice: an axis is repeated")
        seen.add(a)
        d = int(shape[a])
        if step == 0:
            raise EdgecError("Slice: a step of 0")
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if step > 0:
            s = min(max(s, 0), d)
            e = min(max(e, 0), d)
            n = max(0, -(-(e - s) // step))
        else:
            s = min(max(s, 0), d - 1)
            e = min(max(e, -1), d - 1)
            n = max(0, -(-(s - e) // -step))
        st[a], sp[a], sz[a] = (s if n else 0), step, n
    return st, sp, sz


def add_slice(ctx, x, out, st, sp, sz, name=""):
    shape = list(ctx.t(x).shape)
    if list(sz) == shape and all(s == 1 for s in sp):
        ctx.add("Reshape", [x], [out], {"shape": shape}, name)
    else:
        ctx.add("Slice", [x], [out], {"starts": st, "steps": sp, "sizes": sz}, name)


@onnx_op("Slice")
def _onnx_slice(ctx, node):
    x = ctx.inp(node, 0)
    shape = ctx.t(x).shape
    if ctx.opset < 10:
        starts, ends = ctx.attr(node, "starts"), ctx.attr(node, "ends")
        axes, steps = ctx.attr(node, "axes"), None
    else:
        starts = ctx.const_input(node, 1, "starts").reshape(-1)
        ends = ctx.const_input(node, 2, "ends").reshape(-1)
        axes = ctx.const_input(node, 3, "axes") if ctx.inp(node, 3) else None
        steps = ctx.const_input(node, 4, "steps") if ctx.inp(node, 4) else None
        axes = None if axes is None else axes.reshape(-1)
        steps = None if steps is None else steps.reshape(-1)
    st, sp, sz = resolve(shape, starts, ends, axes, steps)
    add_slice(ctx, x, ctx.out(node), st, sp, sz, node.name)


@onnx_op("Split")
def _onnx_split(ctx, node):
    x = ctx.inp(node, 0)
    shape = list(ctx.t(x).shape)
    axis = norm_axis(ctx.attr(node, "axis", 0), len(shape), "Split")
    d = shape[axis]
    n_out = len(node.output)
    if ctx.opset >= 13:
        split = ctx.const_input(node, 1, "split") if ctx.inp(node, 1) else None
    else:
        split = ctx.attr(node, "split")
    if split is not None and len(np.asarray(split).reshape(-1)):
        parts = [int(v) for v in np.asarray(split).reshape(-1)]
    elif ctx.has_attr(node, "num_outputs"):
        k = int(ctx.attr(node, "num_outputs"))
        if k != n_out:
            raise EdgecError(f"Split: num_outputs {k} for {n_out} outputs")
        chunk = -(-d // k)
        parts = [min(chunk, d - i * chunk) for i in range(k)]
    else:
        if d % n_out:
            raise EdgecError(f"Split: dimension {d} does not split in {n_out} equal parts")
        parts = [d // n_out] * n_out
    if len(parts) != n_out or sum(parts) != d or min(parts) < 0:
        raise EdgecError(f"Split: parts {parts} do not fit dimension {d} and {n_out} outputs")
    off = 0
    for j, p in enumerate(parts):
        out = ctx.out(node, j)
        if out:
            st, sp, sz = [0] * len(shape), [1] * len(shape), list(shape)
            st[axis], sz[axis] = off, p
            add_slice(ctx, x, out, st, sp, sz, node.name)
        off += p


def strided_slice_params(shape, begin, end, strides, begin_mask: int, end_mask: int,
                         shrink_mask: int, offset: bool = False):
    """TFLite STRIDED_SLICE resolved to (starts, steps, sizes) per input dimension and
    the dimensions to drop (shrink_axis_mask).  Dimensions past ``len(begin)`` are
    taken whole; negative indices count from the end; bounds are clamped."""
    st, sp, sz, drop = [], [], [], []
    for d, dim in enumerate(shape):
        if d >= len(begin):
            st.append(0), sp.append(1), sz.append(dim)
            continue
        s = int(strides[d])
        if s == 0:
            raise EdgecError(f"STRIDED_SLICE: stride 0 in dimension {d}")
        b, e = int(begin[d]), int(end[d])
        if offset:
            e = b + e
        shrink = bool(shrink_mask >> d & 1)
        if begin_mask >> d & 1 and not shrink:
            b = 0 if s > 0 else dim - 1
        elif b < 0:
            b += dim
        if shrink:
            if not 0 <= b < dim:
                raise EdgecError(f"STRIDED_SLICE: index {int(begin[d])} outside dimension {d} of {dim}")
            st.append(b), sp.append(1), sz.append(1)
            drop.append(d)
            continue
        if end_mask >> d & 1:
            e = dim if s > 0 else -1
        elif e < 0:
            e += dim
        if s > 0:
            b, e = min(max(b, 0), dim), min(max(e, 0), dim)
            n = max(0, -(-(e - b) // s))
        else:
            b, e = min(max(b, -1), dim - 1), min(max(e, -1), dim - 1)
            n = max(0, -(-(b - e) // -s))
        st.append(b if n else 0), sp.append(s), sz.append(n)
    return st, sp, sz, drop


@tflite_op("STRIDED_SLICE")
def _tfl_strided_slice(ctx, op):
    ins = ctx.inputs(op)
    x, out = ins[0], ctx.outputs(op)[0]
    vals = [ctx.const(i) if i else None for i in ins[1:4]]
    if len(ins) < 4 or any(v is None for v in vals):
        raise UnsupportedError(["STRIDED_SLICE with computed begin, end or strides"])
    o = ctx.options(op, "StridedSliceOptions")
    bm, em, el, na, sm = ((o.BeginMask(), o.EndMask(), o.EllipsisMask(), o.NewAxisMask(),
                           o.ShrinkAxisMask()) if o is not None else (0, 0, 0, 0, 0))
    offset = bool(o.Offset()) if o is not None and hasattr(o, "Offset") else False
    if el or na:
        raise UnsupportedError(["STRIDED_SLICE with an ellipsis or new-axis mask"])
    begin, end, step = (np.asarray(v).reshape(-1) for v in vals)
    shape = ctx.t(x).shape
    if not (len(begin) == len(end) == len(step)) or len(begin) > len(shape):
        raise EdgecError(f"STRIDED_SLICE: begin/end/strides of lengths {len(begin)}, {len(end)}, "
                         f"{len(step)} for an input of rank {len(shape)}")
    st, sp, sz, drop = strided_slice_params(shape, begin, end, step, bm, em, sm, offset)
    final = [n for d, n in enumerate(sz) if d not in drop]
    if drop:
        tmp = ctx.tmp(out + "_slice")
        add_slice(ctx, x, tmp, st, sp, sz)
        ctx.add("Reshape", [tmp], [out], {"shape": final})
    else:
        add_slice(ctx, x, out, st, sp, sz)
