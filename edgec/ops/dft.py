"""Spectral operators: DFT (forward, inverse, one-sided real FFT and its inverse)
and STFT (windowed frames, real or complex signal).

The C is the direct O(L^2) transform with one table of L cosines and sines in
flash (angle index ``k * n mod L``); it sums in double with double twiddles,
because the cancellations of a transform (the imaginary part of a real
signal's inverse) need it to come out at zero.  Complex values are pairs
[re, im] in the last axis, as ONNX stores them.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import norm_axis, prod


def _twiddles(k, L: int):
    ang = 2 * np.pi * np.arange(L) / L
    return k.const(np.cos(ang), "float64", "cos"), k.const(np.sin(ang), "float64", "sin")


@register
class DFT(Op):
    """Attributes ``axis`` (not the last), ``length``, ``inverse``, ``onesided``."""
    name = "DFT"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.rank < 2 or x.shape[-1] not in (1, 2):
            raise EdgecError(f"DFT: the last axis must hold 1 (real) or 2 (complex) values, got {list(x.shape)}")
        a = norm_axis(n.attrs["axis"], x.rank, "DFT")
        if a == x.rank - 1:
            raise EdgecError("DFT along the real/imaginary axis")
        L = int(n.attrs["length"])
        inv, one = n.attrs.get("inverse", 0), n.attrs.get("onesided", 0)
        if L < 1:
            raise EdgecError(f"DFT length {L}")
        if inv and one:
            nout, cout = L, 1
        elif one:
            if x.shape[-1] != 1:
                raise EdgecError("one-sided DFT of a complex signal")
            nout, cout = L // 2 + 1, 2
        else:
            nout, cout = L, 2
        return x, a, L, nout, cout

    def infer(self, g, n):
        x, a, L, nout, cout = self._dims(g, n)
        if x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"DFT[{x.dtype}]"])
        shape = list(x.shape)
        shape[a] = nout
        shape[-1] = cout
        return [OutSpec(tuple(shape), x.dtype)]

    def reference(self, g, n, xs):
        x, a, L, nout, cout = self._dims(g, n)
        v = xs[0].astype(np.float64)
        sig = v[..., 0] if v.shape[-1] == 1 else v[..., 0] + 1j * v[..., 1]
        if n.attrs.get("inverse", 0):
            if n.attrs.get("onesided", 0):
                r = np.fft.irfft(sig, n=L, axis=a)[..., None]
            else:
                r = np.fft.ifft(sig, n=L, axis=a)
        else:
            r = np.fft.fft(sig, n=L, axis=a)
            if n.attrs.get("onesided", 0):
                r = np.take(r, np.arange(nout), axis=a)
        if cout == 2:
            r = np.stack([r.real, r.imag], axis=-1)
        return [r.astype(xs[0].dtype)]

    def emit(self, k):
        x, a, L, nout, cout = self._dims(k.g, k.node)
        ct = dtypes.c_type(x.dtype)
        cos_t, sin_t = _twiddles(k, L)
        outer, nin = prod(x.shape[:a]), x.shape[a]
        inner = prod(x.shape[a + 1:-1])
        cin = x.shape[-1]
        inv = k.node.attrs.get("inverse", 0)
        one = k.node.attrs.get("onesided", 0)
        xs_ = lambda m: f"{k.x(0)}[((o * {nin} + {m}) * {inner} + i) * {cin}"  # noqa: E731
        lines = [f"  for (int o = 0; o < {outer}; ++o)",
                 f"  for (int i = 0; i < {inner}; ++i)",
                 f"  for (int q = 0; q < {nout}; ++q) {{",
                 "    double re = 0;",
                 "    double im = 0;"]
        if inv and one:
            # inverse of a one-sided spectrum: extend it as a Hermitian one
            lines += [f"    for (int m = 0; m < {L}; ++m) {{",
                      f"      const int src = m <= {L // 2} ? m : {L} - m;",
                      f"      const int ix = (int)(((long)q * m) % {L});",
                      "      double xr, xi;",
                      f"      if (src >= {nin}) continue;",
                      f"      xr = {xs_('src')}];",
                      f"      xi = {xs_('src')} + 1];" if cin == 2 else "      xi = 0;",
                      "      if (m > " + str(L // 2) + ") xi = -xi;",
                      "      if (m == 0" + (f" || m == {L // 2}" if L % 2 == 0 else "") + ") xi = 0;",
                      f"      re += xr * {cos_t}[ix] - xi * {sin_t}[ix];",
                      "    }",
                      f"    y0[(o * {nout} + q) * {inner} + i] = ({ct})(re / {L});",
                      "    (void)im;",
                      "  }"]
            return "\n".join(lines) + "\n"
        sgn = "+" if inv else "-"
        lines += [f"    for (int m = 0; m < {min(nin, L)}; ++m) {{",
                  f"      const int ix = (int)(((long)q * m) % {L});",
                  f"      const double xr = {xs_('m')}];",
                  f"      const double xi = {xs_('m') + ' + 1]' if cin == 2 else '0'};",
                  f"      const double c = {cos_t}[ix];",
                  f"      const double s = {sgn}{sin_t}[ix];",
                  "      re += xr * c - xi * s;",
                  "      im += xi * c + xr * s;",
                  "    }"]
        if inv:
            lines += [f"    re /= {L};", f"    im /= {L};"]
        lines += [f"    y0[((o * {nout} + q) * {inner} + i) * 2] = ({ct})re;",
                  f"    y0[((o * {nout} + q) * {inner} + i) * 2 + 1] = ({ct})im;",
                  "  }"]
        return "\n".join(lines) + "\n"


@onnx_op("DFT")
def _onnx_dft(ctx, node):
    x = ctx.inp(node, 0)
    xt = ctx.t(x)
    if ctx.opset >= 20:
        axis = ctx.const_input(node, 2, "axis") if ctx.inp(node, 2) else None
        axis = -2 if axis is None else int(np.asarray(axis).reshape(-1)[0])
    else:
        axis = int(ctx.attr(node, "axis", 1))
    a = norm_axis(axis, xt.rank, "DFT")
    inv, one = int(ctx.attr(node, "inverse", 0)), int(ctx.attr(node, "onesided", 0))
    L = ctx.const_input(node, 1, "dft_length") if ctx.inp(node, 1) else None
    if L is None:
        L = 2 * (xt.shape[a] - 1) if inv and one else xt.shape[a]
    ctx.add("DFT", [x], [ctx.out(node)],
            {"axis": a, "length": int(np.asarray(L).reshape(-1)[0]), "inverse": inv, "onesided": one},
            node.name)


@register
class STFT(Op):
    """Inputs ``signal [B, N, 1|2]`` and an optional ``window [L]``; attributes
    ``step``, ``length`` (L) and ``onesided``.  Output ``[B, frames, bins, 2]``."""
    name = "STFT"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        L, step = int(n.attrs["length"]), int(n.attrs["step"])
        if x.rank != 3 or x.shape[-1] not in (1, 2) or L < 1 or step < 1 or L > x.shape[1]:
            raise EdgecError(f"STFT of {list(x.shape)} with frames of {L}, step {step}")
        if n.attrs.get("onesided", 1) and x.shape[-1] == 2:
            raise EdgecError("one-sided STFT of a complex signal")
        frames = 1 + (x.shape[1] - L) // step
        bins = L // 2 + 1 if n.attrs.get("onesided", 1) else L
        return x, L, step, frames, bins

    def infer(self, g, n):
        x, L, step, frames, bins = self._dims(g, n)
        if x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"STFT[{x.dtype}]"])
        if n.input(1) and g.tensors[n.inputs[1]].size != L:
            raise EdgecError(f"STFT: a window of {g.tensors[n.inputs[1]].size} for frames of {L}")
        return [OutSpec((x.shape[0], frames, bins, 2), x.dtype)]

    def reference(self, g, n, xs):
        x, L, step, frames, bins = self._dims(g, n)
        v = xs[0].astype(np.float64)
        sig = v[..., 0] if v.shape[-1] == 1 else v[..., 0] + 1j * v[..., 1]
        w = xs[1].astype(np.float64).reshape(-1) if len(xs) > 1 and xs[1] is not None else np.ones(L)
        fr = np.stack([sig[:, f * step:f * step + L] * w for f in range(frames)], axis=1)
        r = np.fft.fft(fr, n=L, axis=-1)[..., :bins]
        return [np.stack([r.real, r.imag], axis=-1).astype(xs[0].dtype)]

    def emit(self, k):
        x, L, step, frames, bins = self._dims(k.g, k.node)
        ct = dtypes.c_type(x.dtype)
        cos_t, sin_t = _twiddles(k, L)
        N, cin = x.shape[1], x.shape[2]
        w = f" * {k.x(1)}[m]" if k.has_input(1) else ""
        xi = f"{k.x(0)}[(b * {N} + f * {step} + m) * {cin} + 1]{w}" if cin == 2 else "0"
        return (f"  for (int b = 0; b < {x.shape[0]}; ++b)\n"
                f"  for (int f = 0; f < {frames}; ++f)\n"
                f"  for (int q = 0; q < {bins}; ++q) {{\n"
                "    double re = 0;\n    double im = 0;\n"
                f"    for (int m = 0; m < {L}; ++m) {{\n"
                f"      const int ix = (int)(((long)q * m) % {L});\n"
                f"      const double xr = (double){k.x(0)}[(b * {N} + f * {step} + m) * {cin}]{w};\n"
                f"      const double xi = (double){xi};\n"
                f"      re += xr * {cos_t}[ix] + xi * {sin_t}[ix];\n"
                f"      im += xi * {cos_t}[ix] - xr * {sin_t}[ix];\n"
                f"    }}\n"
                f"    y0[((b * {frames} + f) * {bins} + q) * 2] = ({ct})re;\n"
                f"    y0[((b * {frames} + f) * {bins} + q) * 2 + 1] = ({ct})im;\n  }}\n")


@onnx_op("STFT")
def _onnx_stft(ctx, node):
    x = ctx.inp(node, 0)
    step = int(np.asarray(ctx.const_input(node, 1, "frame_step")).reshape(-1)[0])
    win = ctx.inp(node, 2)
    if ctx.inp(node, 3):
        L = int(np.asarray(ctx.const_input(node, 3, "frame_length")).reshape(-1)[0])
    elif win:
        L = ctx.t(win).size
    else:
        raise EdgecError("STFT needs a window or a frame_length")
    ctx.add("STFT", [x, win] if win else [x], [ctx.out(node)],
            {"step": step, "length": L, "onesided": int(ctx.attr(node, "onesided", 1))}, node.name)

