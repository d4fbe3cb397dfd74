"""2-D convolution: regular, grouped and depthwise, float32 and int8.

IR ``Conv``: inputs ``x, w[, b]``; attributes ``layout`` (``NCHW`` with weights
``[O, I/g, KH, KW]`` as ONNX, or ``NHWC`` with weights ``[O, KH, KW, I/g]`` as
TFLite), ``strides [sh, sw]``, ``dilations [dh, dw]``, ``pads [top, left,
bottom, right]``, ``group`` and a fused activation ``act`` (``None`` or a real
clamp range ``[lo, hi]``).

int8 follows TFLite Micro's reference kernel bit for bit: int32 accumulation of
``w * (x - x_zp)`` (padding contributes nothing), plus the int32 bias, then per
output channel ``MultiplyByQuantizedMultiplier`` with the multiplier of
``x_scale * w_scale[oc] / y_scale``, plus ``y_zp``, clamped to the activation
range.
"""
from __future__ import annotations

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, Reason, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import ACTIVATIONS, AUTO_PADS, act_range_float, act_range_quant, apply_act_float, check_per_channel, check_window, choice, quant_of
from .shape import reshape_to


def out_size(n: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    eff = (k - 1) * d + 1
    return (n + p0 + p1 - eff) // s + 1


def geometry(g, n):
    """Normalized geometry: (N, H, W, C, O, KH, KW, Cg, OH, OW)."""
    x = g.tensors[n.inputs[0]]
    w = g.tensors[n.inputs[1]]
    layout = n.attrs["layout"]
    if x.rank != 4 or w.rank != 4:
        raise EdgecError(f"Conv expects 4-D input and weights, got {list(x.shape)} and {list(w.shape)}")
    if layout == "NCHW":
        N, C, H, W = x.shape
        O, Cg, KH, KW = w.shape
    else:
        N, H, W, C = x.shape
        O, KH, KW, Cg = w.shape
    sh, sw = n.attrs["strides"]
    dh, dw = n.attrs["dilations"]
    pt, pl, pb, pr = n.attrs["pads"]
    grp = n.attrs["group"]
    if grp < 1 or C % grp or O % grp or C // grp != Cg:
        raise EdgecError(f"Conv: {C} input channels, {O} filters of depth {Cg} and group {grp} do not fit")
    if min(sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise EdgecError("Conv: strides and dilations must be positive, pads non-negative")
    check_window(n.op, H, KH, sh, dh, pt, pb)
    check_window(n.op, W, KW, sw, dw, pl, pr)
    OH = out_size(H, KH, sh, dh, pt, pb)
    OW = out_size(W, KW, sw, dw, pl, pr)
    if OH < 1 or OW < 1:
        raise EdgecError(f"Conv: kernel {KH}x{KW} does not fit the input {H}x{W}")
    check_per_channel(g, n, 2, O)
    return N, H, W, C, O, KH, KW, Cg, OH, OW


def weights_ohwi(g, n) -> np.ndarray:
    w = g.tensors[n.inputs[1]].data
    return w if n.attrs["layout"] == "NHWC" else np.transpose(w, (0, 2, 3, 1))


def conv_nhwc(x, w, strides, dilations, pads, group, acc_dtype):
    """Reference convolution, NHWC input and OHWI weights, accumulating in acc_dtype."""
    N, H, W, C = x.shape
    O, KH, KW, Cg = w.shape
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    OH = out_size(H, KH, sh, dh, pt, pb)
    OW = out_size(W, KW, sw, dw, pl, pr)
    xp = np.pad(x.astype(acc_dtype), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    wa = w.astype(acc_dtype)
    out = np.zeros((N, OH, OW, O), dtype=acc_dtype)
    Og = O // group
    depthwise = Cg == 1 and group == C
    for ky in range(KH):
        for kx in range(KW):
            y0, x0 = ky * dh, kx * dw
            patch = xp[:, y0:y0 + sh * (OH - 1) + 1:sh, x0:x0 + sw * (OW - 1) + 1:sw, :]
            if depthwise:
                src = np.repeat(patch, Og, axis=3) if Og > 1 else patch
                out += src * wa[:, ky, kx, 0]
            else:
                for gi in range(group):
                    ps = patch[..., gi * Cg:(gi + 1) * Cg]
                    out[..., gi * Og:(gi + 1) * Og] += ps @ wa[gi * Og:(gi + 1) * Og, ky, kx, :].T
    return out


def is_weight_only(w) -> bool:
    """int8 symmetric weights feeding a float kernel (``--quantize weights-int8``)."""
    return w.dtype == "int8" and w.is_const and w.quant is not None and not w.quant.zero_point.any() \
        and (w.quant.axis in (None, 0))


def weight_scales(w, channels: int) -> np.ndarray:
    s = w.quant.scale.astype(np.float32)
    return s if s.size == channels else np.full(channels, s[0], np.float32)


def dequantized_weights(w: np.ndarray, q) -> np.ndarray:
    shape = [-1 if i == 0 and q.scale.size > 1 else 1 for i in range(w.ndim)]
    return w.astype(np.float64) * q.scale.astype(np.float64).reshape(shape)


def requant_params(g, n):
    """Per-output-channel (multiplier, shift) as TFLite Micro computes them."""
    out = n.attrs.get("fused_add", {}).get("conv_output", n.outputs[0])
    xq, wq, yq = quant_of(g, n.inputs[0]), quant_of(g, n.inputs[1]), quant_of(g, out)
    x_scale, _ = xq.scalar()
    y_scale, _ = yq.scalar()
    O = g.tensors[n.inputs[1]].shape[0]
    ws = wq.scale if wq.scale.size == O else np.full(O, wq.scale[0], np.float32)
    mults, shifts = [], []
    for s in ws:
        eff = float(np.float32(x_scale)) * float(np.float32(s)) / float(np.float32(y_scale))
        m, sh = qmath.quantize_multiplier(eff)
        mults.append(m)
        shifts.append(sh)
    return np.array(mults, np.int64), np.array(shifts, np.int64)


@register
class Conv(Op):
    name = "Conv"
    fuses_activation = True
    layout_sensitive = True
    quantize = "compute"

    def infer(self, g, n):
        N, H, W, C, O, KH, KW, Cg, OH, OW = geometry(g, n)
        x = g.tensors[n.inputs[0]]
        shape = (N, O, OH, OW) if n.attrs["layout"] == "NCHW" else (N, OH, OW, O)
        if x.dtype == "float32":
            return [OutSpec(shape, "float32")]
        if x.dtype == "int8":
            return [OutSpec(shape, "int8")]
        raise UnsupportedError([f"Conv[{x.dtype}]"])

    def check(self, g, n):
        x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if not w.is_const:
            return Reason("Conv with computed weights", n.inputs[1])
        b = n.input(2)
        if b and not g.tensors[b].is_const:
            return Reason("Conv with a computed bias", b)
        if x.dtype == "int8":
            if w.dtype != "int8" or w.quant is None or x.quant is None or \
                    g.tensors[n.outputs[0]].quant is None:
                return "Conv[int8] without int8 quantized weights"
            if w.quant.zero_point.any():
                return "Conv[int8] with asymmetric weights"
            if b and g.tensors[b].dtype != "int32":
                return f"Conv[int8] with a {g.tensors[b].dtype} bias"
        elif x.dtype == "float32" and is_weight_only(w):
            return None
        elif x.dtype != "float32" or w.dtype != "float32":
            return f"Conv[{x.dtype}, weights {w.dtype}]"
        return None

    def _nhwc(self, n, x):
        return x if n.attrs["layout"] == "NHWC" else np.transpose(x, (0, 2, 3, 1))

    def _back(self, n, y):
        return y if n.attrs["layout"] == "NHWC" else np.transpose(y, (0, 3, 1, 2))

    def reference(self, g, n, xs):
        x = self._nhwc(n, xs[0])
        w = xs[1] if n.attrs["layout"] == "NHWC" else np.transpose(xs[1], (0, 2, 3, 1))
        b = xs[2] if len(xs) > 2 else None
        a = n.attrs
        if xs[0].dtype == np.float32:
            if w.dtype == np.int8:  # weight-only int8: dequantized weights
                w = dequantized_weights(w, quant_of(g, n.inputs[1]))
            y = conv_nhwc(x, w, a["strides"], a["dilations"], a["pads"], a["group"], np.float64)
            if b is not None:
                y = y + b.astype(np.float64)
            y = apply_act_float(y.astype(np.float32), act_range_float(a.get("act")))
            return [self._back(n, y)]
        _, xzp = quant_of(g, n.inputs[0]).scalar()
        ys, yzp = quant_of(g, n.outputs[0]).scalar()
        acc = conv_nhwc(x.astype(np.int64) - xzp, w, a["strides"], a["dilations"], a["pads"],
                        a["group"], np.int64)
        if b is not None:
            acc = acc + b.astype(np.int64)
        m, s = requant_params(g, n)
        acc = qmath.mul_by_quantized_multiplier(qmath.wrap32(acc), m, s) + yzp
        lo, hi = act_range_quant(a.get("act"), ys, yzp)
        return [self._back(n, np.clip(acc, lo, hi).astype(np.int8))]

    def macs(self, g, n):
        N, H, W, C, O, KH, KW, Cg, OH, OW = geometry(g, n)
        return N * OH * OW * O * KH * KW * Cg

    def emit(self, k):
        g, n = k.g, k.node
        N, H, W, C, O, KH, KW, Cg, OH, OW = geometry(g, n)
        a = n.attrs
        nchw = a["layout"] == "NCHW"
        # element strides of x and y
        xs = dict(n=C * H * W, c=H * W, h=W, w=1) if nchw else dict(n=H * W * C, h=W * C, w=C, c=1)
        ys = dict(n=O * OH * OW, c=OH * OW, h=OW, w=1) if nchw else dict(n=OH * OW * O, h=OW * O, w=O, c=1)
        quantized = k.tin(0).dtype == "int8"
        w = weights_ohwi(g, n)
        has_bias = k.has_input(2)
        ctx = dict(N=N, H=H, W=W, C=C, O=O, KH=KH, KW=KW, Cg=Cg, OH=OH, OW=OW, Og=O // a["group"],
                   group=a["group"], sh=a["strides"][0], sw=a["strides"][1],
                   dh=a["dilations"][0], dw=a["dilations"][1], pt=a["pads"][0], pl=a["pads"][1],
                   xs=xs, ys=ys, nchw=nchw, quantized=quantized, wscale=None)
        if quantized:
            m, s = requant_params(g, n)
            from . import dsp
            if dsp.enabled(k):
                body = dsp.conv(k, (N, H, W, C, O, KH, KW, Cg, OH, OW), m, s)
                if body is not None:
                    return body
            ctx["w"] = k.const(w, "int8", "w")
            ctx["bias"] = k.x(2) if has_bias else None
            _, xzp = quant_of(g, n.inputs[0]).scalar()
            ysc, yzp = quant_of(g, n.outputs[0]).scalar()
            lo, hi = act_range_quant(a.get("act"), ysc, yzp)
            per_channel = len(set(zip(m.tolist(), s.tolist()))) > 1
            ctx.update(input_offset=-xzp, output_offset=yzp, act_lo=lo, act_hi=hi,
                       per_channel=per_channel)
            if per_channel:
                ctx["mult"] = k.const(m, "int32", "mult")
                ctx["shift"] = k.const(s, "int8", "shift")
            else:
                ctx["mult"] = int(m[0])
                ctx["shift"] = int(s[0])
            if k.optimize == "size":
                from . import shared
                return shared.conv(k, ctx, m, s)
        else:
            wq = is_weight_only(k.tin(1))
            ctx["w"] = k.const(w, "int8" if wq else "float32", "w")
            ctx["bias"] = k.x(2) if has_bias else None
            ctx["act"] = act_range_float(a.get("act"))
            ctx["wscale"] = k.const(weight_scales(k.tin(1), O), "float32", "wscale") if wq else None
        return k.render("conv.c.j2", **ctx)


# --- importers ---------------------------------------------------------------

def same_pads(n: int, k: int, s: int, d: int, upper: bool = True) -> tuple[int, int]:
    out = (n + s - 1) // s
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


@onnx_op("Conv")
def _onnx_conv(ctx, node):
    x = ctx.inp(node, 0)
    w = ctx.inp(node, 1)
    b = ctx.inp(node, 2)
    xt, wt = ctx.t(x), ctx.t(w)
    if xt.rank not in (3, 4) or not wt.is_const or (b and not ctx.t(b).is_const) \
            or xt.dtype != "float32":
        # 3-D, computed weights, float64: the N-D direct convolution
        from .conv_nd import onnx_attrs
        ctx.add("ConvNd", [x, w, b] if b else [x, w], [ctx.out(node)],
                onnx_attrs(ctx, node, xt, wt), node.name)
        return
    one_d = xt.rank == 3
    ks = ctx.attr(node, "kernel_shape") or list(wt.shape[2:])
    nd = len(ks)
    strides = list(ctx.attr(node, "strides") or [1] * nd)
    dil = list(ctx.attr(node, "dilations") or [1] * nd)
    pads = list(ctx.attr(node, "pads") or [0] * (2 * nd))
    if wt.rank != xt.rank or list(ks) != list(wt.shape[2:]):
        raise EdgecError(f"Conv: kernel_shape {list(ks)} does not match weights {list(wt.shape)}")
    if len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        raise EdgecError(f"Conv: {len(strides)} strides, {len(dil)} dilations and {len(pads)} pads "
                         f"for a {nd}-D kernel")
    auto_pad = ctx.attr(node, "auto_pad", "NOTSET", AUTO_PADS)
    spatial = list(xt.shape[2:])
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            p0, p1 = same_pads(spatial[i], ks[i], strides[i], dil[i], auto_pad == "SAME_UPPER")
            pads[i], pads[i + nd] = p0, p1
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    if one_d:
        x2 = ctx.tmp(x + "_2d")
        reshape_to(ctx, x, (xt.shape[0], xt.shape[1], 1, xt.shape[2]), x2)
        w2 = ctx.tmp(w + "_2d")
        reshape_to(ctx, w, (wt.shape[0], wt.shape[1], 1, wt.shape[2]), w2)
        x, w = x2, w2
        strides, dil = [1] + strides, [1] + dil
        pads = [0, pads[0], 0, pads[1]]
    else:
        pads = [pads[0], pads[1], pads[2], pads[3]]
    attrs = dict(layout="NCHW", strides=strides, dilations=dil, pads=pads,
                 group=int(ctx.attr(node, "group", 1)), act=None)
    out = ctx.out(node)
    if one_d:
        y2 = ctx.tmp(out + "_2d")
        ctx.add("Conv", [x, w, b] if b else [x, w], [y2], attrs, node.name)
        reshape_to(ctx, y2, [d for i, d in enumerate(ctx.t(y2).shape) if i != 2], out)
    else:
        ctx.add("Conv", [x, w, b] if b else [x, w], [out], attrs, node.name)


# TFLite's ActivationFunctionType and Padding enums
TFL_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
TFL_PADDINGS = {0: "SAME", 1: "VALID"}


def tfl_activation(code: int):
    name = TFL_ACTIVATIONS[choice(code, TFL_ACTIVATIONS, "fused activation")]
    if name not in ACTIVATIONS:
        raise UnsupportedError([f"fused activation {name}"])
    return ACTIVATIONS[name]


def tfl_pads(in_h, in_w, kh, kw, sh, sw, dh, dw, padding: int) -> list[int]:
    if choice(padding, TFL_PADDINGS, "padding") == 1:  # VALID
        return [0, 0, 0, 0]
    pt, pb = same_pads(in_h, kh, sh, dh)
    pl, pr = same_pads(in_w, kw, sw, dw)
    return [pt, pl, pb, pr]


HYBRID_NOTE = "hybrid (dynamic-range) TFLite model"


def _tfl_dequant_weights(ctx, w: str, x: str) -> str:
    """Hybrid models (int8 weights, float activations): use dequantized weights."""
    wt, xt = ctx.t(w), ctx.t(x)
    if xt.dtype == "float32" and wt.dtype == "int8" and wt.is_const and wt.quant is not None:
        q = wt.quant
        shape = [1] * wt.rank
        if q.axis is not None:
            shape[q.axis] = -1
        real = (wt.data.astype(np.float32) - q.zero_point.reshape(shape).astype(np.float32)) * \
            q.scale.reshape(shape)
        hybrid = ctx.g.meta.setdefault("hybrid_weights", [])
        hybrid.append(w)
        transforms = ctx.g.meta.setdefault("transforms", [])
        note = [i for i, t in enumerate(transforms) if t.startswith(HYBRID_NOTE)]
        text = (f"{HYBRID_NOTE}: the int8 weights of {len(hybrid)} float layer(s) dequantized to float32; "
                "TFLite's hybrid kernels quantize those layers' inputs to int8 at run time, edgec "
                "computes them in float, so outputs differ from TFLite's by that input quantization")
        if note:
            transforms[note[0]] = text
        else:
            transforms.append(text)
        return ctx.g.add_const(real.astype(np.float32), w + "_dequant")
    return w


@tflite_op("CONV_2D")
def _tfl_conv(ctx, op):
    o = ctx.options(op, "Conv2DOptions")
    ins = ctx.inputs(op)
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else ""
    w = _tfl_dequant_weights(ctx, w, x)
    xt, wt = ctx.t(x), ctx.t(w)
    _, H, W, C = xt.shape
    _, KH, KW, I = wt.shape
    pads = tfl_pads(H, W, KH, KW, o.StrideH(), o.StrideW(), o.DilationHFactor(),
                    o.DilationWFactor(), o.Padding())
    attrs = dict(layout="NHWC", strides=[o.StrideH(), o.StrideW()],
                 dilations=[o.DilationHFactor(), o.DilationWFactor()], pads=pads,
                 group=C // I if I else 1, act=tfl_activation(o.FusedActivationFunction()))
    ctx.add("Conv", [x, w, b] if b else [x, w], ctx.outputs(op), attrs)


@tflite_op("DEPTHWISE_CONV_2D")
def _tfl_dwconv(ctx, op):
    o = ctx.options(op, "DepthwiseConv2DOptions")
    ins = ctx.inputs(op)
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else ""
    w = _tfl_dequant_weights(ctx, w, x)
    xt, wt = ctx.t(x), ctx.t(w)
    _, H, W, C = xt.shape
    _, KH, KW, O = wt.shape
    if not wt.is_const:
        raise UnsupportedError(["DEPTHWISE_CONV_2D with computed weights"])
    if o.DepthMultiplier() and O != C * o.DepthMultiplier():
        raise EdgecError(f"DEPTHWISE_CONV_2D: depth multiplier {o.DepthMultiplier()} for {C} input "
                         f"and {O} output channels")
    q = wt.quant
    if q is not None and q.axis is not None:
        if q.axis != 3:
            raise EdgecError(f"depthwise weights quantized along axis {q.axis}, expected 3")
        q = type(q)(q.scale, q.zero_point, 0)
    w2 = ctx.g.add_const(np.transpose(wt.data, (3, 1, 2, 0)), w + "_ohwi", quant=q)
    ctx.g.tensors[w2].origin = wt.origin
    pads = tfl_pads(H, W, KH, KW, o.StrideH(), o.StrideW(), o.DilationHFactor(),
                    o.DilationWFactor(), o.Padding())
    attrs = dict(layout="NHWC", strides=[o.StrideH(), o.StrideW()],
                 dilations=[o.DilationHFactor(), o.DilationWFactor()], pads=pads,
                 group=C, act=tfl_activation(o.FusedActivationFunction()))
    ctx.add("Conv", [x, w2, b] if b else [x, w2], ctx.outputs(op), attrs)
