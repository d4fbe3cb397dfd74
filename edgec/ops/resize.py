"""Resize (and the older Upsample): nearest, linear and cubic interpolation on any
set of axes, every coordinate transformation mode of ONNX, antialiasing,
``exclude_outside`` and ``tf_crop_and_resize`` extrapolation.

Interpolation is separable, so edgec computes, at compile time, for every
resized axis and every output position the input positions it reads and their
weights (a small table in flash); the C sums ``weight_a * weight_b * ... * x``
over the taps of all resized axes.  Nearest needs one tap and no weights.

IR ``Resize``: attributes ``scales`` and ``sizes`` (one per dimension; sizes is
the output shape), ``roi`` (2 * rank, or None), ``mode``, ``coord``
(coordinate transformation), ``nearest_mode``, ``cubic_a``, ``exclude_outside``,
``extrapolation`` and ``antialias``.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_literal
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import strides

COORD_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_crop_and_resize", "half_pixel_symmetric")


def _nearest(ratio: float, mode: str) -> list[float]:
    if float(ratio).is_integer():
        return [0.0, 1.0]
    return {"round_prefer_floor": [ratio <= 0.5, ratio > 0.5],
            "round_prefer_ceil": [ratio < 0.5, ratio >= 0.5],
            "floor": [1, 0], "ceil": [0, 1]}[mode]


def _cubic(ratio: float, A: float) -> list[float]:
    def w(x):
        x = abs(x)
        if x <= 1:
            return (A + 2) * x ** 3 - (A + 3) * x ** 2 + 1
        if x < 2:
            return A * x ** 3 - 5 * A * x ** 2 + 8 * A * x - 4 * A
        return 0.0
    return [w(ratio + 1), w(ratio), w(1 - ratio), w(2 - ratio)]


def _cubic_aa(ratio: float, scale: float, A: float) -> list[float]:
    scale = min(scale, 1.0)
    start = int(math.floor(-2 / scale) + 1)
    vals = []
    for i in range(start, 2 - start):
        x = abs(scale * (i - ratio))
        if x <= 1:
            v = (A + 2) * x ** 3 - (A + 3) * x ** 2 + 1
        elif x < 2:
            v = A * x ** 3 - 5 * A * x ** 2 + 8 * A * x - 4 * A
        else:
            v = 0.0
        vals.append(v)
    s = sum(vals)
    return [v / s for v in vals]


def _linear_aa(ratio: float, scale: float) -> list[float]:
    scale = min(scale, 1.0)
    start = int(math.floor(-1 / scale) + 1)
    vals = [min(max(1 - abs((i - ratio) * scale), 0.0), 1.0) for i in range(start, 2 - start)]
    s = sum(vals)
    return [v / s for v in vals]


def axis_table(a: dict, in_w: int, out_w: int, scale: float, roi) -> tuple:
    """For one axis: (indices [out_w, n], weights [out_w, n], extrapolated [out_w])."""
    coord = a["coord"]
    out_f = scale * in_w
    ys = np.arange(out_w, dtype=np.float64)
    extrap = np.zeros(out_w, dtype=bool)
    if coord == "align_corners":
        x = np.zeros(out_w) if out_f == 1 else ys * (in_w - 1) / (out_f - 1)
    elif coord == "asymmetric":
        x = ys / scale
    elif coord == "tf_crop_and_resize":
        r0, r1 = roi
        x = np.full(out_w, (r1 - r0) * (in_w - 1) / 2) if out_f == 1 else \
            ys * (r1 - r0) * (in_w - 1) / (out_f - 1)
        x = x + r0 * (in_w - 1)
        extrap = (x < 0) | (x > in_w - 1)
    elif coord == "pytorch_half_pixel":
        x = np.full(out_w, -0.5) if out_f == 1 else (ys + 0.5) / scale - 0.5
    elif coord == "half_pixel":
        x = (ys + 0.5) / scale - 0.5
    elif coord == "half_pixel_symmetric":
        adj = out_w / out_f
        x = in_w / 2 * (1 - adj) + (ys + 0.5) / scale - 0.5
    else:
        raise UnsupportedError([f"Resize coordinate_transformation_mode {coord}"])
    mode = a["mode"]
    rows = []
    for xi in x:
        ratio = 1.0 if float(xi).is_integer() else float(xi - math.floor(xi))
        if mode == "nearest":
            c = _nearest(ratio, a["nearest_mode"])
        elif mode == "linear":
            c = _linear_aa(ratio, scale) if a["antialias"] else [1 - ratio, ratio]
        else:
            c = _cubic_aa(ratio, scale, a["cubic_a"]) if a["antialias"] else _cubic(ratio, a["cubic_a"])
        rows.append([float(v) for v in c])
    n = len(rows[0]) if rows else 1
    w = np.array(rows, dtype=np.float64).reshape(out_w, n)
    pad = -(-n // 2)
    xp = x + pad
    p = np.floor(xp).astype(np.int64)
    frac = xp - p
    if n % 2 == 0:
        off = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        base = -((n - 1) // 2)
        off = np.where(frac <= 0.5, base, base + 1)
    idx = (p + off)[:, None] + np.arange(n)[None, :] - pad
    if a["exclude_outside"]:
        w = np.where((idx < 0) | (idx >= in_w), 0.0, w)
        s = w.sum(axis=1, keepdims=True)
        w = w / np.where(s == 0, 1.0, s)
    idx = np.clip(idx, 0, in_w - 1)
    if mode == "nearest":  # one-hot weights: keep the chosen tap
        pick = np.argmax(w, axis=1)
        idx = idx[np.arange(out_w), pick][:, None]
        w = np.ones((out_w, 1))
    return idx, w, extrap


def tables(a: dict, in_shape) -> list:
    """[(axis, idx, w, extrap)] for the axes that change."""
    out = []
    r = len(in_shape)
    for d in range(r):
        scale = float(a["scales"][d])
        size = int(a["sizes"][d])
        roi = None if a["roi"] is None else (a["roi"][d], a["roi"][d + r])
        if math.isclose(scale, 1.0) and size == in_shape[d] and (
                roi is None or (math.isclose(roi[0], 0.0) and math.isclose(roi[1], 1.0))):
            continue
        idx, w, ex = axis_table(a, int(in_shape[d]), size, scale, roi)
        out.append((d, idx, w, ex))
    return out


@register
class Resize(Op):
    name = "Resize"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = n.attrs
        if len(a["sizes"]) != x.rank or len(a["scales"]) != x.rank:
            raise EdgecError(f"Resize: scales/sizes for {len(a['sizes'])} dimensions, input has {x.rank}")
        if a["mode"] not in ("nearest", "linear", "cubic") or a["coord"] not in COORD_MODES:
            raise UnsupportedError([f"Resize mode {a['mode']}/{a['coord']}"])
        if not all(0 < s < math.inf for s in a["scales"]) or any(d < 0 for d in a["sizes"]):
            raise EdgecError("Resize: scales must be positive and finite")
        if a.get("roi") is not None and not all(math.isfinite(v) for v in a["roi"]):
            raise EdgecError("Resize: the roi must be finite")
        return [OutSpec(tuple(int(d) for d in a["sizes"]), x.dtype, x.quant)]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.quant is not None and n.attrs["mode"] != "nearest":
            return f"Resize[quantized {x.dtype}] {n.attrs['mode']}"
        if x.dtype == "bool":
            return "Resize[bool]"
        if x.size == 0:
            return "Resize of an empty tensor"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        y = x.astype(np.float64)
        for d, idx, w, ex in tables(n.attrs, x.shape):
            taken = np.take(y, idx, axis=d)  # [..., out, n, ...]
            wshape = (1,) * d + w.shape + (1,) * (y.ndim - d - 1)
            y = (taken * w.reshape(wshape)).sum(axis=d + 1)
            if ex.any():
                mshape = (1,) * d + ex.shape + (1,) * (y.ndim - d - 1)
                y = np.where(ex.reshape(mshape), float(n.attrs["extrapolation"]), y)
        if x.dtype.kind in "iu":
            lo, hi = dtypes.int_range(dtypes.from_numpy(x.dtype))
            y = np.clip(np.round(y), lo, hi)
        return [y.astype(x.dtype)]

    def macs(self, g, n):
        t = tables(n.attrs, g.tensors[n.inputs[0]].shape)
        taps = math.prod(w.shape[1] for _, _, w, _ in t) if t else 1
        return g.tensors[n.outputs[0]].size * taps

    def emit(self, k):
        x, y = k.tin(0), k.tout()
        a = k.node.attrs
        tabs = tables(a, x.shape)
        sx = strides(x.shape)
        sy = strides(y.shape)
        ct = dtypes.c_type(x.dtype)
        isf = dtypes.is_float(x.dtype)
        acc_t = ct if isf else "float"
        resized = {d: (idx, w, ex) for d, idx, w, ex in tabs}
        lines = []
        ind = "  "
        for d in range(y.rank):
            lines.append(f"{ind}for (int i{d} = 0; i{d} < {y.shape[d]}; ++i{d}) {{")
            ind += "  "
        base = " + ".join(f"i{d} * {sx[d]}" for d in range(x.rank) if d not in resized and x.shape[d] > 1) or "0"
        yoff = " + ".join(f"i{d} * {sy[d]}" for d in range(y.rank) if y.shape[d] > 1) or "0"
        lines.append(f"{ind}const int base = {base};")
        any_ex = [d for d, (_, _, ex) in resized.items() if ex.any()]
        if any_ex:
            for d in any_ex:
                sym = k.const(resized[d][2].astype(np.uint8), "uint8", f"ex{d}")
                lines.append(f"{ind}if ({sym}[i{d}]) {{ y0[{yoff}] = ({ct}){c_literal(float(a['extrapolation']), x.dtype if isf else 'float32')}; continue; }}")
        simple = all(w.shape[1] == 1 for _, w, _ in resized.values())
        if simple:
            off = []
            for d, (idx, w, _) in resized.items():
                sym = k.const((idx[:, 0] * sx[d]).astype(np.int32), "int32", f"idx{d}")
                off.append(f"{sym}[i{d}]")
            lines.append(f"{ind}y0[{yoff}] = {k.x(0)}[base{''.join(' + ' + o for o in off)}];")
        else:
            lines.append(f"{ind}{acc_t} acc = 0;")
            inner = ind
            wexpr = []
            offs = []
            for d, (idx, w, _) in resized.items():
                nt = w.shape[1]
                si = k.const((idx * sx[d]).astype(np.int32).reshape(-1), "int32", f"idx{d}")
                sw = k.const(w.astype(np.float32 if acc_t == "float" else np.float64).reshape(-1),
                             "float32" if acc_t == "float" else "float64", f"w{d}")
                lines.append(f"{inner}for (int t{d} = 0; t{d} < {nt}; ++t{d}) {{")
                inner += "  "
                wexpr.append(f"{sw}[i{d} * {nt} + t{d}]")
                offs.append(f"{si}[i{d} * {nt} + t{d}]")
            lines.append(f"{inner}acc += {' * '.join(wexpr)} * ({acc_t}){k.x(0)}[base + {' + '.join(offs)}];")
            for _ in resized:
                inner = inner[:-2]
                lines.append(f"{inner}}}")
            if isf:
                lines.append(f"{ind}y0[{yoff}] = acc;")
            else:
                lo, hi = dtypes.int_range(x.dtype)
                lines.append(f"{ind}acc = rintf(acc);")
                lines.append(f"{ind}y0[{yoff}] = ({ct})(acc < {lo} ? {lo} : (acc > {hi} ? {hi} : acc));")
        for d in range(y.rank):
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        return "\n".join(lines) + "\n"


def _resize_attrs(ctx, node, x_shape, scales, sizes, roi, opset):
    r = len(x_shape)
    axes = ctx.attr(node, "axes")
    axes = list(range(r)) if axes is None else [int(v) % r for v in axes]
    policy = ctx.attr(node, "keep_aspect_ratio_policy", "stretch", ("stretch", "not_larger", "not_smaller"))
    full_scales = [1.0] * r
    full_sizes = list(x_shape)
    full_roi = None
    if roi is not None and np.asarray(roi).size:
        roi = [float(v) for v in np.asarray(roi).reshape(-1)]
        if len(roi) == 2 * len(axes):
            full_roi = [0.0] * r + [1.0] * r
            for i, d in enumerate(axes):
                full_roi[d], full_roi[d + r] = roi[i], roi[len(axes) + i]
        elif len(roi) == 2 * r:
            full_roi = roi
        else:
            raise EdgecError(f"Resize: roi of {len(roi)} values")
    if sizes is not None and np.asarray(sizes).size:
        sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
        if len(sizes) != len(axes):
            raise EdgecError(f"Resize: {len(sizes)} sizes for {len(axes)} axes")
        sc = [sizes[i] / x_shape[d] for i, d in enumerate(axes)]
        if policy in ("not_larger", "not_smaller"):
            s = min(sc) if policy == "not_larger" else max(sc)
            for d in axes:
                full_scales[d] = s
                full_sizes[d] = int(s * x_shape[d] + 0.5)
        else:
            for i, d in enumerate(axes):
                full_scales[d] = sc[i]
                full_sizes[d] = sizes[i]
    else:
        scales = [float(v) for v in np.asarray(scales).reshape(-1)]
        if len(scales) != len(axes):
            raise EdgecError(f"Resize: {len(scales)} scales for {len(axes)} axes")
        for i, d in enumerate(axes):
            full_scales[d] = scales[i]
            full_sizes[d] = int(scales[i] * x_shape[d])
    mode = ctx.attr(node, "mode", "nearest", ("nearest", "linear", "cubic"))
    if opset < 11:
        coord, nearest = "asymmetric", "floor"
    else:
        coord = ctx.attr(node, "coordinate_transformation_mode", "half_pixel", COORD_MODES)
        nearest = ctx.attr(node, "nearest_mode", "round_prefer_floor",
                           ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"))
    return dict(scales=full_scales, sizes=full_sizes, roi=full_roi, mode=mode, coord=coord,
                nearest_mode=nearest, cubic_a=float(ctx.attr(node, "cubic_coeff_a", -0.75)),
                exclude_outside=int(ctx.attr(node, "exclude_outside", 0)),
                extrapolation=float(ctx.attr(node, "extrapolation_value", 0.0)),
                antialias=int(ctx.attr(node, "antialias", 0)))


@onnx_op("Resize")
def _onnx_resize(ctx, node):
    x = ctx.inp(node, 0)
    shape = ctx.t(x).shape
    if ctx.opset < 11:
        scales, sizes, roi = ctx.const_input(node, 1, "scales"), None, None
    else:
        roi = ctx.const_input(node, 1, "roi") if ctx.inp(node, 1) else None
        scales = ctx.const_input(node, 2, "scales") if ctx.inp(node, 2) else None
        sizes = ctx.const_input(node, 3, "sizes") if ctx.inp(node, 3) else None
        if scales is not None and np.asarray(scales).size == 0:
            scales = None
        if scales is None and sizes is None:
            raise EdgecError("Resize needs scales or sizes")
    attrs = _resize_attrs(ctx, node, shape, scales, sizes, roi, ctx.opset)
    if attrs["mode"] in ("bilinear", "trilinear"):
        attrs["mode"] = "linear"
    ctx.add("Resize", [x], [ctx.out(node)], attrs, node.name)


@onnx_op("Upsample")
def _onnx_upsample(ctx, node):
    x = ctx.inp(node, 0)
    shape = ctx.t(x).shape
    scales = ctx.attr(node, "scales") if ctx.opset < 9 else ctx.const_input(node, 1, "scales")
    attrs = _resize_attrs(ctx, node, shape, scales, None, None, 10)
    if attrs["mode"] in ("bilinear", "linear"):
        attrs["mode"] = "linear"
    ctx.add("Resize", [x], [ctx.out(node)], attrs, node.name)
