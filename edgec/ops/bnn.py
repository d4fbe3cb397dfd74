"""Binarized layers: bit-packed tensors and XNOR/popcount kernels.

**Packed tensors** (the IR's binary representation) are ``int32`` tensors whose
packing axis holds ``ceil(C / 32)`` words: channel ``c`` is bit ``c % 32`` of word
``c // 32`` (bit 0 the least significant), bit 1 means -1 and bit 0 means +1, and
the bits past ``C`` in the last word are 0.  This is Larq Compute Engine's
convention, so LCE flatbuffers import as they are.  The number of real channels
is an attribute of the ops that read a packed tensor (``channels``/``channels_in``).

IR ops (each with its LCE counterpart):

* ``BitPack`` (LceQuantize): float32 / int8 -> packed; bit = ``x < threshold``
  (attribute ``threshold``: a scalar or one value per channel; default 0, or the
  zero point of an int8 input), packed along ``axis`` (default the last).
* ``BitUnpack`` (LceDequantize): packed -> float32 +1/-1 (or int8 ``zp +/- round(1/scale)``).
* ``BinaryConv`` (LceBconv2d) and ``BinaryFullyConnected``: inputs ``x, w, mult,
  bias, threshold`` (absent ones ``""``).  ``w`` is packed along the input channels
  (Conv: ``[O, KH, KW, ceil(C/32)]``; FullyConnected: ``[N, ceil(K/32)]``).

  With a packed ``x`` the layer computes the +/-1 dot product
  ``dot = C_eff - 2 * popcount(x XOR w)`` exactly in integers; padding
  (``pad_value`` 1: padded inputs are +1; 0: they contribute nothing, like a
  float convolution's zero padding).  ``dot_clamp`` (LCE's fused activation,
  in the dot domain) clamps it, then the output is

  * float32: ``y = float(dot) * mult[c] + bias[c]`` (float32 arithmetic, then the
    real clamp ``act``),
  * int8: the same with ``mult / scale`` and ``bias / scale + zero_point`` folded at
    compile time, clamped by ``act``, rounded half away from zero, saturated,
  * packed (int32 output): bit = ``dot < threshold[c]`` (the scale, bias, activation
    and the sign of the next layer folded into one integer per channel at compile
    time).

  With a float32 ``x`` only the weights are binary (binary-weight layers,
  ``--binarize-mode weights``): ``acc`` adds or subtracts each input in float32 in
  the kernel's order (ky, kx, channel), then ``y = acc * mult[c] + bias[c]``.

Every reference here performs the same operations in the same order as the C
kernels, so compiled binary layers are bit-exact with :mod:`edgec.ops.interp`.
"""
from __future__ import annotations

import numpy as np

from ..ir import qmath
from ..ir.cgen import c_float
from ..ir.errors import EdgecError, Reason, UnsupportedError
from . import OutSpec, Op, register, tflite_op
from ._util import check_per_channel, check_window, norm_axis, prod, tfl_pads
from .conv import conv_nhwc, out_size

