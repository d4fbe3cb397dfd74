"""Recurrent layers as ONNX defines them: RNN, GRU and LSTM (forward, reverse,
bidirectional; sequence lengths, initial states, peepholes, clipping, the
``layout`` attribute, GRU's ``linear_before_reset``, LSTM's ``input_forget``
and the standard activation functions).

IR ops ``RNN``, ``GRU``, ``LSTM`` with the ONNX inputs at fixed positions
(absent ones ``""``): ``X, W, R, B, sequence_lens, initial_h[, initial_c, P]``
and outputs ``Y, Y_h[, Y_c]``.  Weights may be constant or computed.  The C
runs one (direction, batch) chain at a time with the state in small local
arrays (sizes known at compile time); float math in the tensor's type.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_literal
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
N_ACT = {"RNN": 1, "GRU": 2, "LSTM": 3}
DEFAULT_ACT = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
ACTS = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
        "HardSigmoid", "Elu", "Softsign", "Softplus")
DEFAULT_ALPHA = {"Affine": 1.0, "LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "ScaledTanh": 1.0,
                 "HardSigmoid": 0.2, "Elu": 1.0}
DEFAULT_BETA = {"Affine": 0.0, "ScaledTanh": 1.0, "HardSigmoid": 0.5}


def _np_act(name, a, b):
    return {
        "Relu": lambda x: np.maximum(x, 0),
        "Tanh": np.tanh,
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Affine": lambda x: a * x + b,
        "LeakyRelu": lambda x: np.where(x < 0, a * x, x),
        "ThresholdedRelu": lambda x: np.where(x > a, x, 0),
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "HardSigmoid": lambda x: np.clip(a * x + b, 0, 1),
        "Elu": lambda x: np.where(x < 0, a * (np.exp(x) - 1), x),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Softplus": lambda x: np.log1p(np.exp(x)),
    }[name]


def _c_act(name, a, b, x, dt):
    f = "f" if dt == "float32" else ""
    lit = lambda v: c_literal(float(v), dt)  # noqa: E731
    return {
        "Relu": f"({x} > 0 ? {x} : 0)",
        "Tanh": f"tanh{f}({x})",
        "Sigmoid": f"(1 / (1 + exp{f}(-{x})))",
        "Affine": f"({lit(a)} * {x} + {lit(b)})",
        "LeakyRelu": f"({x} < 0 ? {lit(a)} * {x} : {x})",
        "ThresholdedRelu": f"({x} > {lit(a)} ? {x} : 0)",
        "ScaledTanh": f"({lit(a)} * tanh{f}({lit(b)} * {x}))",
        "HardSigmoid": f"EDGEC_MAX(0, EDGEC_MIN(1, {lit(a)} * {x} + {lit(b)}))",
        "Elu": f"({x} < 0 ? {lit(a)} * (exp{f}({x}) - 1) : {x})",
        "Softsign": f"({x} / (1 + fabs{f}({x})))",
        "Softplus": f"log{f}(1 + exp{f}({x}))",
    }[name]


class Recurrent(Op):
    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        w = g.tensors[n.inputs[1]]
        layout = n.attrs.get("layout", 0)
        if x.rank != 3 or w.rank != 3:
            raise EdgecError(f"{n.op}: X and W must be 3-D")
        S, B, I = (x.shape[1], x.shape[0], x.shape[2]) if layout else x.shape
        D = 2 if n.attrs.get("direction", "forward") == "bidirectional" else 1
        H = int(n.attrs["hidden_size"])
        G = GATES[n.op]
        if tuple(w.shape) != (D, G * H, I) or tuple(g.tensors[n.inputs[2]].shape) != (D, G * H, H):
            raise EdgecError(f"{n.op}: W {list(w.shape)} / R do not fit {D} directions, "
                             f"hidden size {H}, input size {I}")
        return S, B, I, D, H, G

    def _acts(self, n):
        D = 2 if n.attrs.get("direction", "forward") == "bidirectional" else 1
        k = N_ACT[n.op]
        names = list(n.attrs.get("activations") or []) or DEFAULT_ACT[n.op] * D
        if len(names) == k:
            names = names * D
        if len(names) != k * D:
            raise EdgecError(f"{n.op}: {len(names)} activations for {D} direction(s)")
        alphas = list(n.attrs.get("activation_alpha") or [])
        betas = list(n.attrs.get("activation_beta") or [])
        out = []
        for j, nm in enumerate(names):
            if nm not in ACTS:
                raise UnsupportedError([f"{n.op} activation {nm}"])
            a = alphas[j] if j < len(alphas) else DEFAULT_ALPHA.get(nm, 0.0)
            b = betas[j] if j < len(betas) else DEFAULT_BETA.get(nm, 0.0)
            out.append((nm, float(a), float(b)))
        return [out[d * k:(d + 1) * k] for d in range(D)]

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"{n.op}[{x.dtype}]"])
        S, B, I, D, H, G = self._dims(g, n)
        self._acts(n)
        y = (B, S, D, H) if n.attrs.get("layout", 0) else (S, D, B, H)
        yh = (B, D, H) if n.attrs.get("layout", 0) else (D, B, H)
        specs = [OutSpec(y, x.dtype), OutSpec(yh, x.dtype)]
        if n.op == "LSTM":
            specs.append(OutSpec(yh, x.dtype))
        return specs

    def macs(self, g, n):
        S, B, I, D, H, G = self._dims(g, n)
        return S * B * D * G * H * (I + H)

    # -- reference ------------------------------------------------------------
    def reference(self, g, n, xs):
        S, B, I, D, H, G = self._dims(g, n)
        a = n.attrs
        layout = a.get("layout", 0)
        get = lambda i: xs[i] if i < len(xs) and xs[i] is not None else None  # noqa: E731
        X = get(0).astype(np.float64)
        if layout:
            X = X.transpose(1, 0, 2)
        W, R = get(1).astype(np.float64), get(2).astype(np.float64)
        Bias = get(3)
        Bias = np.zeros((D, 2 * G * H)) if Bias is None else Bias.astype(np.float64)
        lens = get(4)
        lens = np.full(B, S) if lens is None else lens.astype(np.int64)
        h0 = get(5)
        c0 = get(6) if n.op == "LSTM" else None
        P = get(7) if n.op == "LSTM" else None
        if layout:
            h0 = None if h0 is None else h0.transpose(1, 0, 2)
            c0 = None if c0 is None else c0.transpose(1, 0, 2)
        clip = a.get("clip")
        acts = self._acts(n)
        Y = np.zeros((S, D, B, H))
        Yh = np.zeros((D, B, H))
        Yc = np.zeros((D, B, H))
        dirs = ["reverse"] if a.get("direction", "forward") == "reverse" else \
            (["forward", "reverse"] if D == 2 else ["forward"])
        for d, dname in enumerate(dirs):
            fs = [_np_act(*ac) for ac in acts[d]]
            Wb, Rb = Bias[d, :G * H], Bias[d, G * H:]
            for b in range(B):
                h = np.zeros(H) if h0 is None else h0[d, b].astype(np.float64)
                c = np.zeros(H) if c0 is None else c0[d, b].astype(np.float64)
                L = int(lens[b])
                for s in range(L):
                    t = s if dname == "forward" else L - 1 - s
                    xw = W[d] @ X[t, b] + Wb
                    hr = R[d] @ h + Rb

                    def cl(v):
                        return v if clip is None else np.clip(v, -clip, clip)
                    if n.op == "RNN":
                        h = fs[0](cl(xw + hr))
                    elif n.op == "GRU":
                        z = fs[0](cl(xw[:H] + hr[:H]))
                        r = fs[0](cl(xw[H:2 * H] + hr[H:2 * H]))
                        if a.get("linear_before_reset", 0):
                            hh = fs[1](cl(xw[2 * H:] + r * hr[2 * H:]))
                        else:
                            hh = fs[1](cl(xw[2 * H:] + R[d][2 * H:] @ (r * h) + Rb[2 * H:]))
                        h = (1 - z) * hh + z * h
                    else:
                        pi, po, pf = (np.zeros(H),) * 3 if P is None else \
                            (P[d, :H], P[d, H:2 * H], P[d, 2 * H:])
                        gsum = xw + hr
                        i_ = fs[0](cl(gsum[:H] + pi * c))
                        f_ = 1 - i_ if a.get("input_forget", 0) else fs[0](cl(gsum[2 * H:3 * H] + pf * c))
                        cc = fs[1](cl(gsum[3 * H:]))
                        c = f_ * c + i_ * cc
                        o_ = fs[0](cl(gsum[H:2 * H] + po * c))
                        h = o_ * fs[2](c)
                    Y[t, d, b] = h
                Yh[d, b] = h
                Yc[d, b] = c
        dt = xs[0].dtype
        if layout:
            return [Y.transpose(2, 0, 1, 3).astype(dt), Yh.transpose(1, 0, 2).astype(dt),
                    Yc.transpose(1, 0, 2).astype(dt)][:len(self.infer(g, n))]
        return [Y.astype(dt), Yh.astype(dt), Yc.astype(dt)][:len(self.infer(g, n))]

    # -- C ----------------------------------------------------------------------
    def emit(self, k):
        g, n = k.g, k.node
        S, B, I, D, H, G = self._dims(g, n)
        a = n.attrs
        dt = k.tin(0).dtype
        ct = dtypes.c_type(dt)
        layout = a.get("layout", 0)
        acts = self._acts(n)
        lstm, gru = n.op == "LSTM", n.op == "GRU"
        has = lambda i: k.has_input(i)  # noqa: E731
        outs = [j < len(n.outputs) and bool(n.outputs[j]) for j in range(3)]
        clip = a.get("clip")
        lit = lambda v: c_literal(float(v), dt)  # noqa: E731

        def cl(e):
            return e if clip is None else f"EDGEC_MAX({lit(-clip)}, EDGEC_MIN({lit(clip)}, {e}))"

        xi = (lambda t: f"(b * {S} + {t}) * {I}") if layout else (lambda t: f"({t} * {B} + b) * {I}")
        yi = (lambda t: f"((b * {S} + {t}) * {D} + d) * {H}") if layout else \
            (lambda t: f"(({t} * {D} + d) * {B} + b) * {H}")
        hi = f"(b * {D} + d) * {H}" if layout else f"(d * {B} + b) * {H}"
        rev = a.get("direction", "forward") == "reverse"
        L = []
        L.append(f"  for (int d = 0; d < {D}; ++d) {{")
        L.append(f"    const int backward = {'1' if rev else '(d == 1)'};")
        L.append(f"    const {ct}* W = {k.x(1)} + d * {G * H * I};")
        L.append(f"    const {ct}* R = {k.x(2)} + d * {G * H * H};")
        L.append(f"    for (int b = 0; b < {B}; ++b) {{")
        L.append(f"      {ct} h[{H}];")
        L.append(f"      {ct} c[{H}];")
        L.append(f"      {ct} xw[{G * H}];")
        L.append(f"      {ct} hr[{G * H}];")
        L.append(f"      int len = {S};")
        if has(4):
            L.append(f"      len = (int){k.x(4)}[b];")
            L.append(f"      len = len < 0 ? 0 : (len > {S} ? {S} : len);")
        L.append(f"      for (int j = 0; j < {H}; ++j) {{")
        L.append(f"        h[j] = {f'{k.x(5)}[{hi} + j]' if has(5) else '0'};")
        L.append(f"        c[j] = {f'{k.x(6)}[{hi} + j]' if lstm and has(6) else '0'};")
        L.append("      }")
        if outs[0]:
            L.append(f"      for (int t = len; t < {S}; ++t)")
            L.append(f"        for (int j = 0; j < {H}; ++j) y0[{yi('t')} + j] = 0;")
        L.append("      for (int s = 0; s < len; ++s) {")
        L.append("        const int t = backward ? len - 1 - s : s;")
        L.append(f"        for (int j = 0; j < {G * H}; ++j) {{")
        L.append(f"          {ct} u = {f'{k.x(3)}[d * {2 * G * H} + j]' if has(3) else '0'};")
        L.append(f"          {ct} v = {f'{k.x(3)}[d * {2 * G * H} + {G * H} + j]' if has(3) else '0'};")
        L.append(f"          for (int i = 0; i < {I}; ++i) u += {k.x(0)}[{xi('t')} + i] * W[j * {I} + i];")
        if gru and not a.get("linear_before_reset", 0):
            L.append(f"          if (j < {2 * H})")
            L.append(f"            for (int i = 0; i < {H}; ++i) v += h[i] * R[j * {H} + i];")
        else:
            L.append(f"          for (int i = 0; i < {H}; ++i) v += h[i] * R[j * {H} + i];")
        L.append("          xw[j] = u;")
        L.append("          hr[j] = v;")
        L.append("        }")
        for dd in range(D):
            cond = f"if (d == {dd}) " if D > 1 else ""
            f0 = [lambda e, ac=ac: _c_act(ac[0], ac[1], ac[2], e, dt) for ac in acts[dd]]
            L.append(f"        {cond}{{")
            if n.op == "RNN":
                L.append(f"          for (int j = 0; j < {H}; ++j) h[j] = {f0[0](cl('(xw[j] + hr[j])'))};")
            elif gru:
                L.append(f"          {ct} rh[{H}];")
                L.append(f"          for (int j = 0; j < {H}; ++j) {{")
                L.append(f"            xw[j] = {f0[0](cl('(xw[j] + hr[j])'))};")
                L.append(f"            xw[{H} + j] = {f0[0](cl(f'(xw[{H} + j] + hr[{H} + j])'))};")
                L.append(f"            rh[j] = xw[{H} + j] * h[j];")
                L.append("          }")
                L.append(f"          for (int j = 0; j < {H}; ++j) {{")
                if a.get("linear_before_reset", 0):
                    pre = f"(xw[{2 * H} + j] + xw[{H} + j] * hr[{2 * H} + j])"
                else:
                    L.append(f"            {ct} v = hr[{2 * H} + j];")
                    L.append(f"            for (int i = 0; i < {H}; ++i) v += rh[i] * R[({2 * H} + j) * {H} + i];")
                    pre = f"(xw[{2 * H} + j] + v)"
                L.append(f"            const {ct} hh = {f0[1](cl(pre))};")
                L.append(f"            xw[{2 * H} + j] = (1 - xw[j]) * hh + xw[j] * h[j];")
                L.append("          }")
                L.append(f"          for (int j = 0; j < {H}; ++j) h[j] = xw[{2 * H} + j];")
            else:
                P = (lambda o: f"{k.x(7)}[d * {3 * H} + {o} + j]") if has(7) else (lambda o: "0")
                L.append(f"          for (int j = 0; j < {H}; ++j) {{")
                L.append(f"            const {ct} ig = {f0[0](cl(f'(xw[j] + hr[j] + {P(0)} * c[j])'))};")
                if a.get("input_forget", 0):
                    L.append(f"            const {ct} fg = 1 - ig;")
                else:
                    L.append(f"            const {ct} fg = {f0[0](cl(f'(xw[{2 * H} + j] + hr[{2 * H} + j] + {P(2 * H)} * c[j])'))};")
                L.append(f"            const {ct} cg = {f0[1](cl(f'(xw[{3 * H} + j] + hr[{3 * H} + j])'))};")
                L.append("            c[j] = fg * c[j] + ig * cg;")
                L.append(f"            {{ const {ct} og = {f0[0](cl(f'(xw[{H} + j] + hr[{H} + j] + {P(H)} * c[j])'))};")
                L.append(f"              h[j] = og * {f0[2]('c[j]')}; }}")
                L.append("          }")
            L.append("        }")
        if outs[0]:
            L.append(f"        for (int j = 0; j < {H}; ++j) y0[{yi('t')} + j] = h[j];")
        L.append("      }")
        if outs[1]:
            L.append(f"      for (int j = 0; j < {H}; ++j) y1[{hi} + j] = h[j];")
        if lstm and outs[2]:
            L.append(f"      for (int j = 0; j < {H}; ++j) y2[{hi} + j] = c[j];")
        L.append("      (void)c;")
        L.append("    }")
        L.append("  }")
        return "\n".join(L) + "\n"


for _k in GATES:
    register(type(_k, (Recurrent,), {"name": _k}))


def _onnx_rnn(op):
    def imp(ctx, node):
        nin = 8 if op == "LSTM" else 6
        ins = [ctx.inp(node, i) for i in range(nin)]
        outs = [ctx.out(node, j) for j in range(3 if op == "LSTM" else 2)]
        attrs = {"hidden_size": int(ctx.attr(node, "hidden_size")),
                 "direction": ctx.attr(node, "direction", "forward"),
                 "activations": ctx.attr(node, "activations"),
                 "activation_alpha": ctx.attr(node, "activation_alpha"),
                 "activation_beta": ctx.attr(node, "activation_beta"),
                 "clip": ctx.attr(node, "clip"),
                 "layout": int(ctx.attr(node, "layout", 0)),
                 "linear_before_reset": int(ctx.attr(node, "linear_before_reset", 0)),
                 "input_forget": int(ctx.attr(node, "input_forget", 0))}
        if attrs["direction"] not in ("forward", "reverse", "bidirectional"):
            raise EdgecError(f"{op}: direction {attrs['direction']!r}")
        ctx.add(op, ins, outs, attrs, node.name)
    return imp


for _k in GATES:
    onnx_op(_k)(_onnx_rnn(_k))
