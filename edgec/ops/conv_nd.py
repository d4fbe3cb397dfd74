"""N-dimensional direct convolution for what the 2-D kernel of
:mod:`edgec.ops.conv` does not take: 3-D (and higher) convolutions, weights
computed at run time, float64 and integer (int32) tensors.

IR ``ConvNd``: inputs ``x [N, C, D1..]``, ``w [M, C/group, K1..]`` (ONNX
layout), optional ``b [M]``; attributes ``strides``, ``dilations``, ``pads``
(begin..., end...) and ``group``.  Floats accumulate in their own type; int32
in 64-bit unsigned arithmetic (wrapping like numpy) with zero padding.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import dtypes
from ..errors import EdgecError, UnsupportedError
from . import OutSpec, Op, register
from ._util import prod, strides

TYPES = ("float32", "float64", "int32")


def geometry(g, n):
    x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
    nd = x.rank - 2
    a = n.attrs
    if nd < 1 or w.rank != x.rank:
        raise EdgecError(f"Conv: input {list(x.shape)} and weights {list(w.shape)}")
    N, C = x.shape[:2]
    M = w.shape[0]
    grp = int(a["group"])
    if grp < 1 or C % grp or M % grp or w.shape[1] != C // grp:
        raise EdgecError(f"Conv: {C} channels, weights {list(w.shape)}, group {grp}")
    ks = list(w.shape[2:])
    st, dl, pd = a["strides"], a["dilations"], a["pads"]
    if not (len(st) == len(dl) == nd and len(pd) == 2 * nd) or min(st + dl) < 1 or min(pd) < 0:
        raise EdgecError("Conv: strides, dilations or pads do not fit")
    out = [(x.shape[2 + i] + pd[i] + pd[nd + i] - (ks[i] - 1) * dl[i] - 1) // st[i] + 1
           for i in range(nd)]
    if min(out) < 1:
        raise EdgecError(f"Conv: the kernel {ks} does not fit the input {list(x.shape[2:])}")
    return N, C, M, grp, ks, out


@register
class ConvNd(Op):
    name = "ConvNd"

    def infer(self, g, n):
        x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if x.dtype not in TYPES or w.dtype != x.dtype:
            raise UnsupportedError([f"Conv[{x.dtype}, weights {w.dtype}]"])
        N, C, M, grp, ks, out = geometry(g, n)
        return [OutSpec((N, M, *out), x.dtype)]

    def macs(self, g, n):
        N, C, M, grp, ks, out = geometry(g, n)
        return N * M * prod(out) * (C // grp) * prod(ks)

    def reference(self, g, n, xs):
        N, C, M, grp, ks, out = geometry(g, n)
        a = n.attrs
        nd = len(ks)
        isf = xs[0].dtype.kind == "f"
        wide = np.float64 if isf else np.int64
        x = xs[0].astype(wide)
        w = xs[1].astype(wide)
        x = np.pad(x, [(0, 0), (0, 0)] + [(a["pads"][i], a["pads"][nd + i]) for i in range(nd)])
        y = np.zeros((N, M, *out), dtype=wide)
        Cg, Mg = C // grp, M // grp
        for kk in itertools.product(*[range(k) for k in ks]):
            sl = tuple(slice(kk[i] * a["dilations"][i],
                             kk[i] * a["dilations"][i] + a["strides"][i] * (out[i] - 1) + 1,
                             a["strides"][i]) for i in range(nd))
            patch = x[(slice(None), slice(None)) + sl]
            for gi in range(grp):
                wk = w[(slice(gi * Mg, (gi + 1) * Mg), slice(None)) + kk]  # [Mg, Cg]
                y[:, gi * Mg:(gi + 1) * Mg] += np.einsum("nc...,mc->nm...", patch[:, gi * Cg:(gi + 1) * Cg], wk)
        if len(xs) > 2 and xs[2] is not None:
            y = y + xs[2].astype(wide).reshape((1, M) + (1,) * nd)
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        g, n = k.g, k.node
        N, C, M, grp, ks, out = geometry(g, n)
        x = k.tin(0)
        a = n.attrs
        nd = len(ks)
        ct = dtypes.c_type(x.dtype)
        isf = dtypes.is_float(x.dtype)
        acc_t = ct if isf else "uint64_t"
        cast = "" if isf else "(uint64_t)(int64_t)"
        Cg, Mg = C // grp, M // grp
        xs, ws, ys = strides(x.shape), strides(k.tin(1).shape), strides([N, M] + out)
        sp = list(x.shape[2:])
        L = [f"  for (int b = 0; b < {N}; ++b)",
             f"  for (int m = 0; m < {M}; ++m) {{",
             f"    const int c0 = (m / {Mg}) * {Cg};"]
        ind = "    "
        for i in range(nd):
            L.append(f"{ind}for (int o{i} = 0; o{i} < {out[i]}; ++o{i}) {{")
            ind += "  "
        bias = f"{cast}{k.x(2)}[m]" if k.has_input(2) else "0"
        L.append(f"{ind}{acc_t} acc = {bias};")
        L.append(f"{ind}for (int c = 0; c < {Cg}; ++c) {{")
        in2 = ind + "  "
        for i in range(nd):
            L.append(f"{in2}for (int k{i} = 0; k{i} < {ks[i]}; ++k{i}) {{")
            in2 += "  "
            L.append(f"{in2}const int p{i} = o{i} * {a['strides'][i]} - {a['pads'][i]} + k{i} * {a['dilations'][i]};")
            L.append(f"{in2}if (p{i} < 0 || p{i} >= {sp[i]}) continue;")
        xo = " + ".join([f"b * {xs[0]}", f"(c0 + c) * {xs[1]}"] + [f"p{i} * {xs[2 + i]}" for i in range(nd)])
        wo = " + ".join([f"m * {ws[0]}", f"c * {ws[1]}"] + [f"k{i} * {ws[2 + i]}" for i in range(nd)])
        L.append(f"{in2}acc += {cast}{k.x(0)}[{xo}] * {cast}{k.x(1)}[{wo}];")
        for i in range(nd):
            in2 = in2[:-2]
            L.append(f"{in2}}}")
        L.append(f"{ind}}}")
        yo = " + ".join([f"b * {ys[0]}", f"m * {ys[1]}"] + [f"o{i} * {ys[2 + i]}" for i in range(nd)])
        L.append(f"{ind}y0[{yo}] = ({ct}){'acc' if isf else '(int64_t)acc'};")
        for i in range(nd):
            ind = ind[:-2]
            L.append(f"{ind}}}")
        L.append("  }")
        return "\n".join(L) + "\n"


def onnx_attrs(ctx, node, xt, wt) -> dict:
    """ONNX Conv attributes for an N-D convolution (auto_pad resolved)."""
    from .pool_nd import same_pads_nd
    nd = xt.rank - 2
    ks = list(ctx.attr(node, "kernel_shape") or wt.shape[2:])
    st = list(ctx.attr(node, "strides") or [1] * nd)
    dl = list(ctx.attr(node, "dilations") or [1] * nd)
    pads = list(ctx.attr(node, "pads") or [0] * (2 * nd))
    auto = ctx.attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = same_pads_nd(list(xt.shape[2:]), ks, st, dl, auto == "SAME_UPPER")
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    return {"strides": st, "dilations": dl, "pads": pads, "group": int(ctx.attr(node, "group", 1))}
