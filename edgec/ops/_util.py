"""Shared helpers for operator modules: broadcasting, strides, activations, loops."""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes, qmath
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, Node

INF = float("inf")

# ONNX's auto_pad values
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")

# Fused activations as real-valued clamp ranges (TFLite's fused activation codes).
ACTIVATIONS = {
    None: None,
    "NONE": None,
    "RELU": (0.0, INF),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def choice(value, choices, what: str):
    """``value`` when it is one of ``choices`` (an enum attribute: a TFLite option code,
    an ONNX string such as ``auto_pad``), else an EdgecError naming the attribute and
    what it may be.  ``choices`` may be a dict (code -> name) or a sequence."""
    if value in choices:
        return value
    shown = repr(value)[:40] if not isinstance(value, str) else repr(value[:40])
    if isinstance(choices, dict):
        allowed = ", ".join(f"{k} ({v})" for k, v in choices.items())
    else:
        allowed = ", ".join(str(c) for c in choices)
    raise EdgecError(f"{what} {shown} is not one of {allowed}")


def broadcast_shape(*shapes, where: str = "") -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise EdgecError(f"{where}: shapes {[list(s) for s in shapes]} do not broadcast") from None


def strides(shape) -> list[int]:
    st = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        st[i] = st[i + 1] * int(shape[i + 1])
    return st


def broadcast_strides(in_shape, out_shape) -> list[int]:
    """Element strides of ``in_shape`` seen through numpy broadcasting to ``out_shape``."""
    in_shape = [1] * (len(out_shape) - len(in_shape)) + list(in_shape)
    st = strides(in_shape)
    return [0 if d == 1 and o != 1 else s for d, s, o in zip(in_shape, st, out_shape)]


def coalesce(out_shape, stride_sets):
    """Merge adjacent dimensions that are contiguous for every operand.

    Returns (shape, [strides per operand]) with the fewest dimensions, so an
    elementwise op over same-shaped tensors becomes one flat loop."""
    dims = [(int(d), [s[i] for s in stride_sets]) for i, d in enumerate(out_shape) if d != 1]
    if not dims:
        return [1], [[0] for _ in stride_sets]
    merged = [dims[-1]]
    for d, sts in reversed(dims[:-1]):
        md, msts = merged[0]
        if all(s == ms * md for s, ms in zip(sts, msts)):
            merged[0] = (d * md, msts)
        else:
            merged.insert(0, (d, sts))
    shape = [d for d, _ in merged]
    per_op = [[sts[k] for _, sts in merged] for k in range(len(stride_sets))]
    return shape, per_op


def norm_axis(axis: int, rank: int, where: str = "") -> int:
    a = int(axis)
    if a < 0:
        a += rank
    if not 0 <= a < max(rank, 1):
        raise EdgecError(f"{where}: axis {axis} out of range for rank {rank}")
    return a


def act_range_float(act) -> tuple[float, float] | None:
    if act is None:
        return None
    lo, hi = act
    return float(lo), float(hi)


def act_range_quant(act, scale: float, zero_point: int, dtype: str = "int8") -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for a fused activation."""
    qmin, qmax = dtypes.int_range(dtype)
    if act is None:
        return qmin, qmax
    lo, hi = act

    def q(v):
        # float32 division as TFLite does (f / scale in float): in double, 6 / 0.23529412f
        # is 25.4999..., in float 25.5, which rounds to a different clamp bound
        with np.errstate(over="ignore"):
            r = float(np.float32(v) / np.float32(scale))
        r = min(max(r, -2.0 ** 40), 2.0 ** 40)  # an absurd scale overflowed: the bound saturates
        return zero_point + int(qmath.tfl_round(r))

    a = qmin if lo == -INF else max(qmin, q(lo))
    b = qmax if hi == INF else min(qmax, q(hi))
    return a, b


def apply_act_float(y: np.ndarray, act) -> np.ndarray:
    if act is None:
        return y
    lo, hi = act
    return np.minimum(np.maximum(y, np.asarray(lo, y.dtype)), np.asarray(hi, y.dtype))


def c_act_float(expr: str, act, ctype: str = "float") -> str:
    """C expression clamping ``expr`` to a fused float activation range."""
    from ..ir.cgen import c_double, c_float
    if act is None:
        return expr
    lit = c_float if ctype == "float" else c_double
    lo, hi = act
    out = expr
    if lo != -INF:
        out = f"EDGEC_MAX({out}, {lit(lo)})"
    if hi != INF:
        out = f"EDGEC_MIN({out}, {lit(hi)})"
    return out


# Strides, dilated kernel extents and padded sizes must stay below this: the kernels
# compute window positions (o * stride - pad + k * dilation) in C int arithmetic.
WINDOW_LIMIT = 1 << 29


def check_window(op: str, size: int, kernel: int, stride: int, dilation: int, p0: int, p1: int) -> None:
    """One spatial axis of a convolution or pooling window: its index arithmetic must
    fit an int32 (a stride, dilation or padding of 2^31 is a broken model)."""
    if max(stride, (kernel - 1) * dilation + 1, size + p0 + p1) >= WINDOW_LIMIT:
        raise EdgecError(f"{op}: stride {stride}, kernel {kernel}, dilation {dilation} or pads "
                         f"{p0}, {p1} out of range for an axis of {size} (the window arithmetic "
                         f"must stay below 2^29)")


def check_per_channel(g: Graph, n: Node, index: int, channels: int, what: str = "bias",
                      scalar: bool = False) -> None:
    """Input ``index`` of ``n`` (a bias, or another per-output-channel vector), when
    present, must hold one value per output channel (or, with ``scalar``, one for
    all): the kernels index it by channel."""
    name = n.input(index)
    if name and g.tensors[name].size != channels and not (scalar and g.tensors[name].size == 1):
        raise EdgecError(f"{n.op}: {what} of shape {list(g.tensors[name].shape)} for "
                         f"{channels} output channels")


def quant_of(g: Graph, name: str):
    t = g.tensors[name]
    if t.quant is None:
        raise EdgecError(f"tensor {name!r} ({t.dtype}) has no quantization parameters")
    return t.quant


def check_int8_per_tensor(g: Graph, n: Node, what: str) -> str | None:
    """An op's ``check`` reason when its input and output are not both int8 with
    per-tensor quantization parameters (None when they are)."""
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    if x.dtype != "int8" or y.dtype != "int8" or x.quant is None or y.quant is None:
        return f"{what} of {x.dtype} -> {y.dtype} (int8 with quantization parameters only)"
    if x.quant.scale.size != 1 or y.quant.scale.size != 1:
        return f"{what} with per-axis quantization"
    return None


def tfl_float_only(ctx, op, code: str) -> None:
    """TFLite operators edgec computes in float only: another input type is an
    unsupported variant (``CODE[int8]``), listed with the others."""
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype != "float32":
        raise UnsupportedError([f"{code}[{x.dtype}]"])


def is_quantized(g: Graph, n: Node) -> bool:
    """True when the node computes on int8/int16 quantized activations."""
    return any(g.tensors[i].dtype in ("int8", "uint8", "int16") and g.tensors[i].quant is not None
               for i in n.inputs[:1] if i)


def prod(xs) -> int:
    return int(math.prod(int(x) for x in xs))


def loop_nest(shape, index_exprs: dict, body: str, indent: str = "  ", var: str = "i") -> str:
    """C loops over ``shape`` (row-major).  ``index_exprs`` maps a placeholder to
    a list of strides; each placeholder becomes a running offset variable
    usable in ``body`` as ``{name}``."""
    rank = len(shape)
    lines = []
    names = list(index_exprs)
    ind = indent
    for d in range(rank):
        lines.append(f"{ind}for (int {var}{d} = 0; {var}{d} < {int(shape[d])}; ++{var}{d}) {{")
        ind += "  "
    subst = {}
    for name in names:
        sts = index_exprs[name]
        terms = [f"{var}{d} * {int(s)}" if s != 1 else f"{var}{d}"
                 for d, s in enumerate(sts) if s != 0 and shape[d] != 1]
        subst[name] = " + ".join(terms) if terms else "0"
    text = body
    for name in names:
        text = text.replace("{" + name + "}", subst[name])
    for line in text.splitlines():
        lines.append(ind + line)
    for d in range(rank - 1, -1, -1):
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    return "\n".join(lines)


# --- importers' geometry and TFLite enums (Conv, pooling, binary ops, ...) ---------

def same_pads(n: int, k: int, s: int, d: int, upper: bool = True) -> tuple[int, int]:
    out = (n + s - 1) // s
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


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
