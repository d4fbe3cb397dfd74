"""Operators whose result depends only on shapes or constants, so it is computed
at compile time: ConstantOfShape, Range, EyeLike and the window functions
(HannWindow, HammingWindow, BlackmanWindow).  Each is an IR op without tensor
inputs that folds to a constant as soon as it is added."""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError
from ..ir import limits
from . import OutSpec, Op, onnx_op, register


def _onnx_dtype(code: int) -> str:
    from onnx import helper

    from ..ir.errors import UnsupportedError
    try:
        return dtypes.from_numpy(helper.tensor_dtype_to_np_dtype(int(code)))
    except Exception:  # noqa: BLE001
        raise UnsupportedError([f"element type {code}"]) from None


class Generated(Op):
    """Attributes ``shape``, ``dtype`` and what the op needs; no inputs."""

    def infer(self, g, n):
        shape = tuple(int(d) for d in n.attrs["shape"])
        if any(d < 0 for d in shape):
            raise EdgecError(f"{n.op}: negative dimension in {list(shape)}")
        nbytes = math.prod(shape) * dtypes.itemsize(n.attrs["dtype"])
        if g.fold_growth + nbytes > limits.current().fold_bytes:
            # these ops only exist as compile-time constants: too large is refused
            raise limits.exceeded("fold_bytes", f"a constant of {list(shape)} ({nbytes:,} bytes)")
        return [OutSpec(shape, n.attrs["dtype"])]


@register
class ConstantOfShape(Generated):
    name = "ConstantOfShape"

    def reference(self, g, n, xs):
        return [np.full(n.attrs["shape"], n.attrs["value"], dtype=dtypes.np_dtype(n.attrs["dtype"]))]


@register
class Range(Generated):
    name = "Range"

    def reference(self, g, n, xs):
        a = n.attrs
        npt = dtypes.np_dtype(a["dtype"])
        start, delta = np.array(a["start"], npt), np.array(a["delta"], npt)
        k = np.arange(int(a["shape"][0]))
        return [(start + k.astype(npt) * delta).astype(npt)]


@register
class EyeLike(Generated):
    name = "EyeLike"

    def reference(self, g, n, xs):
        r, c = n.attrs["shape"]
        return [np.eye(r, c, int(n.attrs.get("k", 0)), dtype=dtypes.np_dtype(n.attrs["dtype"]))]


@register
class Window(Generated):
    """Hann, Hamming or Blackman window of ``shape[0]`` points (periodic or symmetric)."""
    name = "Window"

    def reference(self, g, n, xs):
        size = int(n.attrs["shape"][0])
        N = size if n.attrs.get("periodic", 1) else size - 1
        k = np.arange(size, dtype=np.float64)
        w = 2 * np.pi * k / max(N, 1)
        kind = n.attrs["kind"]
        if kind == "hann":
            y = 0.5 - 0.5 * np.cos(w)
        elif kind == "hamming":
            y = 25 / 46 - 21 / 46 * np.cos(w)
        else:
            y = 0.42 - 0.5 * np.cos(w) + 0.08 * np.cos(2 * w)
        return [y.astype(dtypes.np_dtype(n.attrs["dtype"]))]


@onnx_op("ConstantOfShape")
def _onnx_constant_of_shape(ctx, node):
    shape = [int(d) for d in np.asarray(ctx.const_input(node, 0, "shape")).reshape(-1)]
    v = ctx.attr(node, "value")
    if v is None:
        v = np.zeros(1, np.float32)
    v = np.asarray(v)
    if v.size != 1:
        raise EdgecError("ConstantOfShape: the value must have one element")
    dt = dtypes.from_numpy(v.dtype)
    ctx.add("ConstantOfShape", [], [ctx.out(node)],
            {"shape": shape, "dtype": dt, "value": v.reshape(-1)[0].item()}, node.name)


