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

from dataclasses import dataclass

import numpy as np

from ..ir import qmath
from ..ir.errors import EdgecError, Reason, UnsupportedError
from . import OutSpec, Op, binary, dsp, onnx_op, register, shared, tflite_op
from ._requant import c_multipliers, channel_multipliers, is_per_channel
# the importers' helpers live in _util (pooling and the binary ops use them too);
# re-exported here where the exporters, the fuzzer and the tests look for them
from ._util import (ACTIVATIONS, AUTO_PADS, TFL_ACTIVATIONS, TFL_PADDINGS,  # noqa: F401
                    act_range_float, act_range_quant, apply_act_float, check_per_channel,
                    check_window, choice, quant_of, same_pads, tfl_activation, tfl_pads)
from .conv_nd import onnx_attrs as _nd_attrs
from .shape import reshape_to
from .shared import packed


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


def conv_output(n) -> str:
    """The tensor the convolution itself computes (an ADD fused into it by the
    native backend writes the node's output: ``attrs["fused_add"]``)."""
    return n.attrs.get("fused_add", {}).get("conv_output", n.outputs[0])


def requant_params(g, n):
    """Per-output-channel (multiplier, shift) as TFLite Micro computes them."""
    xq, wq, yq = quant_of(g, n.inputs[0]), quant_of(g, n.inputs[1]), quant_of(g, conv_output(n))
    x_scale, _ = xq.scalar()
    y_scale, _ = yq.scalar()
    return channel_multipliers(x_scale, wq.scale, y_scale, g.tensors[n.inputs[1]].shape[0])


@dataclass(frozen=True)
class ConvParams:
    """A Conv node's compile-time parameters, computed once by :func:`prepare` (as
    TFLite Micro's Prepare fills its OpData) and read by every kernel variant:
    plain (templates/kernels/conv.c.j2), DSP and Helium (:mod:`.dsp`), size-shared
    (:func:`.shared.conv`) and sparse (:mod:`edgec.backends.sparse`).

    The ``packed`` fields are, in this order, the ``int32_t p[]`` of the shared
    kernel ``edgec_ref_conv`` (templates/runtime/ref_s8.c); their argument is
    the name the C's index table gives them."""
    N: int = packed("N")
    H: int = packed("H")
    W: int = packed("W")
    C: int = packed("C")
    O: int = packed("O")
    KH: int = packed("KH")
    KW: int = packed("KW")
    Cg: int = packed("Cg")
    OH: int = packed("OH")
    OW: int = packed("OW")
    Og: int = packed("Og")                       # output channels per group
    sh: int = packed("sh")
    sw: int = packed("sw")
    dh: int = packed("dh")
    dw: int = packed("dw")
    pt: int = packed("pt")
    pl: int = packed("pl")
    input_offset: int = packed("in_off")         # -x zero point (int8)
    output_offset: int = packed("out_off")       # y zero point (int8)
    act_lo: int = packed("lo")                   # int8 clamp of the fused activation
    act_hi: int = packed("hi")
    per_channel: bool = packed("per_channel")    # the channels' (multiplier, shift) differ
    xs_n: int = packed("xn")                     # element strides of x and y
    xs_h: int = packed("xh")
    xs_w: int = packed("xw")
    xs_c: int = packed("xc")
    ys_n: int = packed("yn")
    ys_h: int = packed("yh")
    ys_w: int = packed("yw")
    ys_c: int = packed("yc")
    # --- not in p[] ---
    group: int = 1
    pb: int = 0
    pr: int = 0
    nchw: bool = False
    quantized: bool = False
    fused: bool = False                          # an ADD fused into the node (DSP kernels)
    m: np.ndarray | None = None                  # int8: multiplier and shift per output channel
    s: np.ndarray | None = None
    act: tuple | None = None                     # float: the activation's real range

    @property
    def geometry(self) -> tuple:
        """(N, H, W, C, O, KH, KW, Cg, OH, OW), as :func:`geometry` gives it."""
        return (self.N, self.H, self.W, self.C, self.O, self.KH, self.KW, self.Cg, self.OH, self.OW)

    @property
    def xs(self) -> dict:
        return dict(n=self.xs_n, h=self.xs_h, w=self.xs_w, c=self.xs_c)

    @property
    def ys(self) -> dict:
        return dict(n=self.ys_n, h=self.ys_h, w=self.ys_w, c=self.ys_c)

    def template_vars(self) -> dict:
        """The variables templates/kernels/conv.c.j2 and sparse_conv.c.j2 read
        (without the weights, bias and requantization constants' C names)."""
        v = dict(N=self.N, H=self.H, W=self.W, C=self.C, O=self.O, KH=self.KH, KW=self.KW,
                 Cg=self.Cg, OH=self.OH, OW=self.OW, Og=self.Og, group=self.group,
                 sh=self.sh, sw=self.sw, dh=self.dh, dw=self.dw, pt=self.pt, pl=self.pl,
                 xs=self.xs, ys=self.ys, nchw=self.nchw, quantized=self.quantized, wscale=None)
        if self.quantized:
            v.update(input_offset=self.input_offset, output_offset=self.output_offset,
                     act_lo=self.act_lo, act_hi=self.act_hi, per_channel=self.per_channel)
        else:
            v["act"] = self.act
        return v


