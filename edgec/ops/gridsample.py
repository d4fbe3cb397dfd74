"""GridSample: sample a 2-D (or N-D) input at the normalized coordinates of a
grid computed at run time; nearest, linear or cubic (Keys, a = -0.75)
interpolation, zeros / border / reflection padding, ``align_corners``.

For each output position the C turns the grid's coordinates into per-axis taps
(index, weight and whether the index is inside) and sums the products over all
channels; coordinates are computed in double."""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import prod, strides

MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest", "bicubic": "cubic",
         "cubic": "cubic"}
A = -0.75


def _cubic(t: float) -> list[float]:
    def w(x):
        x = abs(x)
        if x <= 1:
            return (A + 2) * x ** 3 - (A + 3) * x ** 2 + 1
        if x < 2:
            return A * x ** 3 - 5 * A * x ** 2 + 8 * A * x - 4 * A
        return 0.0
    return [w(t + 1), w(t), w(1 - t), w(2 - t)]


def _reflect(x: float, lo: float, hi: float) -> float:
    rng = hi - lo
    if x < lo:
        dx = lo - x
        k = int(dx / rng)
        r = dx - k * rng
        return lo + r if k % 2 == 0 else hi - r
    if x > hi:
        dx = x - hi
        k = int(dx / rng)
        r = dx - k * rng
        return hi - r if k % 2 == 0 else lo + r
    return x


def _taps(v: float, L: int, a: dict):
    """[(index or None, weight)] along one axis for normalized coordinate v."""
    align = a["align_corners"]
    pad = a["padding_mode"]
    x = (v + 1) / 2 * (L - 1) if align else ((v + 1) * L - 1) / 2
    lo, hi = (0.0, L - 1.0) if align else (-0.5, L - 0.5)
    if a["mode"] == "nearest":
        x = float(np.rint(x))
    if x < lo or x > hi:
        if pad == "border":
            x = min(max(x, 0.0), L - 1.0)
        elif pad == "reflection":
            x = _reflect(x, lo, hi)
    if a["mode"] == "nearest":
        taps = [(int(x), 1.0)]
    else:
        f = math.floor(x)
        t = x - f
        if a["mode"] == "linear":
            taps = [(f, 1 - t), (f + 1, t)]
        else:
            taps = list(zip(range(f - 1, f + 3), _cubic(t)))
    out = []
    for i, w in taps:
        if pad == "zeros":
            out.append((i if 0 <= i < L else None, w))
        elif pad == "border":
            out.append((min(max(i, 0), L - 1), w))
        else:
            out.append((int(_reflect(float(i), lo, hi)), w))
    return out


