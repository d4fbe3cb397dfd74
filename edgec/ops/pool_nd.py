"""N-dimensional pooling on NCHW-style tensors (1-D, 2-D, 3-D...): max (with the
optional argmax indices of ONNX MaxPool), average (dilations, ceil mode,
``count_include_pad``) and Lp pooling, any numeric element type for max.

The 2-D float/int8 pooling of :mod:`edgec.ops.pool` (TFLite Micro bit-exact,
NHWC or NCHW) stays the path for the common case; the ONNX importers use this
op for what it does not cover.

IR ``PoolNd``: attributes ``kind`` (``max``, ``avg``, ``lp``), ``kernel``,
``strides``, ``dilations``, ``pads`` (begin..., end...), ``ceil_mode``,
``count_include_pad``, ``p`` and ``storage_order`` (of the indices output).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_literal
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import check_shape
from . import OutSpec, Op, register
from ._util import AUTO_PADS, check_window, prod, strides


def out_len(n, k, s, d, p0, p1, ceil_mode):
    eff = (k - 1) * d + 1
    span = n + p0 + p1 - eff
    if span < 0:
        raise EdgecError(f"pooling window {k} (dilation {d}) does not fit the input {n}")
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= n + p0:
            out -= 1
    else:
        out = span // s + 1
    return out


def _geometry(g, n):
    x = g.tensors[n.inputs[0]]
    a = n.attrs
    nd = x.rank - 2
    ks, st, dl, pd = a["kernel"], a["strides"], a["dilations"], a["pads"]
    if nd < 1 or not (len(ks) == len(st) == len(dl) == nd and len(pd) == 2 * nd):
        raise EdgecError(f"{n.op}: attributes do not fit an input of shape {list(x.shape)}")
    if min(ks + st + dl) < 1 or min(pd) < 0:
        raise EdgecError(f"{n.op}: bad kernel, strides, dilations or pads")
    sp = list(x.shape[2:])
    for i in range(nd):
        check_window(n.op, sp[i], ks[i], st[i], dl[i], pd[i], pd[nd + i])
    out = [out_len(sp[i], ks[i], st[i], dl[i], pd[i], pd[nd + i], a.get("ceil_mode", 0))
           for i in range(nd)]
    return sp, out


def _windows(a, sp, out, i, o):
    """Input positions (or None where padding) of window ``o`` along axis ``i``,
    and whether each counts for count_include_pad."""
    nd = len(sp)
    res = []
    for t in range(a["kernel"][i]):
        pos = o * a["strides"][i] - a["pads"][i] + t * a["dilations"][i]
        inside_pad = pos < sp[i] + a["pads"][nd + i]
        res.append((pos if 0 <= pos < sp[i] else None, inside_pad))
    return res


@register
class PoolNd(Op):
    name = "PoolNd"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        sp, out = _geometry(g, n)
        kind = n.attrs["kind"]
        if kind != "max" and x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"{kind} pooling of {x.dtype}"])
        if x.dtype == "bool" or (x.quant is not None and kind != "max"):
            raise UnsupportedError([f"{kind} pooling of {x.dtype}"])
        shape = tuple(x.shape[:2]) + tuple(out)
        specs = [OutSpec(shape, x.dtype, x.quant)]
        if len(n.outputs) > 1:
            specs.append(OutSpec(shape, "int64"))
        return specs

    def macs(self, g, n):
        return g.tensors[n.outputs[0]].size * prod(n.attrs["kernel"])

    def reference(self, g, n, xs):
        x = xs[0]
        a = n.attrs
        sp, out = _geometry(g, n)
        N, C = x.shape[:2]
        nd = len(sp)
        y = np.zeros((N, C) + tuple(out), dtype=np.float64 if a["kind"] != "max" else x.dtype)
        ind = np.zeros((N, C) + tuple(out), dtype=np.int64)
        xs_ = strides(x.shape)
        for o in itertools.product(*[range(v) for v in out]):
            wins = [_windows(a, sp, out, i, o[i]) for i in range(nd)]
            pts = [p for p in itertools.product(*wins)]
            valid = [tuple(q[0] for q in p) for p in pts if all(q[0] is not None for q in p)]
            counted = sum(1 for p in pts if all(q[1] for q in p)) if a.get("count_include_pad") \
                else len(valid)
            if not valid:
                continue
            vals = np.stack([x[(slice(None), slice(None)) + v] for v in valid], axis=-1)
            sl = (slice(None), slice(None)) + tuple(o)
            if a["kind"] == "max":
                j = np.argmax(vals, axis=-1)
                y[sl] = np.take_along_axis(vals, j[..., None], -1)[..., 0]
                lin = np.array([sum(v[i] * xs_[2 + i] for i in range(nd)) if not a.get("storage_order")
                                else _col_major(v, sp) for v in valid])
                base = (np.arange(N)[:, None] * xs_[0] + np.arange(C)[None, :] * xs_[1])
                ind[sl] = base + lin[j]
            elif a["kind"] == "avg":
                y[sl] = vals.astype(np.float64).sum(axis=-1) / max(counted, 1)
            else:
                p = float(a.get("p", 2))
                y[sl] = (np.abs(vals.astype(np.float64)) ** p).sum(axis=-1) ** (1.0 / p)
        res = [y.astype(x.dtype)]
        if len(n.outputs) > 1:
            res.append(ind)
        return res

    def emit(self, k):
        g, n = k.g, k.node
        x = k.tin(0)
        a = n.attrs
        sp, out = _geometry(g, n)
        nd = len(sp)
        N, C = x.shape[:2]
        ct = dtypes.c_type(x.dtype)
        kind = a["kind"]
        xs_ = strides(x.shape)
        ys = strides([N, C] + out)
        with_idx = len(n.outputs) > 1 and bool(n.outputs[1])
        lines = [f"  for (int nc = 0; nc < {N * C}; ++nc) {{",
                 f"    const {ct}* xp = {k.x(0)} + nc * {xs_[1]};"]
        ind = "    "
        for i in range(nd):
            lines.append(f"{ind}for (int o{i} = 0; o{i} < {out[i]}; ++o{i}) {{")
            ind += "  "
        if kind == "max":
            if dtypes.is_float(x.dtype):
                init = "-INFINITY"
            else:
                init = c_literal(dtypes.int_range(x.dtype)[0], x.dtype)
            lines.append(f"{ind}{ct} acc = {init};")
            lines.append(f"{ind}int64_t arg = -1;")
        else:
            lines.append(f"{ind}{ct} acc = 0;")
            lines.append(f"{ind}int cnt = 0;")
        inner = ind
        for i in range(nd):
            lines.append(f"{inner}for (int t{i} = 0; t{i} < {a['kernel'][i]}; ++t{i}) {{")
            inner += "  "
            lines.append(f"{inner}const int p{i} = o{i} * {a['strides'][i]} - {a['pads'][i]} + "
                         f"t{i} * {a['dilations'][i]};")
            if kind == "avg" and a.get("count_include_pad"):
                lines.append(f"{inner}if (p{i} >= {sp[i] + a['pads'][nd + i]}) continue;")
        if kind == "avg" and a.get("count_include_pad"):
            lines.append(f"{inner}++cnt;")
        cond = " || ".join(f"p{i} < 0 || p{i} >= {sp[i]}" for i in range(nd))
        lines.append(f"{inner}if ({cond}) continue;")
        off = " + ".join(f"p{i} * {xs_[2 + i]}" for i in range(nd))
        lines.append(f"{inner}{{")
        lines.append(f"{inner}  const {ct} v = xp[{off}];")
        if kind == "max":
            if a.get("storage_order"):
                cm = strides(list(reversed(sp)))[::-1]
                lin = " + ".join(f"p{i} * {cm[i]}" for i in range(nd))
            else:
                lin = off
            nan = " || v != v" if dtypes.is_float(x.dtype) else ""
            lines.append(f"{inner}  if (arg < 0 || v > acc{nan}) {{ acc = v; arg = {lin}; }}")
        elif kind == "avg":
            lines.append(f"{inner}  acc += v;")
            if not a.get("count_include_pad"):
                lines.append(f"{inner}  ++cnt;")
        else:
            f = "f" if x.dtype == "float32" else ""
            p = float(a.get("p", 2))
            term = "v * v" if p == 2 else (f"fabs{f}(v)" if p == 1 else
                                           f"pow{f}(fabs{f}(v), {c_literal(p, x.dtype)})")
            lines.append(f"{inner}  acc += {term};")
        lines.append(f"{inner}}}")
        for i in range(nd):
            inner = inner[:-2]
            lines.append(f"{inner}}}")
        yoff = "nc * " + str(ys[1]) + "".join(f" + o{i} * {ys[2 + i]}" for i in range(nd))
        if kind == "max":
            lines.append(f"{ind}y0[{yoff}] = acc;")
            if with_idx:
                lines.append(f"{ind}y1[{yoff}] = (int64_t)nc * {xs_[1]} + (arg < 0 ? 0 : arg);")
            else:
                lines.append(f"{ind}(void)arg;")
        elif kind == "avg":
            lines.append(f"{ind}y0[{yoff}] = cnt ? acc / ({ct})cnt : 0;")
        else:
            f = "f" if x.dtype == "float32" else ""
            p = float(a.get("p", 2))
            fin = f"sqrt{f}(acc)" if p == 2 else ("acc" if p == 1 else
                                                   f"pow{f}(acc, {c_literal(1.0 / p, x.dtype)})")
            lines.append(f"{ind}(void)cnt;")
            lines.append(f"{ind}y0[{yoff}] = {fin};")
        for i in range(nd):
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        lines.append("  }")
        return "\n".join(lines) + "\n"


def _col_major(v, sp):
    st = strides(list(reversed(sp)))[::-1]
    return sum(v[i] * st[i] for i in range(len(sp)))


def same_pads_nd(sp, ks, st, dl, upper: bool):
    pads_b, pads_e = [], []
    for n, k, s, d in zip(sp, ks, st, dl):
        out = -(-n // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        small = total // 2
        b, e = (small, total - small) if upper else (total - small, small)
        pads_b.append(b)
        pads_e.append(e)
    return pads_b + pads_e


def onnx_pool_nd(ctx, node, kind: str) -> None:
    """Import an ONNX MaxPool / AveragePool / LpPool as ``PoolNd``."""
    x = ctx.inp(node, 0)
    xt = ctx.t(x)
    nd = xt.rank - 2
    if nd < 1:
        raise EdgecError(f"{node.op_type} of a {xt.rank}-D input")
    ks = list(ctx.attr(node, "kernel_shape"))
    st = list(ctx.attr(node, "strides") or [1] * nd)
    dl = list(ctx.attr(node, "dilations") or [1] * nd)
    pads = list(ctx.attr(node, "pads") or [0] * (2 * nd))
    auto = ctx.attr(node, "auto_pad", "NOTSET", AUTO_PADS)
    sp = list(xt.shape[2:])
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = same_pads_nd(sp, ks, st, dl, auto == "SAME_UPPER")
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    attrs = dict(kind=kind, kernel=ks, strides=st, dilations=dl, pads=pads,
                 ceil_mode=int(ctx.attr(node, "ceil_mode", 0)),
                 count_include_pad=int(ctx.attr(node, "count_include_pad", 0)),
                 p=float(ctx.attr(node, "p", 2)), storage_order=int(ctx.attr(node, "storage_order", 0)))
    outs = [ctx.out(node, 0)]
    if kind == "max" and len(node.output) > 1 and node.output[1]:
        outs.append(ctx.out(node, 1))
    if kind == "lp" and not math.isfinite(attrs["p"]):
        raise UnsupportedError(["LpPool with an infinite p"])
    if kind == "lp" and not attrs["p"] >= 1:
        raise EdgecError(f"LpPool p {attrs['p']:g} (must be 1 or more)")
    ctx.add("PoolNd", [x], outs, attrs, node.name)


@register
class MaxUnpool(Op):
    """Scatter the pooled values into a zero tensor of ``attrs['shape']``.  The
    flat ``indices`` address the unpooled tensor of ``attrs['dshape']`` (what
    pooling saw); they are mapped to the same coordinates of ``shape`` (and
    clamped into it)."""
    name = "MaxUnpool"

    def infer(self, g, n):
        x, idx = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if idx.shape != x.shape or idx.dtype not in ("int32", "int64"):
            raise EdgecError("MaxUnpool: indices must be int64 of the input's shape")
        if len(n.attrs["shape"]) != len(n.attrs["dshape"]):
            raise EdgecError("MaxUnpool: output_shape of the wrong rank")
        if min(n.attrs["dshape"], default=1) < 1:
            raise EdgecError(f"MaxUnpool: the unpooled shape {n.attrs['dshape']} is empty")
        check_shape(tuple(n.attrs["dshape"]), "MaxUnpool (unpooled shape)")
        return [OutSpec(tuple(n.attrs["shape"]), x.dtype, x.quant)]

    def _map(self, n, j):
        shape, dshape = n.attrs["shape"], n.attrs["dshape"]
        j = np.clip(j, 0, max(prod(dshape) - 1, 0))
        coords = np.unravel_index(j, dshape)
        coords = [np.minimum(c, d - 1) for c, d in zip(coords, shape)]
        return np.ravel_multi_index(coords, shape)

    def reference(self, g, n, xs):
        shape = tuple(n.attrs["shape"])
        y = np.zeros(prod(shape), dtype=xs[0].dtype)
        y[self._map(n, xs[1].reshape(-1).astype(np.int64))] = xs[0].reshape(-1)
        return [y.reshape(shape)]

    def emit(self, k):
        y = k.tout()
        shape, dshape = k.node.attrs["shape"], k.node.attrs["dshape"]
        ds, os_ = strides(dshape), strides(shape)
        lines = [f"  memset(y0, 0, {y.nbytes}u);",
                 f"  for (int i = 0; i < {k.tin(0).size}; ++i) {{",
                 f"    int64_t j = (int64_t){k.x(1)}[i];",
                 "    int64_t off = 0;",
                 f"    j = j < 0 ? 0 : (j > {max(prod(dshape) - 1, 0)} ? {max(prod(dshape) - 1, 0)} : j);"]
        for d in range(len(shape)):
            lines.append(f"    {{ int64_t c = j / {ds[d]}; j -= c * {ds[d]}; "
                         f"if (c > {shape[d] - 1}) c = {shape[d] - 1}; off += c * {os_[d]}; }}")
        lines += [f"    y0[off] = {k.x(0)}[i];", "  }"]
        return "\n".join(lines) + "\n"


def onnx_max_unpool(ctx, node) -> None:
    x = ctx.inp(node, 0)
    xt = ctx.t(x)
    nd = xt.rank - 2
    ks = list(ctx.attr(node, "kernel_shape"))
    st = list(ctx.attr(node, "strides") or [1] * nd)
    pads = list(ctx.attr(node, "pads") or [0] * (2 * nd))
    if len(ks) != nd or len(st) != nd or len(pads) != 2 * nd or min(ks + st) < 1 or min(pads) < 0:
        raise EdgecError(f"MaxUnpool: kernel_shape {ks}, strides {st} and pads {pads} do not fit "
                         f"{nd} spatial axes (positive kernel and strides, pads >= 0)")
    dshape = list(xt.shape[:2]) + [(xt.shape[2 + i] - 1) * st[i] + ks[i] - pads[i] - pads[nd + i]
                                   for i in range(nd)]
    shape = dshape
    if ctx.inp(node, 2):
        shape = [int(v) for v in np.asarray(ctx.const_input(node, 2, "output_shape")).reshape(-1)]
    ctx.add("MaxUnpool", [x, ctx.inp(node, 1)], [ctx.out(node)], {"shape": shape, "dshape": dshape},
            node.name)