def prepare(g, n) -> ConvParams:
    """The :class:`ConvParams` of Conv node ``n``."""
    N, H, W, C, O, KH, KW, Cg, OH, OW = geometry(g, n)
    a = n.attrs
    nchw = a["layout"] == "NCHW"
    if nchw:
        xs, ys = (C * H * W, W, 1, H * W), (O * OH * OW, OW, 1, OH * OW)
    else:
        xs, ys = (H * W * C, W * C, C, 1), (OH * OW * O, OW * O, O, 1)
    pt, pl, pb, pr = a["pads"]
    geo = dict(N=N, H=H, W=W, C=C, O=O, KH=KH, KW=KW, Cg=Cg, OH=OH, OW=OW, Og=O // a["group"],
               sh=a["strides"][0], sw=a["strides"][1], dh=a["dilations"][0], dw=a["dilations"][1],
               pt=pt, pl=pl, pb=pb, pr=pr, xs_n=xs[0], xs_h=xs[1], xs_w=xs[2], xs_c=xs[3],
               ys_n=ys[0], ys_h=ys[1], ys_w=ys[2], ys_c=ys[3], group=a["group"], nchw=nchw,
               fused=bool(a.get("fused_add")))
    if g.tensors[n.inputs[0]].dtype != "int8":
        return ConvParams(**geo, act=act_range_float(a.get("act")))
    m, s = requant_params(g, n)
    _, xzp = quant_of(g, n.inputs[0]).scalar()
    ysc, yzp = quant_of(g, conv_output(n)).scalar()
    lo, hi = act_range_quant(a.get("act"), ysc, yzp)
    return ConvParams(**geo, quantized=True, m=m, s=s, input_offset=-xzp, output_offset=yzp,
                      act_lo=lo, act_hi=hi, per_channel=is_per_channel(m, s))


def simd_kind(g, n, mve: bool, cp: ConvParams | None = None) -> str | None:
    """The DSP (``mve``: Helium) kernel of an int8 Conv node, ``gemm`` or ``dw``
    (:func:`.dsp.conv_kind`), or None: it gets the plain or shared kernel."""
    x = g.tensors[n.inputs[0]]
    if n.attrs["layout"] != "NHWC" or x.dtype != "int8" or x.quant is None:
        return None
    return dsp.conv_kind(cp or prepare(g, n), mve)


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
        """Picks the variant: DSP / Helium (:func:`simd_kind`), shared (``--optimize
        size``) or the plain kernel; the sparse one is the backend's, tried first."""
        g, n = k.g, k.node
        cp = prepare(g, n)
        w = weights_ohwi(g, n)
        ctx = cp.template_vars()
        if cp.quantized:
            if dsp.enabled(k):
                mve = dsp.mve_wanted(k.options)
                kind = simd_kind(g, n, mve, cp)
                if kind is not None:
                    fused = n.attrs.get("fused_add")
                    add = binary.add_tables(g, fused["node"]) if fused else None
                    bias = k.tin(2).data.astype(np.int64) if k.has_input(2) else np.zeros(cp.O, np.int64)
                    return dsp.conv(k, cp, kind, mve, w.astype(np.int64), bias, add)
            ctx["w"] = k.const(w, "int8", "w")
            ctx["bias"] = k.x(2) if k.has_input(2) else None
            _, ctx["mult"], ctx["shift"] = c_multipliers(k, cp.m, cp.s)
            if k.optimize == "size":
                return shared.conv(k, cp, ctx["w"], ctx["bias"])
        else:
            wq = is_weight_only(k.tin(1))
            ctx["w"] = k.const(w, "int8" if wq else "float32", "w")
            ctx["bias"] = k.x(2) if k.has_input(2) else None
            ctx["wscale"] = k.const(weight_scales(k.tin(1), cp.O), "float32", "wscale") if wq else None
        return k.render("conv.c.j2", **ctx)


# --- importers ---------------------------------------------------------------

@onnx_op("Conv")
def _onnx_conv(ctx, node):
    x = ctx.inp(node, 0)
    w = ctx.inp(node, 1)
    b = ctx.inp(node, 2)
    xt, wt = ctx.t(x), ctx.t(w)
    if xt.rank not in (3, 4) or not wt.is_const or (b and not ctx.t(b).is_const) \
            or xt.dtype != "float32":
        # 3-D, computed weights, float64: the N-D direct convolution
        ctx.add("ConvNd", [x, w, b] if b else [x, w], [ctx.out(node)],
                _nd_attrs(ctx, node, xt, wt), node.name)
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
        hybrid = ctx.g.meta.hybrid_weights
        hybrid.append(w)
        transforms = ctx.g.meta.transforms
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
