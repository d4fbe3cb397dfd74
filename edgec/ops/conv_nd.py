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
import math

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import AUTO_PADS, check_per_channel, check_window, prod, strides
from .pool_nd import same_pads_nd

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
    for i in range(nd):
        check_window("Conv", x.shape[2 + i], ks[i], st[i], dl[i], pd[i], pd[nd + i])
    out = [(x.shape[2 + i] + pd[i] + pd[nd + i] - (ks[i] - 1) * dl[i] - 1) // st[i] + 1
           for i in range(nd)]
    if min(out) < 1:
        raise EdgecError(f"Conv: the kernel {ks} does not fit the input {list(x.shape[2:])}")
    check_per_channel(g, n, 3 if n.op == "DeformConv" else 2, M)
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
    nd = xt.rank - 2
    ks = list(ctx.attr(node, "kernel_shape") or wt.shape[2:])
    if ks != list(wt.shape[2:]):
        raise EdgecError(f"{node.op_type}: kernel_shape {ks} does not match weights {list(wt.shape)}")
    st = list(ctx.attr(node, "strides") or [1] * nd)
    dl = list(ctx.attr(node, "dilations") or [1] * nd)
    pads = list(ctx.attr(node, "pads") or [0] * (2 * nd))
    auto = ctx.attr(node, "auto_pad", "NOTSET", AUTO_PADS)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = same_pads_nd(list(xt.shape[2:]), ks, st, dl, auto == "SAME_UPPER")
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    return {"strides": st, "dilations": dl, "pads": pads, "group": int(ctx.attr(node, "group", 1))}