@onnx_op("Range")
def _onnx_range(ctx, node):
    vals = [np.asarray(ctx.const_input(node, i, w)) for i, w in enumerate(("start", "limit", "delta"))]
    start, limit, delta = (v.reshape(-1)[0] for v in vals)
    dt = dtypes.from_numpy(vals[0].dtype)
    if delta == 0:
        raise EdgecError("Range: delta is 0")
    count = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    if dt not in dtypes.FLOAT_TYPES:
        count = max(-(-(int(limit) - int(start)) // int(delta)), 0)
    ctx.add("Range", [], [ctx.out(node)],
            {"shape": [count], "dtype": dt, "start": start.item(), "delta": delta.item()}, node.name)


@onnx_op("EyeLike")
def _onnx_eyelike(ctx, node):
    x = ctx.t(ctx.inp(node, 0))
    if x.rank != 2:
        raise EdgecError(f"EyeLike needs a 2-D input, got {list(x.shape)}")
    dt = _onnx_dtype(ctx.attr(node, "dtype")) if ctx.has_attr(node, "dtype") else x.dtype
    ctx.add("EyeLike", [], [ctx.out(node)],
            {"shape": list(x.shape), "dtype": dt, "k": int(ctx.attr(node, "k", 0))}, node.name)


def _onnx_window(kind):
    def imp(ctx, node):
        size = int(np.asarray(ctx.const_input(node, 0, "size")).reshape(-1)[0])
        dt = _onnx_dtype(ctx.attr(node, "output_datatype", 1))
        ctx.add("Window", [], [ctx.out(node)],
                {"shape": [size], "dtype": dt, "kind": kind,
                 "periodic": int(ctx.attr(node, "periodic", 1))}, node.name)
    return imp


onnx_op("HannWindow")(_onnx_window("hann"))
onnx_op("HammingWindow")(_onnx_window("hamming"))
onnx_op("BlackmanWindow")(_onnx_window("blackman"))


@register
class MelWeightMatrix(Generated):
    """[dft_length // 2 + 1, num_mel_bins] triangular filters, as the ONNX
    definition spaces them (num_mel_bins + 2 mel points, bins by integer division)."""
    name = "MelWeightMatrix"

    def reference(self, g, n, xs):
        a = n.attrs
        bins, dft, rate = int(a["num_mel_bins"]), int(a["dft_length"]), int(a["sample_rate"])
        lo, hi = float(a["lower"]), float(a["upper"])

        def mel(f):
            return 2595 * np.log1p(f / 700) / np.log(10)
        pts = np.arange(bins + 2)
        m = pts * ((mel(hi) - mel(lo)) / (bins + 2)) + mel(lo)
        hz = 700 * np.expm1(m / 2595 * np.log(10))
        fb = (((dft + 1) * hz) // rate).astype(int)
        out = np.zeros((dft // 2 + 1, bins))
        for i in range(bins):
            left, center, right = fb[i], fb[i + 1], fb[i + 2]
            if center == left:
                out[center, i] = 1
            else:
                for j in range(left, center + 1):
                    out[j, i] = (j - left) / (center - left)
            for j in range(center, right):
                out[j, i] = (right - j) / (right - center)
        return [out.astype(dtypes.np_dtype(a["dtype"]))]


@onnx_op("MelWeightMatrix")
def _onnx_mel(ctx, node):
    v = [np.asarray(ctx.const_input(node, i, w)).reshape(-1)[0] for i, w in enumerate(
        ("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"))]
    dt = _onnx_dtype(ctx.attr(node, "output_datatype", 1))
    ctx.add("MelWeightMatrix", [], [ctx.out(node)],
            {"shape": [int(v[1]) // 2 + 1, int(v[0])], "dtype": dt, "num_mel_bins": int(v[0]),
             "dft_length": int(v[1]), "sample_rate": int(v[2]), "lower": float(v[3]),
             "upper": float(v[4])}, node.name)