BITS = 32
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def words(c: int) -> int:
    """Packed words for ``c`` channels."""
    return -(-int(c) // BITS)


def pack(neg, axis: int = -1) -> np.ndarray:
    """Boolean array (True = -1) -> int32 words along ``axis``."""
    neg = np.moveaxis(np.asarray(neg, dtype=bool), axis, -1)
    c = neg.shape[-1]
    nw = words(c)
    padded = np.zeros(neg.shape[:-1] + (nw * BITS,), dtype=bool)
    padded[..., :c] = neg
    by = np.packbits(padded, axis=-1, bitorder="little")
    w = np.ascontiguousarray(by).view("<u4").astype(np.uint32).view(np.int32)
    return np.ascontiguousarray(np.moveaxis(w, -1, axis))


def unpack(w, channels: int, axis: int = -1) -> np.ndarray:
    """int32 words -> boolean array (True = -1) of ``channels`` along ``axis``."""
    w = np.moveaxis(np.asarray(w), axis, -1)
    by = np.ascontiguousarray(w.astype(np.int32)).astype("<i4").view(np.uint8)
    bits = np.unpackbits(by, axis=-1, bitorder="little")[..., :channels].astype(bool)
    return np.moveaxis(bits, -1, axis)


def signs(w, channels: int, axis: int = -1) -> np.ndarray:
    """int32 words -> int64 +1/-1 values."""
    return np.where(unpack(w, channels, axis), -1, 1).astype(np.int64)


def round_half_away_f32(y: np.ndarray) -> np.ndarray:
    return qmath.np_round_half_away(np.asarray(y, np.float32).astype(np.float64))


# --- shared pieces of the binary layers ------------------------------------------

def out_kind(g, n) -> str:
    t = g.tensors[n.outputs[0]]
    return {"float32": "float32", "int8": "int8", "int32": "bits"}[t.dtype]


def _consts(g, n, channels: int):
    """(mult, bias) as the float32 constants the kernel uses (int8: folded scale and
    zero point), the activation bounds in the same domain, or None for packed output."""
    kind = out_kind(g, n)
    if kind == "bits":
        return None
    m = g.tensors[n.inputs[2]].data.astype(np.float64).reshape(-1) if n.input(2) else np.ones(channels)
    b = g.tensors[n.inputs[3]].data.astype(np.float64).reshape(-1) if n.input(3) else np.zeros(channels)
    m = np.broadcast_to(m, (channels,))
    b = np.broadcast_to(b, (channels,))
    act = n.attrs.get("act")
    lo, hi = (None, None) if act is None else (float(act[0]), float(act[1]))
    if kind == "int8":
        s, z = g.tensors[n.outputs[0]].quant.scalar()
        m = m / s
        b = b / s + z
        lo = None if lo is None or lo == float("-inf") else lo / s + z
        hi = None if hi is None or hi == float("inf") else hi / s + z
    else:
        lo = None if lo is None or lo == float("-inf") else lo
        hi = None if hi is None or hi == float("inf") else hi
    return (m.astype(np.float32), b.astype(np.float32),
            None if lo is None else np.float32(lo), None if hi is None else np.float32(hi))


def thresholds(g, n, channels: int) -> np.ndarray:
    t = g.tensors[n.inputs[4]].data.astype(np.int64).reshape(-1)
    return np.broadcast_to(t, (channels,))


def apply_output(g, n, acc: np.ndarray, channels: int, axis: int) -> np.ndarray:
    """The output transform on ``acc`` (int64 dot products, or float32 sums of a
    binary-weight layer) whose channel axis is ``axis``."""
    kind = out_kind(g, n)
    shape = [1] * acc.ndim
    shape[axis] = -1
    if kind == "bits":
        t = thresholds(g, n, channels).reshape(shape)
        return pack(acc < t, axis)
    m, b, lo, hi = _consts(g, n, channels)
    if acc.dtype.kind == "f":
        d = acc.astype(np.float32)
    else:
        dc = n.attrs.get("dot_clamp")
        if dc is not None:
            acc = np.clip(acc, int(dc[0]), int(dc[1]))
        d = acc.astype(np.float32)
    y = d * m.reshape(shape) + b.reshape(shape)
    if lo is not None:
        y = np.maximum(y, lo)
    if hi is not None:
        y = np.minimum(y, hi)
    y = y.astype(np.float32)
    if kind == "float32":
        return y
    y = np.nan_to_num(y, nan=0.0, posinf=127.0, neginf=-128.0)
    return np.clip(round_half_away_f32(y), -128, 127).astype(np.int8)


def output_code(k, kind: str, ch: str, acc: str, store: str, channels: int, float_acc: bool) -> dict:
    """C pieces of the output transform: constants added to the bundle and a
    statement that writes channel ``ch``'s result from accumulator ``acc``
    (``store`` is the element for float/int8 output; packed output sets a bit of
    the local ``word``)."""
    g, n = k.g, k.node
    if kind == "bits":
        t = np.clip(thresholds(g, n, channels), INT32_MIN, INT32_MAX)
        # |dot| <= K: thresholds past +/-(K+1) all mean 'always' or 'never'
        K = dot_bound(g, n)
        t = np.clip(t, -K - 1, K + 1)
        sym = k.const(t, "int16" if K < 32000 else "int32", "thresh")
        return {"stmt": f"if ({acc} < {sym}[{ch}]) word |= (uint32_t)1u << ({ch} & 31);"}
    m, b, lo, hi = _consts(g, n, channels)
    ms, bs = k.const(m, "float32", "mult"), k.const(b, "float32", "bias")
    lines = []
    if not float_acc and n.attrs.get("dot_clamp") is not None:
        dlo, dhi = (int(v) for v in n.attrs["dot_clamp"])
        lines.append(f"if ({acc} < {dlo}) {acc} = {dlo};")
        lines.append(f"if ({acc} > {dhi}) {acc} = {dhi};")
    conv = acc if float_acc else f"(float){acc}"
    lines.append(f"float yv = {conv} * {ms}[{ch}] + {bs}[{ch}];")
    if lo is not None:
        lines.append(f"yv = yv < {c_float(lo)} ? {c_float(lo)} : yv;")
    if hi is not None:
        lines.append(f"yv = yv > {c_float(hi)} ? {c_float(hi)} : yv;")
    if kind == "float32":
        lines.append(f"{store} = yv;")
    else:
        k.need("bnn")
        lines.append(f"{store} = edgec_bnn_round_sat8(yv);")
    return {"stmt": "\n".join(lines)}


def dot_bound(g, n) -> int:
    """Largest |dot| of a binary layer: its weights per output channel."""
    w = g.tensors[n.inputs[1]]
    C = int(n.attrs["channels_in"])
    return w.shape[1] * w.shape[2] * C if n.op == "BinaryConv" else C


def _check_vectors(g, n, channels: int) -> None:
    for i, what in ((2, "multiplier"), (3, "bias"), (4, "threshold")):
        check_per_channel(g, n, i, channels, what, scalar=True)


def _check_consts(g, n, kind):
    for i, what in ((1, "weights"), (2, "multiplier"), (3, "bias"), (4, "threshold")):
        if n.input(i) and not g.tensors[n.inputs[i]].is_const:
            return Reason(f"{n.op} with a computed {what}", n.inputs[i])
    if kind == "bits" and not n.input(4):
        return f"{n.op} with packed output and no threshold"
    return None


# --- BitPack / BitUnpack -----------------------------------------------------------

@register
class BitPack(Op):
    name = "BitPack"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in ("float32", "int8"):
            raise UnsupportedError([f"BitPack[{x.dtype}]"])
        if x.rank == 0:
            raise EdgecError("BitPack of a scalar")
        ax = norm_axis(n.attrs.get("axis", -1), x.rank, "BitPack")
        shape = list(x.shape)
        shape[ax] = words(shape[ax])
        return [OutSpec(tuple(shape), "int32")]

    def _thresh(self, g, n, channels):
        x = g.tensors[n.inputs[0]]
        t = n.attrs.get("threshold")
        if t is None:
            t = x.quant.zero_point[0] if x.dtype == "int8" and x.quant is not None else 0
        t = np.asarray(t, np.float32 if x.dtype == "float32" else np.int64).reshape(-1)
        if t.size not in (1, channels):
            raise EdgecError(f"BitPack: {t.size} thresholds for {channels} channels")
        return t

    def reference(self, g, n, xs):
        x = xs[0]
        ax = norm_axis(n.attrs.get("axis", -1), x.ndim, "BitPack")
        t = self._thresh(g, n, x.shape[ax])
        shape = [1] * x.ndim
        shape[ax] = -1
        return [pack(x < t.reshape(shape), ax)]

    def emit(self, k):
        x = k.tin(0)
        ax = norm_axis(k.node.attrs.get("axis", -1), x.rank, "BitPack")
        C = x.shape[ax]
        outer, inner = prod(x.shape[:ax]), prod(x.shape[ax + 1:])
        t = self._thresh(k.g, k.node, C)
        if t.size == 1:
            tv = c_float(t[0]) if x.dtype == "float32" else str(int(t[0]))
            texpr = tv
        else:
            sym = k.const(t, "float32" if x.dtype == "float32" else "int32", "thresh")
            texpr = f"{sym}[c]"
        return k.render("bitpack.c.j2", outer=outer, inner=inner, C=C, CW=words(C),
                        texpr=texpr, ctype="float" if x.dtype == "float32" else "int8_t")


@register
class BitUnpack(Op):
    name = "BitUnpack"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        ax = norm_axis(n.attrs.get("axis", -1), x.rank, "BitUnpack")
        c = int(n.attrs["channels"])
        if words(c) != x.shape[ax]:
            raise EdgecError(f"BitUnpack: {c} channels do not fit {x.shape[ax]} words")
        shape = list(x.shape)
        shape[ax] = c
        dt = n.attrs.get("dtype", "float32")
        return [OutSpec(tuple(shape), dt, n.attrs.get("quant"))]

    def _values(self, g, n):
        y = g.tensors[n.outputs[0]]
        if y.dtype == "float32":
            return 1.0, -1.0
        s, z = y.quant.scalar()
        off = int(qmath.tfl_round(1.0 / s))
        return min(127, z + off), max(-128, z - off)

    def check(self, g, n):
        y = g.tensors[n.outputs[0]]
        if y.dtype not in ("float32", "int8") or (y.dtype == "int8" and y.quant is None):
            return f"BitUnpack to {y.dtype}"
        return None

    def reference(self, g, n, xs):
        ax = norm_axis(n.attrs.get("axis", -1), xs[0].ndim, "BitUnpack")
        neg = unpack(xs[0], int(n.attrs["channels"]), ax)
        pos_v, neg_v = self._values(g, n)
        y = g.tensors[n.outputs[0]]
        return [np.where(neg, neg_v, pos_v).astype(np.float32 if y.dtype == "float32" else np.int8)]

    def emit(self, k):
        x = k.tin(0)
        ax = norm_axis(k.node.attrs.get("axis", -1), x.rank, "BitUnpack")
        C = int(k.node.attrs["channels"])
        pos_v, neg_v = self._values(k.g, k.node)
        fl = k.tout().dtype == "float32"
        return k.render("bitunpack.c.j2", outer=prod(x.shape[:ax]), inner=prod(x.shape[ax + 1:]),
                        C=C, CW=words(C), pos=c_float(pos_v) if fl else str(pos_v),
                        neg=c_float(neg_v) if fl else str(neg_v),
                        ctype="float" if fl else "int8_t")


# --- BinaryFullyConnected --------------------------------------------------------

def fc_dims(g, n):
    x = g.tensors[n.inputs[0]]
    w = g.tensors[n.inputs[1]]
    K = int(n.attrs["channels_in"])
    if w.rank != 2 or w.shape[1] != words(K):
        raise EdgecError(f"BinaryFullyConnected: weights {list(w.shape)} are not [N, {words(K)}] words")
    xk = words(K) if x.dtype == "int32" else K
    if x.rank < 1 or x.shape[-1] != xk:
        raise EdgecError(f"BinaryFullyConnected: input {list(x.shape)} does not end in {xk}")
    return x.size // xk, int(w.shape[0]), K


@register
class BinaryFullyConnected(Op):
    name = "BinaryFullyConnected"

    def infer(self, g, n):
        M, N, K = fc_dims(g, n)
        x = g.tensors[n.inputs[0]]
        if x.dtype not in ("int32", "float32"):
            raise UnsupportedError([f"BinaryFullyConnected[{x.dtype}]"])
        _check_vectors(g, n, N)
        out = n.attrs.get("out", "float32")
        last = words(N) if out == "bits" else N
        dt = {"bits": "int32", "float32": "float32", "int8": "int8"}[out]
        if out == "bits" and x.dtype != "int32":
            raise EdgecError("BinaryFullyConnected: packed output needs a packed input")
        return [OutSpec(tuple(x.shape[:-1]) + (last,), dt, n.attrs.get("quant"))]

    def check(self, g, n):
        return _check_consts(g, n, out_kind(g, n))

    def reference(self, g, n, xs):
        M, N, K = fc_dims(g, n)
        x = xs[0]
        ws = signs(xs[1], K)                          # [N, K] +/-1
        if x.dtype == np.int32:
            xsg = signs(x.reshape(M, -1), K)          # [M, K]
            acc = xsg @ ws.T                          # exact int64 dot products
        else:
            xf = x.reshape(M, K).astype(np.float32)
            acc = np.zeros((M, N), np.float32)
            neg = ws < 0
            for kk in range(K):                       # the kernel's order, in float32
                v = xf[:, kk:kk + 1]
                acc = np.where(neg[:, kk], acc - v, acc + v).astype(np.float32)
        y = apply_output(g, n, acc, N, 1)
        return [y.reshape(g.tensors[n.outputs[0]].shape)]

    def macs(self, g, n):
        M, N, K = fc_dims(g, n)
        return M * N * K

    def emit(self, k):
        g, n = k.g, k.node
        M, N, K = fc_dims(g, n)
        kind = out_kind(g, n)
        binary_in = k.tin(0).dtype == "int32"
        w = k.const(k.tin(1).data.view(np.uint32), "uint32", "wbits")
        oc = output_code(k, kind, "n", "acc", "y0[m * %d + n]" % N, N, not binary_in)
        k.need("bnn")
        return k.render("bnn_fc.c.j2", M=M, N=N, K=K, KW=words(K), NW=words(N), w=w,
                        binary_in=binary_in, kind=kind, out=oc["stmt"])


# --- BinaryConv ---------------------------------------------------------------------

def conv_geometry(g, n):
    """(N, H, W, C, O, KH, KW, OH, OW) of a BinaryConv; x packed or float, any layout."""
    x = g.tensors[n.inputs[0]]
    w = g.tensors[n.inputs[1]]
    C = int(n.attrs["channels_in"])
    nchw = n.attrs.get("layout", "NHWC") == "NCHW"
    if x.rank != 4 or w.rank != 4:
        raise EdgecError(f"BinaryConv expects 4-D input and weights, got {list(x.shape)} and {list(w.shape)}")
    if nchw:
        N, Cx, H, W = x.shape
    else:
        N, H, W, Cx = x.shape
    if Cx != (words(C) if x.dtype == "int32" else C):
        raise EdgecError(f"BinaryConv: input {list(x.shape)} does not hold {C} channels")
    O, KH, KW, CWw = w.shape
    if int(n.attrs.get("group", 1)) != 1:
        raise UnsupportedError(["grouped binary convolution"])
    if CWw != words(C):
        raise EdgecError(f"BinaryConv: weights {list(w.shape)} are not [O, KH, KW, {words(C)}] words")
    sh, sw = n.attrs["strides"]
    dh, dw = n.attrs["dilations"]
    pt, pl, pb, pr = n.attrs["pads"]
    if min(sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise EdgecError("BinaryConv: strides and dilations must be positive, pads non-negative")
    check_window("BinaryConv", H, KH, sh, dh, pt, pb)
    check_window("BinaryConv", W, KW, sw, dw, pl, pr)
    OH = out_size(H, KH, sh, dh, pt, pb)
    OW = out_size(W, KW, sw, dw, pl, pr)
    if OH < 1 or OW < 1:
        raise EdgecError(f"BinaryConv: kernel {KH}x{KW} does not fit the input {H}x{W}")
    return N, H, W, C, O, KH, KW, OH, OW


@register
class BinaryConv(Op):
    name = "BinaryConv"

    def infer(self, g, n):
        N, H, W, C, O, KH, KW, OH, OW = conv_geometry(g, n)
        _check_vectors(g, n, O)
        x = g.tensors[n.inputs[0]]
        if x.dtype not in ("int32", "float32"):
            raise UnsupportedError([f"BinaryConv[{x.dtype}]"])
        out = n.attrs.get("out", "float32")
        if out == "bits" and x.dtype != "int32":
            raise EdgecError("BinaryConv: packed output needs a packed input")
        oc = words(O) if out == "bits" else O
        shape = (N, oc, OH, OW) if n.attrs.get("layout", "NHWC") == "NCHW" else (N, OH, OW, oc)
        dt = {"bits": "int32", "float32": "float32", "int8": "int8"}[out]
        return [OutSpec(shape, dt, n.attrs.get("quant"))]

    def check(self, g, n):
        return _check_consts(g, n, out_kind(g, n))

    def reference(self, g, n, xs):
        N, H, W, C, O, KH, KW, OH, OW = conv_geometry(g, n)
        a = n.attrs
        nchw = a.get("layout", "NHWC") == "NCHW"
        x = xs[0]
        if nchw:
            x = np.transpose(x, (0, 2, 3, 1))
        w = signs(xs[1], C)                           # [O, KH, KW, C]
        pt, pl, pb, pr = a["pads"]
        if x.dtype == np.int32:
            s = signs(x, C)
            padv = int(a.get("pad_value", 0))
            sp = np.pad(s, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=padv)
            acc = conv_nhwc(sp, w, a["strides"], a["dilations"], [0, 0, 0, 0], 1, np.int64)
        else:
            acc = _float_binary_conv(x.astype(np.float32), w, a, OH, OW)
        y = apply_output(g, n, acc, O, 3)
        if nchw:
            y = np.transpose(y, (0, 3, 1, 2))
        return [np.ascontiguousarray(y)]

    def macs(self, g, n):
        N, H, W, C, O, KH, KW, OH, OW = conv_geometry(g, n)
        return N * OH * OW * O * KH * KW * C

    def emit(self, k):
        g, n = k.g, k.node
        N, H, W, C, O, KH, KW, OH, OW = conv_geometry(g, n)
        a = n.attrs
        nchw = a.get("layout", "NHWC") == "NCHW"
        kind = out_kind(g, n)
        binary_in = k.tin(0).dtype == "int32"
        CI = words(C) if binary_in else C          # elements of x along its channel axis
        CO = words(O) if kind == "bits" else O     # elements of y along its channel axis
        xs = dict(n=CI * H * W, c=H * W, h=W, w=1) if nchw else dict(n=H * W * CI, h=W * CI, w=CI, c=1)
        ys = dict(n=CO * OH * OW, c=OH * OW, h=OW, w=1) if nchw else \
            dict(n=OH * OW * CO, h=OW * CO, w=CO, c=1)
        w = k.const(k.tin(1).data.view(np.uint32), "uint32", "wbits")
        store = f"y0[b * {ys['n']} + oy * {ys['h']} + ox * {ys['w']} + oc * {ys['c']}]"
        oc = output_code(k, kind, "oc", "acc", store, O, not binary_in)
        k.need("bnn")
        pt, pl, _, _ = a["pads"]
        return k.render("bnn_conv.c.j2", N=N, H=H, W=W, C=C, CW=words(C), O=O, KH=KH, KW=KW,
                        OH=OH, OW=OW, sh=a["strides"][0], sw=a["strides"][1],
                        dh=a["dilations"][0], dw=a["dilations"][1], pt=pt, pl=pl,
                        pad_value=int(a.get("pad_value", 0)), xs=xs, ys=ys, w=w,
                        binary_in=binary_in, kind=kind, out=oc["stmt"])


def _float_binary_conv(x, w, a, OH, OW):
    """Binary-weight convolution on float32 NHWC input, accumulated in float32 in the
    kernel's order (ky, kx, channel); zero padding adds nothing."""
    N, H, W, C = x.shape
    O = w.shape[0]
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    pt, pl, pb, pr = a["pads"]
    KH, KW = w.shape[1], w.shape[2]
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    acc = np.zeros((N, OH, OW, O), np.float32)
    neg = w < 0
    for ky in range(KH):
        for kx in range(KW):
            y0, x0 = ky * dh, kx * dw
            patch = xp[:, y0:y0 + sh * (OH - 1) + 1:sh, x0:x0 + sw * (OW - 1) + 1:sw, :]
            for ic in range(C):
                v = patch[..., ic:ic + 1]
                acc = np.where(neg[:, ky, kx, ic], acc - v, acc + v).astype(np.float32)
    return acc


# --- Larq Compute Engine custom operators (TFLite) ------------------------------------

def _custom_options(ctx, op) -> dict:
    from flatbuffers import flexbuffers
    if op.CustomOptionsLength() == 0:
        return {}
    raw = op.CustomOptionsAsNumpy().tobytes()
    try:
        d = flexbuffers.Loads(raw)
    except Exception as e:  # noqa: BLE001 - malformed flexbuffer
        raise EdgecError(f"unreadable custom options ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise EdgecError("custom options are not a map")
    return d


# TFLite ActivationFunctionType -> clamp of the +/-1 dot product (LCE applies it there)
_LCE_ACT = {0: None, 1: (0, INT32_MAX), 2: (-1, 1), 3: (0, 6)}


@tflite_op("CUSTOM:LceQuantize")
def _lce_quantize(ctx, op):
    x = ctx.inputs(op)[0]
    ctx.add("BitPack", [x], ctx.outputs(op), {"axis": -1})


@tflite_op("CUSTOM:LceDequantize")
def _lce_dequantize(ctx, op):
    x = ctx.inputs(op)[0]
    out = ctx.outputs(op)[0]
    yt = ctx.t(out)
    attrs = {"channels": int(yt.shape[-1]), "axis": -1, "dtype": yt.dtype}
    if yt.quant is not None:
        attrs["quant"] = yt.quant
    ctx.add("BitUnpack", [x], [out], attrs)


@tflite_op("CUSTOM:LceBconv2d")
def _lce_bconv2d(ctx, op):
    o = _custom_options(ctx, op)
    ins = ctx.inputs(op) + [""] * 5
    x, w, mult, bias, thr = ins[:5]
    out = ctx.outputs(op)[0]
    xt, wt, yt = ctx.t(x), ctx.t(w), ctx.t(out)
    need = ("channels_in", "stride_height", "stride_width", "padding")
    missing = [k for k in need if k not in o]
    if missing:
        raise EdgecError(f"LceBconv2d without {', '.join(missing)} in its options")
    C = int(o["channels_in"])
    if xt.dtype != "int32" or xt.rank != 4:
        raise UnsupportedError([f"LceBconv2d with a {xt.dtype} input (expected bit-packed int32)"])
    if not wt.is_const:
        raise UnsupportedError(["LceBconv2d with computed filters"])
    if wt.dtype == "float32":   # older converters: unpacked +/-1 filters
        wdata = pack(wt.data < 0, -1)
        w = ctx.g.add_const(wdata, w + "_packed")
    elif wt.dtype != "int32":
        raise UnsupportedError([f"LceBconv2d with {wt.dtype} filters"])
    O, KH, KW, _ = ctx.t(w).shape
    if ctx.t(w).shape[3] != words(C):
        raise UnsupportedError(["grouped LceBconv2d"])
    sh, sw = int(o["stride_height"]), int(o["stride_width"])
    dh, dw = int(o.get("dilation_height_factor", 1)), int(o.get("dilation_width_factor", 1))
    _, H, W, _ = xt.shape
    pads = tfl_pads(H, W, KH, KW, sh, sw, dh, dw, int(o["padding"]))
    pad_value = int(o.get("pad_values", 0))
    act = int(o.get("fused_activation_function", 0))
    if act not in _LCE_ACT:
        raise UnsupportedError([f"LceBconv2d fused activation {act}"])
    dclamp = _LCE_ACT[act]
    K = KH * KW * C
    attrs = dict(layout="NHWC", channels_in=C, strides=[sh, sw], dilations=[dh, dw], pads=pads,
                 pad_value=pad_value, group=1, act=None,
                 dot_clamp=None if dclamp is None else [max(dclamp[0], -K), min(dclamp[1], K)])
    if yt.dtype == "int32":
        if not thr or not ctx.t(thr).is_const:
            raise UnsupportedError(["LceBconv2d with packed output and no constant thresholds"])
        if any(pads) and pad_value == 0:
            raise UnsupportedError(["LceBconv2d with zero padding and packed output"])
        # LCE: bit = popcount > threshold; dot = K - 2 * popcount  =>  bit = dot < K - 2 * threshold
        t = K - 2 * ctx.t(thr).data.astype(np.int64).reshape(-1)
        tn = ctx.g.add_const(np.clip(t, INT32_MIN, INT32_MAX).astype(np.int32), thr + "_dot")
        attrs["out"] = "bits"
        ctx.add("BinaryConv", [x, w, "", "", tn], [out], attrs)
        return
    if yt.dtype not in ("float32", "int8"):
        raise UnsupportedError([f"LceBconv2d with {yt.dtype} output"])
    for name, what in ((mult, "post_activation_multiplier"), (bias, "post_activation_bias")):
        if not name or not ctx.t(name).is_const:
            raise UnsupportedError([f"LceBconv2d without a constant {what}"])
    attrs["out"] = yt.dtype
    if yt.dtype == "int8":
        attrs["quant"] = yt.quant
    ctx.add("BinaryConv", [x, w, mult, bias], [out], attrs)