@register
class DeformConv(Op):
    """2-D deformable convolution (float): every kernel tap reads the input at
    its position plus a learned offset (``offset [N, G*2*KH*KW, OH, OW]``, y then
    x per tap) by bilinear interpolation with zeros outside, times an optional
    ``mask [N, G*KH*KW, OH, OW]``.  Inputs ``x, w, offset[, b[, mask]]``;
    attributes ``strides``, ``dilations``, ``pads``, ``group``, ``offset_group``."""
    name = "DeformConv"

    def _geometry(self, g, n):
        x, w, off = (g.tensors[i] for i in n.inputs[:3])
        if x.rank != 4:
            raise UnsupportedError([f"DeformConv on a {x.rank}-D input"])
        N, C, M, grp, ks, out = geometry(g, n)
        og = int(n.attrs["offset_group"])
        if og < 1 or C % og or tuple(off.shape) != (N, og * 2 * ks[0] * ks[1], *out):
            raise EdgecError(f"DeformConv: offset {list(off.shape)} does not fit")
        mk = n.input(4)
        if mk and tuple(g.tensors[mk].shape) != (N, og * ks[0] * ks[1], *out):
            raise EdgecError("DeformConv: mask shape does not fit")
        return N, C, M, grp, ks, out, og

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"DeformConv[{x.dtype}]"])
        N, C, M, grp, ks, out, og = self._geometry(g, n)
        return [OutSpec((N, M, *out), x.dtype)]

    @staticmethod
    def _bilinear(img, y, x):
        H, W = img.shape
        y0, x0 = math.floor(y), math.floor(x)
        v = 0.0
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                if 0 <= yy < H and 0 <= xx < W:
                    v += wy * wx * img[yy, xx]
        return v

    def reference(self, g, n, xs):
        N, C, M, grp, ks, out, og = self._geometry(g, n)
        a = n.attrs
        x, w, off = (v.astype(np.float64) for v in xs[:3])
        b = xs[3] if len(xs) > 3 and xs[3] is not None else None
        mask = xs[4] if len(xs) > 4 and xs[4] is not None else None
        KH, KW = ks
        Cg, Mg, Co = C // grp, M // grp, C // og
        offr = off.reshape(N, og, KH, KW, 2, *out)
        y = np.zeros((N, M, *out))
        for bn in range(N):
            for c in range(C):
                gi, oi = c // Cg, c // Co
                for i in range(out[0]):
                    for j in range(out[1]):
                        for kh in range(KH):
                            for kw in range(KW):
                                py = i * a["strides"][0] - a["pads"][0] + kh * a["dilations"][0] \
                                    + offr[bn, oi, kh, kw, 0, i, j]
                                px = j * a["strides"][1] - a["pads"][1] + kw * a["dilations"][1] \
                                    + offr[bn, oi, kh, kw, 1, i, j]
                                v = self._bilinear(x[bn, c], py, px)
                                if mask is not None:
                                    v *= float(mask.reshape(N, og, KH, KW, *out)[bn, oi, kh, kw, i, j])
                                y[bn, gi * Mg:(gi + 1) * Mg, i, j] += v * w[gi * Mg:(gi + 1) * Mg, c % Cg, kh, kw]
        if b is not None:
            y += b.astype(np.float64).reshape(1, M, 1, 1)
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        N, C, M, grp, ks, out, og = self._geometry(k.g, k.node)
        a = k.node.attrs
        x = k.tin(0)
        ct = dtypes.c_type(x.dtype)
        H, W = x.shape[2:]
        KH, KW = ks
        OH, OW = out
        Cg, Mg, Co = C // grp, M // grp, C // og
        mask = f" * (double){k.x(4)}[((b * {og} + oi) * {KH * KW} + kh * {KW} + kw) * {OH * OW} + i * {OW} + j]" \
            if k.has_input(4) else ""
        bias = f"(double){k.x(3)}[m]" if k.has_input(3) else "0"
        return (f"  for (int b = 0; b < {N}; ++b)\n"
                f"  for (int m = 0; m < {M}; ++m)\n"
                f"  for (int i = 0; i < {OH}; ++i)\n"
                f"  for (int j = 0; j < {OW}; ++j) {{\n"
                f"    double acc = {bias};\n"
                f"    for (int cl = 0; cl < {Cg}; ++cl) {{\n"
                f"      const int c = (m / {Mg}) * {Cg} + cl;\n"
                f"      const int oi = c / {Co};\n"
                f"      const {ct}* img = {k.x(0)} + (b * {C} + c) * {H * W};\n"
                f"      for (int kh = 0; kh < {KH}; ++kh)\n"
                f"      for (int kw = 0; kw < {KW}; ++kw) {{\n"
                f"        const int ob = ((b * {og} + oi) * {KH * KW} + kh * {KW} + kw) * {2 * OH * OW} + i * {OW} + j;\n"
                f"        double py = i * {a['strides'][0]} - {a['pads'][0]} + kh * {a['dilations'][0]} + (double){k.x(2)}[ob];\n"
                f"        double px = j * {a['strides'][1]} - {a['pads'][1]} + kw * {a['dilations'][1]} + (double){k.x(2)}[ob + {OH * OW}];\n"
                f"        double v = 0;\n"
                f"        if (py > -2.0 && py < {H + 1}.0 && px > -2.0 && px < {W + 1}.0) {{\n"
                f"          const int y0 = (int)floor(py), x0 = (int)floor(px);\n"
                f"          const double fy = py - y0, fx = px - x0;\n"
                f"          for (int dy = 0; dy < 2; ++dy)\n"
                f"          for (int dx = 0; dx < 2; ++dx) {{\n"
                f"            const int yy = y0 + dy, xx = x0 + dx;\n"
                f"            if (yy < 0 || yy >= {H} || xx < 0 || xx >= {W}) continue;\n"
                f"            v += (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx) * img[yy * {W} + xx];\n"
                f"          }}\n        }}\n"
                f"        acc += v{mask} * (double){k.x(1)}[((m * {Cg} + cl) * {KH} + kh) * {KW} + kw];\n"
                f"      }}\n    }}\n"
                f"    y0[((b * {M} + m) * {OH} + i) * {OW} + j] = ({ct})acc;\n  }}\n")


def onnx_deform_conv(ctx, node) -> None:
    x, w = ctx.inp(node, 0), ctx.inp(node, 1)
    ins = [x, w, ctx.inp(node, 2), ctx.inp(node, 3), ctx.inp(node, 4)]
    while ins and not ins[-1]:
        ins.pop()
    attrs = onnx_attrs(ctx, node, ctx.t(x), ctx.t(w))
    attrs["offset_group"] = int(ctx.attr(node, "offset_group", 1))
    ctx.add("DeformConv", ins, [ctx.out(node)], attrs, node.name)


onnx_op("DeformConv")(onnx_deform_conv)