@register
class GridSample(Op):
    name = "GridSample"

    def infer(self, g, n):
        x, grid = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        nd = x.rank - 2
        if nd < 1 or grid.rank != x.rank or grid.shape[-1] != nd or grid.shape[0] != x.shape[0]:
            raise EdgecError(f"GridSample: input {list(x.shape)} and grid {list(grid.shape)} do not fit")
        if x.dtype not in dtypes.FLOAT_TYPES or grid.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"GridSample[{x.dtype}, grid {grid.dtype}]"])
        if n.attrs["mode"] not in ("nearest", "linear", "cubic") or \
                n.attrs["padding_mode"] not in ("zeros", "border", "reflection"):
            raise UnsupportedError([f"GridSample {n.attrs['mode']}/{n.attrs['padding_mode']}"])
        return [OutSpec(tuple(x.shape[:2]) + tuple(grid.shape[1:-1]), x.dtype)]

    def reference(self, g, n, xs):
        x, grid = xs[0].astype(np.float64), xs[1].astype(np.float64)
        N, C = x.shape[:2]
        sp = x.shape[2:]
        nd = len(sp)
        outsp = grid.shape[1:-1]
        y = np.zeros((N, C) + tuple(outsp))
        for b in range(N):
            for o in itertools.product(*[range(d) for d in outsp]):
                coords = grid[(b,) + o]
                per = [_taps(float(coords[nd - 1 - d]), sp[d], n.attrs) for d in range(nd)]
                acc = np.zeros(C)
                for combo in itertools.product(*per):
                    if any(i is None for i, _ in combo):
                        continue
                    w = np.prod([wt for _, wt in combo])
                    acc += w * x[(b, slice(None)) + tuple(i for i, _ in combo)]
                y[(b, slice(None)) + o] = acc
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        x, grid = k.tin(0), k.tin(1)
        a = k.node.attrs
        N, C = x.shape[:2]
        sp = list(x.shape[2:])
        nd = len(sp)
        P = prod(grid.shape[1:-1])
        ct = dtypes.c_type(x.dtype)
        K = {"nearest": 1, "linear": 2, "cubic": 4}[a["mode"]]
        xs_ = strides(x.shape)
        align = a["align_corners"]
        pad = a["padding_mode"]
        k.need("gridsample")
        L = [f"  for (int b = 0; b < {N}; ++b)",
             f"  for (int o = 0; o < {P}; ++o) {{",
             f"    int ix[{nd}][{K}];",
             f"    double w[{nd}][{K}];",
             f"    int ok[{nd}][{K}];"]
        for d in range(nd):
            Ld = sp[d]
            lo, hi = (0.0, Ld - 1.0) if align else (-0.5, Ld - 0.5)
            den = f"(v + 1) / 2 * {Ld - 1}.0" if align else f"((v + 1) * {Ld} - 1) / 2"
            L.append("    {")
            L.append(f"      const double v = (double){k.x(1)}[(b * {P} + o) * {nd} + {nd - 1 - d}];")
            L.append(f"      double c = {den};")
            L.append("      if (!(c > -1e6)) c = -1e6;  /* NaN and huge coordinates: far outside */")
            L.append("      if (c > 1e6) c = 1e6;")
            if a["mode"] == "nearest":
                L.append("      c = rint(c);")
            if pad == "border":
                L.append(f"      if (c < {lo!r} || c > {hi!r}) c = c < 0 ? 0 : (c > {Ld - 1}.0 ? {Ld - 1}.0 : c);")
            elif pad == "reflection":
                L.append(f"      c = edgec_gs_reflect(c, {lo!r}, {hi!r});")
            if a["mode"] == "nearest":
                L.append("      { const int f = (int)c; const double t = 0; (void)t;")
                taps = ["f"]
                L.append("        w[%d][0] = 1;" % d)
            else:
                L.append("      { const int f = (int)floor(c); const double t = c - f;")
                if a["mode"] == "linear":
                    taps = ["f", "f + 1"]
                    L.append(f"        w[{d}][0] = 1 - t; w[{d}][1] = t;")
                else:
                    taps = ["f - 1", "f", "f + 1", "f + 2"]
                    L.append(f"        edgec_gs_cubic(t, w[{d}]);")
            for j, e in enumerate(taps):
                L.append(f"        {{ int i = {e};")
                if pad == "zeros":
                    L.append(f"          ok[{d}][{j}] = i >= 0 && i < {Ld}; if (!ok[{d}][{j}]) i = 0;")
                elif pad == "border":
                    L.append(f"          ok[{d}][{j}] = 1; i = i < 0 ? 0 : (i > {Ld - 1} ? {Ld - 1} : i);")
                else:
                    L.append(f"          ok[{d}][{j}] = 1; i = (int)edgec_gs_reflect((double)i, {lo!r}, {hi!r});")
                    L.append(f"          i = i < 0 ? 0 : (i > {Ld - 1} ? {Ld - 1} : i);")
                L.append(f"          ix[{d}][{j}] = i; }}")
            L.append("      }")
            L.append("    }")
        L.append(f"    for (int ch = 0; ch < {C}; ++ch) {{")
        L.append("      double acc = 0;")
        L.append(f"      const {ct}* xp = {k.x(0)} + (b * {C} + ch) * {xs_[1]};")
        ind = "      "
        for d in range(nd):
            L.append(f"{ind}for (int t{d} = 0; t{d} < {K}; ++t{d}) {{")
            ind += "  "
            L.append(f"{ind}if (!ok[{d}][t{d}]) continue;")
        wexpr = " * ".join(f"w[{d}][t{d}]" for d in range(nd))
        off = " + ".join(f"ix[{d}][t{d}] * {xs_[2 + d]}" for d in range(nd))
        L.append(f"{ind}acc += {wexpr} * (double)xp[{off}];")
        for d in range(nd):
            ind = ind[:-2]
            L.append(f"{ind}}}")
        L.append(f"      y0[(b * {C} + ch) * {P} + o] = ({ct})acc;")
        L.append("    }")
        L.append("  }")
        return "\n".join(L) + "\n"


@onnx_op("GridSample")
def _onnx_gridsample(ctx, node):
    mode = ctx.attr(node, "mode", "linear" if ctx.opset >= 20 else "bilinear")
    if mode not in MODES:
        raise UnsupportedError([f"GridSample mode {mode}"])
    ctx.add("GridSample", [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)],
            {"mode": MODES[mode], "padding_mode": ctx.attr(node, "padding_mode", "zeros",
                                                        ("zeros", "border", "reflection")),
             "align_corners": int(ctx.attr(node, "align_corners", 0))}, node.name)
