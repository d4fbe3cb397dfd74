"""ConvTranspose (1-D, 2-D, 3-D, grouped, dilated, float), NCHW as ONNX.

IR ``ConvTranspose``: inputs ``x [N, C, D1..]``, ``w [C, M/group, K1..]``
(constant or computed), optional ``b [M]``; attributes ``strides``, ``dilations``,
``pads`` (begin..., end...), ``output_padding`` and ``group``.  Output size per
axis: ``stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin
- pad_end``.  The C gathers: every output element sums the input elements and
kernel taps that land on it.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import AUTO_PADS, check_per_channel, check_window, prod, strides


def _geometry(g, n):
    x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
    nd = x.rank - 2
    a = n.attrs
    if nd < 1 or w.rank != x.rank:
        raise EdgecError(f"ConvTranspose: input {list(x.shape)} and weights {list(w.shape)}")
    N, C = x.shape[:2]
    grp = int(a["group"])
    if grp < 1 or C % grp or w.shape[0] != C:
        raise EdgecError(f"ConvTranspose: {C} channels, weights {list(w.shape)}, group {grp}")
    M = w.shape[1] * grp
    ks = list(w.shape[2:])
    st, dl, pd, op = a["strides"], a["dilations"], a["pads"], a["output_padding"]
    if not (len(st) == len(dl) == len(op) == nd and len(pd) == 2 * nd):
        raise EdgecError("ConvTranspose: attributes do not match the number of spatial axes")
    if min(st + dl) < 1 or min(pd + op, default=0) < 0:
        raise EdgecError("ConvTranspose: bad strides, dilations, pads or output_padding")
    for i in range(nd):
        check_window("ConvTranspose", st[i] * (x.shape[2 + i] - 1) + op[i], ks[i], st[i], dl[i],
                     pd[i], pd[nd + i])
    out = [st[i] * (x.shape[2 + i] - 1) + op[i] + (ks[i] - 1) * dl[i] + 1 - pd[i] - pd[nd + i]
           for i in range(nd)]
    if min(out) < 1:
        raise EdgecError(f"ConvTranspose: output size {out}")
    check_per_channel(g, n, 2, M)
    return N, C, M, grp, ks, out


@register
class ConvTranspose(Op):
    name = "ConvTranspose"

    def infer(self, g, n):
        N, C, M, grp, ks, out = _geometry(g, n)
        x = g.tensors[n.inputs[0]]
        if x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"ConvTranspose[{x.dtype}]"])
        return [OutSpec((N, M, *out), x.dtype)]

    def macs(self, g, n):
        N, C, M, grp, ks, out = _geometry(g, n)
        x = g.tensors[n.inputs[0]]
        return N * prod(x.shape[1:]) * (M // grp) * prod(ks)

    def reference(self, g, n, xs):
        x, w = xs[0].astype(np.float64), xs[1].astype(np.float64)
        N, C, M, grp, ks, out = _geometry(g, n)
        a = n.attrs
        nd = len(ks)
        st, dl, pd = a["strides"], a["dilations"], a["pads"]
        full = [st[i] * (x.shape[2 + i] - 1) + (ks[i] - 1) * dl[i] + 1 + a["output_padding"][i]
                for i in range(nd)]
        y = np.zeros((N, M, *full))
        Cg, Mg = C // grp, M // grp
        for gi in range(grp):
            xg = x[:, gi * Cg:(gi + 1) * Cg]
            wg = w[gi * Cg:(gi + 1) * Cg]  # [Cg, Mg, k...]
            for kk in itertools.product(*[range(k) for k in ks]):
                contrib = np.einsum("nc...,cm->nm...", xg, wg[(slice(None), slice(None)) + kk])
                sl = tuple(slice(kk[i] * dl[i], kk[i] * dl[i] + st[i] * (x.shape[2 + i] - 1) + 1, st[i])
                           for i in range(nd))
                y[(slice(None), slice(gi * Mg, (gi + 1) * Mg)) + sl] += contrib
        crop = tuple(slice(pd[i], pd[i] + out[i]) for i in range(nd))
        y = y[(slice(None), slice(None)) + crop]
        if len(xs) > 2 and xs[2] is not None:
            y = y + xs[2].astype(np.float64).reshape((1, M) + (1,) * nd)
        return [np.ascontiguousarray(y).astype(xs[0].dtype)]

    def emit(self, k):
        g, n = k.g, k.node
        N, C, M, grp, ks, out = _geometry(g, n)
        x = k.tin(0)
        a = n.attrs
        nd = len(ks)
        st, dl, pd = a["strides"], a["dilations"], a["pads"]
        ins = list(x.shape[2:])
        ct = dtypes.c_type(x.dtype)
        Cg, Mg = C // grp, M // grp
        wsym = k.x(1)
        ws = strides(k.tin(1).shape)
        xs = strides(x.shape)
        ys = strides([N, M] + out)
        lines = ["  for (int b = 0; b < %d; ++b)" % N,
                 "  for (int m = 0; m < %d; ++m) {" % M,
                 f"    const int g0 = m / {Mg};",
                 f"    const int ml = m % {Mg};"]
        ind = "    "
        for i in range(nd):
            lines.append(f"{ind}for (int o{i} = 0; o{i} < {out[i]}; ++o{i}) {{")
            ind += "  "
        bias = f"{k.x(2)}[m]" if k.has_input(2) else "0"
        lines.append(f"{ind}{ct} acc = {bias};")
        lines.append(f"{ind}for (int c = g0 * {Cg}; c < (g0 + 1) * {Cg}; ++c) {{")
        ind2 = ind + "  "
        for i in range(nd):
            lines.append(f"{ind2}for (int k{i} = 0; k{i} < {ks[i]}; ++k{i}) {{")
            ind2 += "  "
            lines.append(f"{ind2}const int t{i} = o{i} + {pd[i]} - k{i} * {dl[i]};")
            lines.append(f"{ind2}const int i{i} = t{i} / {st[i]};")
            lines.append(f"{ind2}if (t{i} < 0 || t{i} % {st[i]} != 0 || i{i} >= {ins[i]}) continue;")
        xoff = " + ".join([f"b * {xs[0]}", f"c * {xs[1]}"] + [f"i{i} * {xs[2 + i]}" for i in range(nd)])
        woff = " + ".join([f"c * {ws[0]}", f"ml * {ws[1]}"] + [f"k{i} * {ws[2 + i]}" for i in range(nd)])
        lines.append(f"{ind2}acc += {k.x(0)}[{xoff}] * {wsym}[{woff}];")
        for i in range(nd):
            ind2 = ind2[:-2]
            lines.append(f"{ind2}}}")
        lines.append(f"{ind}}}")
        yoff = " + ".join([f"b * {ys[0]}", f"m * {ys[1]}"] + [f"o{i} * {ys[2 + i]}" for i in range(nd)])
        lines.append(f"{ind}y0[{yoff}] = acc;")
        for i in range(nd):
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        lines.append("  }")
        return "\n".join(lines) + "\n"


@onnx_op("ConvTranspose")
def _onnx_conv_transpose(ctx, node):
    x, w, b = ctx.inp(node, 0), ctx.inp(node, 1), ctx.inp(node, 2)
    xt, wt = ctx.t(x), ctx.t(w)
    nd = xt.rank - 2
    if nd < 1:
        raise EdgecError(f"ConvTranspose of a {xt.rank}-D input")
    ks = list(ctx.attr(node, "kernel_shape") or wt.shape[2:])
    if ks != list(wt.shape[2:]):
        raise EdgecError(f"ConvTranspose: kernel_shape {ks} and weights {list(wt.shape)} differ")
    st = list(ctx.attr(node, "strides") or [1] * nd)
    dl = list(ctx.attr(node, "dilations") or [1] * nd)
    op = list(ctx.attr(node, "output_padding") or [0] * nd)
    pads = list(ctx.attr(node, "pads") or [0] * (2 * nd))
    auto = ctx.attr(node, "auto_pad", "NOTSET", AUTO_PADS)
    oshape = ctx.attr(node, "output_shape")
    ins = list(xt.shape[2:])
    if oshape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        oshape = [ins[i] * st[i] for i in range(nd)]
    if oshape is not None:
        oshape = list(oshape)[-nd:]
        pads = [0] * (2 * nd)
        for i in range(nd):
            total = st[i] * (ins[i] - 1) + op[i] + (ks[i] - 1) * dl[i] + 1 - oshape[i]
            if total < 0:
                # the output is larger than the full transposed convolution: pad at the end
                op[i] -= total
                total = 0
            if auto == "SAME_UPPER":
                pads[i], pads[nd + i] = total // 2, total - total // 2
            else:
                pads[i], pads[nd + i] = total - total // 2, total // 2
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    ctx.add("ConvTranspose", [x, w, b] if b else [x, w], [ctx.out(node)],
            {"strides": st, "dilations": dl, "pads": pads, "output_padding": op,
             "group": int(ctx.attr(node, "group", 1))}, node.name)


@register
class Col2Im(Op):
    """Sum sliding blocks back into an image: input ``[N, C * prod(block), L]``,
    output ``[N, C, *image]``; attributes ``image``, ``block``, ``strides``,
    ``dilations``, ``pads`` (begin..., end...)."""
    name = "Col2Im"

    def _geometry(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = n.attrs
        img, blk = list(a["image"]), list(a["block"])
        nd = len(img)
        st, dl, pd = a["strides"], a["dilations"], a["pads"]
        K = prod(blk)
        if x.rank != 3 or len(blk) != nd or x.shape[1] % K or len(pd) != 2 * nd:
            raise EdgecError(f"Col2Im: input {list(x.shape)}, image {img}, block {blk}")
        nb = [(img[i] + pd[i] + pd[nd + i] - dl[i] * (blk[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
        if min(nb) < 1 or prod(nb) != x.shape[2]:
            raise EdgecError(f"Col2Im: {x.shape[2]} blocks, the geometry gives {nb}")
        return x, img, blk, nb, x.shape[1] // K

    def infer(self, g, n):
        x, img, blk, nb, C = self._geometry(g, n)
        if x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"Col2Im[{x.dtype}]"])
        return [OutSpec((x.shape[0], C, *img), x.dtype)]

    def reference(self, g, n, xs):
        x, img, blk, nb, C = self._geometry(g, n)
        a = n.attrs
        nd = len(img)
        v = xs[0].astype(np.float64)
        y = np.zeros((v.shape[0], C, *img))
        for c in range(C):
            for kk in itertools.product(*[range(b) for b in blk]):
                row = c * prod(blk) + int(np.ravel_multi_index(kk, blk)) if blk else c
                for bb in itertools.product(*[range(b) for b in nb]):
                    pos = [bb[i] * a["strides"][i] - a["pads"][i] + kk[i] * a["dilations"][i]
                           for i in range(nd)]
                    if all(0 <= p < d for p, d in zip(pos, img)):
                        col = int(np.ravel_multi_index(bb, nb))
                        y[(slice(None), c) + tuple(pos)] += v[:, row, col]
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        x, img, blk, nb, C = self._geometry(k.g, k.node)
        a = k.node.attrs
        nd = len(img)
        K, Lb = prod(blk), prod(nb)
        ct = dtypes.c_type(x.dtype)
        ks, bs, ys = strides(blk), strides(nb), strides(img)
        lines = [f"  memset(y0, 0, {k.tout().nbytes}u);",
                 f"  for (int b = 0; b < {x.shape[0]}; ++b)",
                 f"  for (int r = 0; r < {C * K}; ++r)",
                 f"  for (int l = 0; l < {Lb}; ++l) {{",
                 f"    const int c = r / {K};",
                 "    int off = 0;",
                 "    int ok = 1;"]
        for i in range(nd):
            lines.append(f"    {{ const int kk = (r % {K}) / {ks[i]} % {blk[i]};")
            lines.append(f"      const int bb = l / {bs[i]} % {nb[i]};")
            lines.append(f"      const int p = bb * {a['strides'][i]} - {a['pads'][i]} + kk * {a['dilations'][i]};")
            lines.append(f"      if (p < 0 || p >= {img[i]}) ok = 0; else off += p * {ys[i]}; }}")
        lines.append(f"    if (ok) y0[(b * {C} + c) * {prod(img)} + off] += "
                     f"({ct}){k.x(0)}[(b * {C * K} + r) * {Lb} + l];")
        lines.append("  }")
        return "\n".join(lines) + "\n"


@onnx_op("Col2Im")
def _onnx_col2im(ctx, node):
    img = [int(v) for v in np.asarray(ctx.const_input(node, 1, "image_shape")).reshape(-1)]
    blk = [int(v) for v in np.asarray(ctx.const_input(node, 2, "block_shape")).reshape(-1)]
    nd = len(img)
    ctx.add("Col2Im", [ctx.inp(node, 0)], [ctx.out(node)],
            {"image": img, "block": blk,
             "strides": list(ctx.attr(node, "strides") or [1] * nd),
             "dilations": list(ctx.attr(node, "dilations") or [1] * nd),
             "pads": list(ctx.attr(node, "pads") or [0] * (2 * nd))}, node.name)
