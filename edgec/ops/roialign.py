"""RoiAlign: average (or max) of bilinear samples in each bin of regions given at
run time, as ONNX defines it (``half_pixel`` or ``output_half_pixel``
coordinates, ``sampling_ratio`` 0 meaning adaptive, max mode taking the largest
weighted corner as the standard's reference does).  Coordinates in double."""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_double
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register

# samples per bin side at most (an adaptive grid of absurd regions stays bounded)
MAX_GRID = 1024


def _samples(y, x, H, W):
    """[(position, weight)] x 4 of a bilinear sample, or None outside."""
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return None
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= H - 1:
        yh = yl = H - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= W - 1:
        xh = xl = W - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1 - ly, 1 - lx
    return [(yl * W + xl, hy * hx), (yl * W + xh, hy * lx), (yh * W + xl, ly * hx), (yh * W + xh, ly * lx)]


@register
class RoiAlign(Op):
    name = "RoiAlign"

    def infer(self, g, n):
        x, rois, bi = (g.tensors[i] for i in n.inputs[:3])
        if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 4 or bi.shape != (rois.shape[0],):
            raise EdgecError(f"RoiAlign: X {list(x.shape)}, rois {list(rois.shape)}, "
                             f"batch_indices {list(bi.shape)}")
        if x.dtype not in dtypes.FLOAT_TYPES or rois.dtype != x.dtype:
            raise UnsupportedError([f"RoiAlign[{x.dtype}]"])
        a = n.attrs
        if min(a["output_height"], a["output_width"]) < 1 or not 0 <= a["sampling_ratio"] <= 1 << 15:
            raise EdgecError(f"RoiAlign: output {a['output_height']}x{a['output_width']} and "
                             f"sampling_ratio {a['sampling_ratio']} (output at least 1x1, "
                             "sampling_ratio 0 to 32768)")
        return [OutSpec((rois.shape[0], x.shape[1], a["output_height"], a["output_width"]), x.dtype)]

    def _roi(self, a, r):
        off = 0.5 if a["half_pixel"] else 0.0
        s = a["spatial_scale"]
        sw, sh, ew, eh = (float(r[i]) * s - off for i in range(4))
        rw, rh = ew - sw, eh - sh
        if not a["half_pixel"]:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        PH, PW = a["output_height"], a["output_width"]
        bh, bw = rh / PH, rw / PW
        sr = a["sampling_ratio"]
        gh = int(sr) if sr > 0 else int(math.ceil(rh / PH))
        gw = int(sr) if sr > 0 else int(math.ceil(rw / PW))
        return sh, sw, bh, bw, min(gh, MAX_GRID), min(gw, MAX_GRID)

    def reference(self, g, n, xs):
        X, rois, bi = xs[0].astype(np.float64), xs[1], xs[2]
        a = n.attrs
        N, C, H, W = X.shape
        PH, PW = a["output_height"], a["output_width"]
        y = np.zeros((rois.shape[0], C, PH, PW))
        for r in range(rois.shape[0]):
            sh, sw, bh, bw, gh, gw = self._roi(a, rois[r])
            count = max(gh * gw, 1)
            b = min(max(int(bi[r]), 0), N - 1)
            img = X[b].reshape(C, H * W)
            for ph in range(PH):
                for pw in range(PW):
                    vals = []
                    for iy in range(gh):
                        yy = sh + ph * bh + (iy + 0.5) * bh / gh
                        for ix in range(gw):
                            xx = sw + pw * bw + (ix + 0.5) * bw / gw
                            s = _samples(yy, xx, H, W)
                            if s is None:
                                s = [(0, 0.0)] * 4
                            terms = np.stack([w * img[:, p] for p, w in s])
                            vals.append(terms.sum(0) if a["mode"] == "avg" else terms.max(0))
                    if not vals:
                        continue
                    v = np.stack(vals)
                    y[r, :, ph, pw] = v.sum(0) / count if a["mode"] == "avg" else v.max(0)
        return [y.astype(xs[0].dtype)]

    def emit(self, k):
        X = k.tin(0)
        a = k.node.attrs
        N, C, H, W = X.shape
        R = k.tin(1).shape[0]
        PH, PW = a["output_height"], a["output_width"]
        ct = dtypes.c_type(X.dtype)
        off = c_double(0.5 if a["half_pixel"] else 0.0)
        s = c_double(a["spatial_scale"])
        sr = int(a["sampling_ratio"])
        avg = a["mode"] == "avg"
        L = [f"  for (int r = 0; r < {R}; ++r) {{",
             f"    const double sw = (double){k.x(1)}[r * 4 + 0] * {s} - {off};",
             f"    const double sh = (double){k.x(1)}[r * 4 + 1] * {s} - {off};",
             f"    double rw = (double){k.x(1)}[r * 4 + 2] * {s} - {off} - sw;",
             f"    double rh = (double){k.x(1)}[r * 4 + 3] * {s} - {off} - sh;",
             "    double bh, bw;", "    int gh, gw;" + (" int count;" if avg else ""),
             f"    int64_t bi = (int64_t){k.x(2)}[r];"]
        if not a["half_pixel"]:
            L += ["    rw = rw < 1.0 ? 1.0 : rw;", "    rh = rh < 1.0 ? 1.0 : rh;"]
        L += [f"    bh = rh / {PH};", f"    bw = rw / {PW};"]
        if sr > 0:
            L += [f"    gh = {sr};", f"    gw = {sr};"]
        else:
            L += ["    gh = (int)ceil(EDGEC_MIN(EDGEC_MAX(rh, 0.0), 1e9) / %d);" % PH,
                  "    gw = (int)ceil(EDGEC_MIN(EDGEC_MAX(rw, 0.0), 1e9) / %d);" % PW,
                  f"    gh = gh > {MAX_GRID} ? {MAX_GRID} : gh;",
                  f"    gw = gw > {MAX_GRID} ? {MAX_GRID} : gw;"]
        if avg:
            L.append("    count = gh * gw < 1 ? 1 : gh * gw;")
        L += [f"    bi = bi < 0 ? 0 : (bi > {N - 1} ? {N - 1} : bi);",
              f"    for (int c = 0; c < {C}; ++c) {{",
              f"      const {ct}* img = {k.x(0)} + (bi * {C} + c) * {H * W};",
              f"      for (int ph = 0; ph < {PH}; ++ph)",
              f"      for (int pw = 0; pw < {PW}; ++pw) {{",
              "        double acc = 0;", "        int first = 1;",
              "        for (int iy = 0; iy < gh; ++iy) {",
              "          const double yy0 = sh + ph * bh + (iy + 0.5) * bh / gh;",
              "          for (int ix = 0; ix < gw; ++ix) {",
              "            double y = yy0, x = sw + pw * bw + (ix + 0.5) * bw / gw;",
              "            double v;",
              f"            if (y < -1.0 || y > {H} || x < -1.0 || x > {W}) {{",
              "              v = 0;",
              "            } else {",
              "              int yl, xl, yh, xh;",
              "              double ly, lx;",
              "              if (y < 0) y = 0;", "              if (x < 0) x = 0;",
              "              yl = (int)y;", "              xl = (int)x;",
              f"              if (yl >= {H - 1}) {{ yh = yl = {H - 1}; y = yl; }} else yh = yl + 1;",
              f"              if (xl >= {W - 1}) {{ xh = xl = {W - 1}; x = xl; }} else xh = xl + 1;",
              "              ly = y - yl;", "              lx = x - xl;",
              "              {",
              f"                const double t1 = (1 - ly) * (1 - lx) * img[yl * {W} + xl];",
              f"                const double t2 = (1 - ly) * lx * img[yl * {W} + xh];",
              f"                const double t3 = ly * (1 - lx) * img[yh * {W} + xl];",
              f"                const double t4 = ly * lx * img[yh * {W} + xh];"]
        if avg:
            L.append("                v = t1 + t2 + t3 + t4;")
        else:
            L.append("                v = EDGEC_MAX(EDGEC_MAX(t1, t2), EDGEC_MAX(t3, t4));")
        L += ["              }", "            }"]
        if avg:
            L.append("            acc += v;")
        else:
            L.append("            if (first || v > acc) acc = v;")
        L += ["            first = 0;", "          }", "        }"]
        if avg:
            L.append("        acc /= count;")
        L += ["        (void)first;",
              f"        y0[((r * {C} + c) * {PH} + ph) * {PW} + pw] = ({ct})acc;",
              "      }", "    }", "  }"]
        return "\n".join(L) + "\n"


@onnx_op("RoiAlign")
def _onnx_roialign(ctx, node):
    ctm = ctx.attr(node, "coordinate_transformation_mode",
                   "half_pixel" if ctx.opset >= 16 else "output_half_pixel")
    if ctm not in ("half_pixel", "output_half_pixel"):
        raise EdgecError(f"RoiAlign coordinate_transformation_mode {ctm!r}")
    mode = ctx.attr(node, "mode", "avg")
    if mode not in ("avg", "max"):
        raise UnsupportedError([f"RoiAlign mode {mode}"])
    ctx.add("RoiAlign", [ctx.inp(node, i) for i in range(3)], [ctx.out(node)],
            {"mode": mode, "half_pixel": ctm == "half_pixel",
             "output_height": int(ctx.attr(node, "output_height", 1)),
             "output_width": int(ctx.attr(node, "output_width", 1)),
             "sampling_ratio": int(ctx.attr(node, "sampling_ratio", 0)),
             "spatial_scale": float(ctx.attr(node, "spatial_scale", 1.0))}, node.name)
