"""2-D max and average pooling (float32 and int8), global pooling.

IR ``MaxPool`` / ``AveragePool``: attributes ``layout``, ``kernel [kh, kw]``,
``strides``, ``dilations``, ``pads [t, l, b, r]``, ``ceil_mode``,
``count_include_pad`` (average) and a fused ``act``.  int8 average pooling
rounds the sum like TFLite Micro (half away from zero over the count of
in-image elements); int8 tensors must share input and output quantization.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from . import dsp, shared
from ._util import AUTO_PADS, act_range_float, act_range_quant, apply_act_float, check_window, quant_of, same_pads, tfl_activation, tfl_pads
from .pool_nd import onnx_max_unpool, onnx_pool_nd


def pool_out(n, k, s, d, p0, p1, ceil_mode):
    eff = (k - 1) * d + 1
    span = n + p0 + p1 - eff
    if span < 0:
        raise EdgecError(f"pooling window {k} does not fit the input {n}")
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= n + p0:
            out -= 1
    else:
        out = span // s + 1
    return out


def geometry(g, n):
    x = g.tensors[n.inputs[0]]
    if x.rank != 4:
        raise EdgecError(f"{n.op} expects a 4-D input, got {list(x.shape)}")
    if n.attrs["layout"] == "NCHW":
        N, C, H, W = x.shape
    else:
        N, H, W, C = x.shape
    kh, kw = n.attrs["kernel"]
    sh, sw = n.attrs["strides"]
    dh, dw = n.attrs.get("dilations", [1, 1])
    pt, pl, pb, pr = n.attrs["pads"]
    ceil_mode = n.attrs.get("ceil_mode", 0)
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise EdgecError(f"{n.op}: bad kernel, stride, dilation or padding")
    check_window(n.op, H, kh, sh, dh, pt, pb)
    check_window(n.op, W, kw, sw, dw, pl, pr)
    OH = pool_out(H, kh, sh, dh, pt, pb, ceil_mode)
    OW = pool_out(W, kw, sw, dw, pl, pr, ceil_mode)
    return N, C, H, W, OH, OW


class Pool(Op):
    fuses_activation = True
    layout_sensitive = True
    quantize = "follow"
    def infer(self, g, n):
        N, C, H, W, OH, OW = geometry(g, n)
        x = g.tensors[n.inputs[0]]
        shape = (N, C, OH, OW) if n.attrs["layout"] == "NCHW" else (N, OH, OW, C)
        return [OutSpec(shape, x.dtype, x.quant)]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype == "int8":
            if x.quant is None:
                return f"{self.name}[int8] without quantization"
            y = g.tensors[n.outputs[0]]
            if y.quant is not None and y.quant != x.quant:
                return f"{self.name}[int8] with different input and output quantization"
            return None
        if x.dtype not in ("float32", "float64"):
            return f"{self.name}[{x.dtype}]"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        nchw = n.attrs["layout"] == "NCHW"
        if nchw:
            x = np.transpose(x, (0, 2, 3, 1))
        N, C, H, W, OH, OW = geometry(g, n)
        kh, kw = n.attrs["kernel"]
        sh, sw = n.attrs["strides"]
        dh, dw = n.attrs.get("dilations", [1, 1])
        pt, pl, pb, pr = n.attrs["pads"]
        # pad generously so ceil-mode windows stay inside the array
        eb = max(0, (OH - 1) * sh + (kh - 1) * dh + 1 - (H + pt))
        er = max(0, (OW - 1) * sw + (kw - 1) * dw + 1 - (W + pl))
        quant = x.dtype == np.int8
        valid = np.zeros((H + pt + eb, W + pl + er), dtype=np.int64)
        valid[pt:pt + H, pl:pl + W] = 1
        in_pad = np.zeros_like(valid)
        in_pad[:min(H + pt + pb, H + pt + eb), :min(W + pl + pr, W + pl + er)] = 1
        if self.name == "MaxPool":
            fill = np.iinfo(np.int8).min if quant else -np.inf
            xp = np.full((N, H + pt + eb, W + pl + er, C), fill,
                         dtype=np.int64 if quant else np.float64)
            xp[:, pt:pt + H, pl:pl + W, :] = x
            y = None
            for ky in range(kh):
                for kx in range(kw):
                    sl = xp[:, ky * dh:ky * dh + sh * (OH - 1) + 1:sh, kx * dw:kx * dw + sw * (OW - 1) + 1:sw, :]
                    y = sl if y is None else np.maximum(y, sl)
        else:
            acc_t = np.int64 if quant else np.float64
            xp = np.zeros((N, H + pt + eb, W + pl + er, C), dtype=acc_t)
            xp[:, pt:pt + H, pl:pl + W, :] = x
            y = np.zeros((N, OH, OW, C), dtype=acc_t)
            cnt = np.zeros((OH, OW), dtype=np.int64)
            mask = in_pad if n.attrs.get("count_include_pad", 0) else valid
            for ky in range(kh):
                for kx in range(kw):
                    ys = slice(ky * dh, ky * dh + sh * (OH - 1) + 1, sh)
                    xs_ = slice(kx * dw, kx * dw + sw * (OW - 1) + 1, sw)
                    y = y + xp[:, ys, xs_, :]
                    cnt = cnt + mask[ys, xs_]
            cnt = np.maximum(cnt, 1)[None, :, :, None]
            if quant:
                y = np.where(y > 0, (y + cnt // 2) // cnt, -((-y + cnt // 2) // cnt))
            else:
                y = y / cnt
        act = n.attrs.get("act")
        if quant:
            s, z = quant_of(g, n.inputs[0]).scalar()
            lo, hi = act_range_quant(act, s, z)
            y = np.clip(y, lo, hi).astype(np.int8)
        else:
            y = apply_act_float(y.astype(xs[0].dtype), act_range_float(act))
        if nchw:
            y = np.transpose(y, (0, 3, 1, 2))
        return [np.ascontiguousarray(y)]

    def macs(self, g, n):
        N, C, H, W, OH, OW = geometry(g, n)
        kh, kw = n.attrs["kernel"]
        return N * C * OH * OW * kh * kw

    def emit(self, k):
        g, n = k.g, k.node
        N, C, H, W, OH, OW = geometry(g, n)
        a = n.attrs
        nchw = a["layout"] == "NCHW"
        xs = dict(n=C * H * W, c=H * W, h=W, w=1) if nchw else dict(n=H * W * C, h=W * C, w=C, c=1)
        ys = dict(n=C * OH * OW, c=OH * OW, h=OW, w=1) if nchw else dict(n=OH * OW * C, h=OW * C, w=C, c=1)
        x = k.tin(0)
        quantized = x.dtype == "int8"
        ctx = dict(N=N, C=C, H=H, W=W, OH=OH, OW=OW, kh=a["kernel"][0], kw=a["kernel"][1],
                   sh=a["strides"][0], sw=a["strides"][1],
                   dh=a.get("dilations", [1, 1])[0], dw=a.get("dilations", [1, 1])[1],
                   pt=a["pads"][0], pl=a["pads"][1], xs=xs, ys=ys, nchw=nchw,
                   quantized=quantized, is_max=self.name == "MaxPool",
                   count_include_pad=a.get("count_include_pad", 0),
                   Hp=H + a["pads"][0] + a["pads"][2], Wp=W + a["pads"][1] + a["pads"][3],
                   ctype="int8_t" if quantized else ("float" if x.dtype == "float32" else "double"))
        if quantized:
            s, z = quant_of(g, n.inputs[0]).scalar()
            ctx["act_lo"], ctx["act_hi"] = act_range_quant(a.get("act"), s, z)
            if self.name == "AveragePool" and dsp.enabled(k):
                body = dsp.global_avgpool(k, N, C, H, W, OH, OW, ctx["act_lo"], ctx["act_hi"])
                if body is not None:
                    return body
            if k.optimize == "size":
                return shared.pool(k, ctx)
        else:
            ctx["act"] = act_range_float(a.get("act"))
        return k.render("pool.c.j2", **ctx)


@register
class MaxPool(Pool):
    name = "MaxPool"


@register
class AveragePool(Pool):
    name = "AveragePool"


# --- importers -----------------------------------------------------------------

def _needs_nd(ctx, node) -> bool:
    """What the 2-D kernel does not cover goes to :mod:`edgec.ops.pool_nd`."""
    xt = ctx.t(ctx.inp(node, 0))
    dil = list(ctx.attr(node, "dilations") or [])
    return (xt.rank != 4 or (len(node.output) > 1 and bool(node.output[1]))
            or (node.op_type == "AveragePool" and any(d != 1 for d in dil))
            or xt.dtype not in ("float32", "float64", "int8")
            or (xt.dtype == "int8" and xt.quant is None))


def _onnx_pool(op):
    def imp(ctx, node):
        if _needs_nd(ctx, node):
            onnx_pool_nd(ctx, node, "max" if op == "MaxPool" else "avg")
            return
        x = ctx.inp(node, 0)
        xt = ctx.t(x)
        ks = list(ctx.attr(node, "kernel_shape"))
        if len(ks) != 2:
            raise UnsupportedError([f"{node.op_type} with {len(ks)}-D kernel"])
        strides = list(ctx.attr(node, "strides") or [1, 1])
        dil = list(ctx.attr(node, "dilations") or [1, 1])
        pads = list(ctx.attr(node, "pads") or [0, 0, 0, 0])
        auto_pad = ctx.attr(node, "auto_pad", "NOTSET", AUTO_PADS)
        H, W = xt.shape[2], xt.shape[3]
        ceil_mode = int(ctx.attr(node, "ceil_mode", 0))
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            up = auto_pad == "SAME_UPPER"
            p = [same_pads(H, ks[0], strides[0], dil[0], up), same_pads(W, ks[1], strides[1], dil[1], up)]
            pads = [p[0][0], p[1][0], p[0][1], p[1][1]]
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        attrs = dict(layout="NCHW", kernel=ks, strides=strides, dilations=dil,
                     pads=[pads[0], pads[1], pads[2], pads[3]], ceil_mode=ceil_mode, act=None)
        if op == "AveragePool":
            attrs["count_include_pad"] = int(ctx.attr(node, "count_include_pad", 0))
        ctx.add(op, [x], [ctx.out(node)], attrs, node.name)
    return imp


onnx_op("MaxPool")(_onnx_pool("MaxPool"))
onnx_op("AveragePool")(_onnx_pool("AveragePool"))


def _onnx_global(op):
    def imp(ctx, node):
        x = ctx.inp(node, 0)
        xt = ctx.t(x)
        if xt.rank != 4 or xt.dtype not in ("float32", "float64", "int8") or op == "LpPool":
            nd = xt.rank - 2
            if nd < 1:
                raise EdgecError(f"Global{op} of a {xt.rank}-D input")
            kind = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp"}[op]
            ctx.add("PoolNd", [x], [ctx.out(node)],
                    dict(kind=kind, kernel=list(xt.shape[2:]), strides=[1] * nd, dilations=[1] * nd,
                         pads=[0] * (2 * nd), ceil_mode=0, count_include_pad=0,
                         p=float(ctx.attr(node, "p", 2)), storage_order=0), node.name)
            return
        H, W = xt.shape[2], xt.shape[3]
        attrs = dict(layout="NCHW", kernel=[H, W], strides=[1, 1], pads=[0, 0, 0, 0],
                     ceil_mode=0, count_include_pad=0, act=None)
        ctx.add(op, [x], [ctx.out(node)], attrs, node.name)
    return imp


onnx_op("GlobalAveragePool")(_onnx_global("AveragePool"))
onnx_op("GlobalMaxPool")(_onnx_global("MaxPool"))
onnx_op("GlobalLpPool")(_onnx_global("LpPool"))


@onnx_op("LpPool")
def _onnx_lp_pool(ctx, node):
    onnx_pool_nd(ctx, node, "lp")


def _tfl_pool(op):
    def imp(ctx, top):
        o = ctx.options(top, "Pool2DOptions")
        x = ctx.inputs(top)[0]
        _, H, W, _ = ctx.t(x).shape
        kh, kw = o.FilterHeight(), o.FilterWidth()
        sh, sw = o.StrideH(), o.StrideW()
        pads = tfl_pads(H, W, kh, kw, sh, sw, 1, 1, o.Padding())
        attrs = dict(layout="NHWC", kernel=[kh, kw], strides=[sh, sw], pads=pads, ceil_mode=0,
                     count_include_pad=0, act=tfl_activation(o.FusedActivationFunction()))
        ctx.add(op, [x], ctx.outputs(top), attrs)
    return imp


tflite_op("AVERAGE_POOL_2D")(_tfl_pool("AveragePool"))
tflite_op("MAX_POOL_2D")(_tfl_pool("MaxPool"))


@onnx_op("MaxUnpool")
def _onnx_max_unpool(ctx, node):
    onnx_max_unpool(ctx, node)
