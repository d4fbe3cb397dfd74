"""Elementwise unary operators: activations and math functions.

Each entry of :data:`UNARY` gives the numpy reference and the C expression
(``{x}`` is the operand, ``{f}`` the libm suffix, attributes by name).  Float
ops compute in the tensor's own precision (float or double), as the C does.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_double, c_float
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import tfl_float_only


def _erf(x):
    v = np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64))
    return v.astype(x.dtype)


def _softplus(x):
    return np.logaddexp(x, np.zeros_like(x))


def _round_even(x):
    return np.round(x)


def _hardsigmoid(x, a):
    return np.clip(x * x.dtype.type(a["alpha"]) + x.dtype.type(a["beta"]), 0, 1).astype(x.dtype)


def _gelu(x, a):
    xd = x.astype(np.float64)
    if a.get("approximate", "none") == "tanh":
        y = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
    else:
        y = 0.5 * xd * (1 + np.vectorize(math.erf, otypes=[np.float64])(xd / math.sqrt(2)))
    return y.astype(x.dtype)


FLOAT_ONLY = "float"
ANY_NUMERIC = "numeric"

# name: (kinds, numpy fn(x, attrs), C float expr, C int expr or None, default attrs)
UNARY = {
    "Relu": ("numeric", lambda x, a: np.where(x < 0, x.dtype.type(0), x),
             "({x} < 0 ? 0 : {x})", "({x} < 0 ? 0 : {x})", {}),
    "Abs": ("numeric", lambda x, a: np.abs(x), "fabs{f}({x})", "({x} < 0 ? -{x} : {x})", {}),
    "Neg": ("numeric", lambda x, a: -x, "-{x}", "-{x}", {}),
    "Sign": ("numeric", lambda x, a: np.sign(x), "(({x} > 0) - ({x} < 0))",
             "(({x} > 0) - ({x} < 0))", {}),
    "Exp": ("float", lambda x, a: np.exp(x), "exp{f}({x})", None, {}),
    "Log": ("float", lambda x, a: np.log(x), "log{f}({x})", None, {}),
    "Sqrt": ("float", lambda x, a: np.sqrt(x), "sqrt{f}({x})", None, {}),
    "Sin": ("float", lambda x, a: np.sin(x), "sin{f}({x})", None, {}),
    "Cos": ("float", lambda x, a: np.cos(x), "cos{f}({x})", None, {}),
    "Tan": ("float", lambda x, a: np.tan(x), "tan{f}({x})", None, {}),
    "Asin": ("float", lambda x, a: np.arcsin(x), "asin{f}({x})", None, {}),
    "Acos": ("float", lambda x, a: np.arccos(x), "acos{f}({x})", None, {}),
    "Atan": ("float", lambda x, a: np.arctan(x), "atan{f}({x})", None, {}),
    "Sinh": ("float", lambda x, a: np.sinh(x), "sinh{f}({x})", None, {}),
    "Cosh": ("float", lambda x, a: np.cosh(x), "cosh{f}({x})", None, {}),
    "Asinh": ("float", lambda x, a: np.arcsinh(x), "asinh{f}({x})", None, {}),
    "Acosh": ("float", lambda x, a: np.arccosh(x), "acosh{f}({x})", None, {}),
    "Atanh": ("float", lambda x, a: np.arctanh(x), "atanh{f}({x})", None, {}),
    "Erf": ("float", lambda x, a: _erf(x), "erf{f}({x})", None, {}),
    "Floor": ("float", lambda x, a: np.floor(x), "floor{f}({x})", None, {}),
    "Ceil": ("float", lambda x, a: np.ceil(x), "ceil{f}({x})", None, {}),
    "Round": ("float", lambda x, a: _round_even(x), "rint{f}({x})", None, {}),
    "Reciprocal": ("float", lambda x, a: 1 / x, "1 / {x}", None, {}),
    "Sigmoid": ("float", lambda x, a: (1 / (1 + np.exp(-x.astype(np.float64)))).astype(x.dtype),
                "(1 / (1 + exp{f}(-{x})))", None, {}),
    "Tanh": ("float", lambda x, a: np.tanh(x), "tanh{f}({x})", None, {}),
    "Softplus": ("float", lambda x, a: _softplus(x), "log{f}(exp{f}({x}) + 1)", None, {}),
    "Softsign": ("float", lambda x, a: x / (1 + np.abs(x)), "({x} / (1 + fabs{f}({x})))", None, {}),
    "HardSigmoid": ("float", _hardsigmoid,
                    "EDGEC_MAX(0, EDGEC_MIN(1, {alpha} * {x} + {beta}))", None,
                    {"alpha": 0.2, "beta": 0.5}),
    "HardSwish": ("float", lambda x, a: x * np.clip(x / x.dtype.type(6) + x.dtype.type(0.5), 0, 1),
                  "({x} * EDGEC_MAX(0, EDGEC_MIN(1, {x} / 6 + {half})))", None, {}),
    "LeakyRelu": ("float", lambda x, a: np.where(x < 0, x * x.dtype.type(a["alpha"]), x),
                  "({x} < 0 ? {x} * {alpha} : {x})", None, {"alpha": 0.01}),
    "Elu": ("float", lambda x, a: np.where(x < 0, x.dtype.type(a["alpha"]) * (np.exp(x) - 1), x),
            "({x} < 0 ? {alpha} * (exp{f}({x}) - 1) : {x})", None, {"alpha": 1.0}),
    "Celu": ("float", lambda x, a: (np.maximum(0, x) + np.minimum(
        0, a["alpha"] * (np.exp(x.astype(np.float64) / a["alpha"]) - 1))).astype(x.dtype),
        "(EDGEC_MAX(0, {x}) + EDGEC_MIN(0, {alpha} * (exp{f}({x} / {alpha}) - 1)))", None,
        {"alpha": 1.0}),
    "Selu": ("float", lambda x, a: (a["gamma"] * np.where(
        x <= 0, a["alpha"] * np.exp(x.astype(np.float64)) - a["alpha"], x)).astype(x.dtype),
        "({gamma} * ({x} <= 0 ? {alpha} * exp{f}({x}) - {alpha} : {x}))", None,
        {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}),
    "ThresholdedRelu": ("float", lambda x, a: np.where(x > a["alpha"], x, 0).astype(x.dtype),
                        "({x} > {alpha} ? {x} : 0)", None, {"alpha": 1.0}),
    "Mish": ("float", lambda x, a: (x * np.tanh(_softplus(x.astype(np.float64)))).astype(x.dtype),
             "({x} * tanh{f}(log{f}(1 + exp{f}({x}))))", None, {}),
    "Gelu": ("float", _gelu, None, None, {"approximate": "none"}),
    "Not": ("bool", lambda x, a: np.logical_not(x), None, "(!{x})", {}),
    "BitwiseNot": ("int", lambda x, a: np.invert(x), None, "~{x}", {}),
    "IsNaN": ("float", lambda x, a: np.isnan(x), "({x} != {x})", None, {}),
    "IsInf": ("float", lambda x, a: (np.isposinf(x) & bool(a["detect_positive"])) |
              (np.isneginf(x) & bool(a["detect_negative"])), None, None,
              {"detect_positive": 1, "detect_negative": 1}),
    "Clip": ("numeric", lambda x, a: _clip(x, a), None, None, {"min": None, "max": None}),
    "Cast": ("any", None, None, None, {"to": "float32"}),
}

BOOL_OUT = ("Not", "IsNaN", "IsInf")


def _clip(x, a):
    y = x
    if a.get("min") is not None:
        y = np.where(y < a["min"], x.dtype.type(a["min"]), y)
    if a.get("max") is not None:
        y = np.where(y > a["max"], x.dtype.type(a["max"]), y)
    return y.astype(x.dtype)


def _cast_ref(x, to):
    npt = dtypes.np_dtype(to)
    if to == "bool":
        return x != 0
    if x.dtype.kind == "f" and np.dtype(npt).kind in "iu":
        with np.errstate(invalid="ignore"):
            return np.trunc(x).astype(npt)
    return x.astype(npt)


class Unary(Op):
    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if self.name == "Cast":
            return [OutSpec(x.shape, n.attrs["to"])]
        kinds = UNARY[self.name][0]
        if kinds == "float" and not dtypes.is_float(x.dtype):
            # a type edgec has no kernel of: an unsupported variant, listed with the others
            raise UnsupportedError([f"{self.name}[{x.dtype}]"])
        out = "bool" if self.name in BOOL_OUT else x.dtype
        return [OutSpec(x.shape, out, x.quant if self.name in ("Relu", "Clip") else None)]

    def _attrs(self, n):
        a = dict(UNARY[self.name][4])
        a.update(n.attrs)
        return a

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.quant is not None and x.dtype in ("int8", "uint8", "int16") and self.name != "Cast":
            return f"{self.name}[quantized {x.dtype}]"
        if self.name == "Cast":
            return None
        kinds, _, fexpr, iexpr, _ = UNARY[self.name]
        if self.name in ("Gelu", "IsInf", "Clip"):
            return None
        if dtypes.is_float(x.dtype) and fexpr is None:
            return f"{self.name}[{x.dtype}]"
        if not dtypes.is_float(x.dtype) and iexpr is None:
            return f"{self.name}[{x.dtype}]"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        if self.name == "Cast":
            return [_cast_ref(x, n.attrs["to"])]
        with np.errstate(all="ignore"):
            return [np.asarray(UNARY[self.name][1](x, self._attrs(n)))]

    def _expr(self, k, x: str) -> str:
        n = k.node
        dt = k.tin(0).dtype
        if self.name == "Cast":
            to = n.attrs["to"]
            if to == "bool":
                return f"(uint8_t)({x} != 0)"
            if dtypes.is_float(dt) and not dtypes.is_float(to):
                # trunc toward zero, NaN -> 0 would be UB in C: guard it
                return f"({x} != {x} ? 0 : ({dtypes.c_type(to)}){x})"
            return f"({dtypes.c_type(to)}){x}"
        a = self._attrs(n)
        lit = c_float if dt == "float32" else c_double
        if self.name == "Clip":
            e = x
            if a.get("min") is not None:
                e = f"({e} < {_lit(a['min'], dt)} ? {_lit(a['min'], dt)} : {e})"
            if a.get("max") is not None:
                e = f"({e} > {_lit(a['max'], dt)} ? {_lit(a['max'], dt)} : {e})"
            return e
        if self.name == "IsInf":
            parts = []
            if a["detect_positive"]:
                parts.append(f"({x} == INFINITY)")
            if a["detect_negative"]:
                parts.append(f"({x} == -INFINITY)")
            return "(" + (" || ".join(parts) or "0") + ")"
        if self.name == "Gelu":
            f = "f" if dt == "float32" else ""
            if a.get("approximate", "none") == "tanh":
                return (f"({lit(0.5)} * {x} * (1 + tanh{f}({lit(math.sqrt(2 / math.pi))} * "
                        f"({x} + {lit(0.044715)} * {x} * {x} * {x}))))")
            return f"({lit(0.5)} * {x} * (1 + erf{f}({x} * {lit(1 / math.sqrt(2))})))"
        kinds, _, fexpr, iexpr, _ = UNARY[self.name]
        tpl = fexpr if dtypes.is_float(dt) else iexpr
        if not dtypes.is_float(dt) and dt.startswith("uint"):
            tpl = {"Relu": "{x}", "Abs": "{x}", "Sign": "({x} > 0)"}.get(self.name, tpl)
        vals = {key: lit(v) for key, v in a.items() if isinstance(v, (int, float))}
        return tpl.format(x=x, f="f" if dt == "float32" else "", half=lit(0.5), **vals)

    def emit(self, k):
        n = k.node
        out = k.tout()
        e = self._expr(k, f"{k.x(0)}[i]")
        if out.dtype == "bool" and self.name != "Cast":
            e = f"(uint8_t)({e})"
        elif self.name != "Cast":
            e = f"({dtypes.c_type(out.dtype)})({e})"
        return (f"  for (int i = 0; i < {out.size}; ++i) {{\n"
                f"    y0[i] = {e};\n  }}\n")


def _lit(v, dt):
    from ..ir.cgen import c_literal
    if dtypes.is_float(dt):
        return c_literal(float(v), dt)
    return c_literal(int(v), dt)


# Unary ops a Transpose of the input moves past (passes.layout), an Op trait
TRANSPOSE_COMMUTES = ("Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "Abs", "Neg",
                      "Exp", "Sqrt")

for _name in UNARY:
    register(type(_name, (Unary,), {
        "name": _name, "transpose_commutes": "unary" if _name in TRANSPOSE_COMMUTES else None}))


# --- ONNX importers --------------------------------------------------------------

# enum attributes of the ONNX operators above
_CHOICES = {("Gelu", "approximate"): ("none", "tanh")}


def _simple(op):
    def imp(ctx, node):
        attrs = {}
        for key in UNARY[op][4]:
            if ctx.has_attr(node, key):
                attrs[key] = ctx.attr(node, key, choices=_CHOICES.get((op, key)))
        ctx.add(op, [ctx.inp(node, 0)], [ctx.out(node)], attrs, node.name)
    return imp


for _op in UNARY:
    if _op not in ("Clip", "Cast"):
        onnx_op(_op)(_simple(_op))


@onnx_op("Clip")
def _onnx_clip(ctx, node):
    x = ctx.inp(node, 0)
    if ctx.opset < 11:
        lo = ctx.attr(node, "min", -3.4028234663852886e38)
        hi = ctx.attr(node, "max", 3.4028234663852886e38)
    else:
        names = [ctx.inp(node, 1), ctx.inp(node, 2)]
        if any(nm and not ctx.t(nm).is_const for nm in names):
            # computed bounds: max(x, min), then min(., max), elementwise
            out = ctx.out(node)
            cur = x
            for j, (nm, op) in enumerate(zip(names, ("Max", "Min"))):
                if not nm:
                    continue
                last = j == 1 or not names[1]
                y = out if last else ctx.tmp(out + "_lo")
                ctx.add(op, [cur, nm], [y], {}, node.name)
                cur = y
            return
        lo = ctx.const_input(node, 1, "min")
        hi = ctx.const_input(node, 2, "max")
        lo = None if lo is None else lo.reshape(-1)[0].item()
        hi = None if hi is None else hi.reshape(-1)[0].item()
    ctx.add("Clip", [x], [ctx.out(node)], {"min": lo, "max": hi}, node.name)


@onnx_op("Cast")
def _onnx_cast(ctx, node):
    from ..ir import dtypes as _dt
    from onnx import helper
    to = ctx.attr(node, "to")
    try:
        dt = _dt.from_numpy(helper.tensor_dtype_to_np_dtype(int(to)))
    except Exception:  # noqa: BLE001
        from ..ir.errors import UnsupportedError
        raise UnsupportedError([f"Cast to element type {to}"]) from None
    ctx.add("Cast", [ctx.inp(node, 0)], [ctx.out(node)], {"to": dt}, node.name)


@onnx_op("CastLike")
def _onnx_castlike(ctx, node):
    ctx.add("Cast", [ctx.inp(node, 0)], [ctx.out(node)], {"to": ctx.t(ctx.inp(node, 1)).dtype},
            node.name)


# --- TFLite importers -------------------------------------------------------------

def _tfl(op, attrs=None):
    def imp(ctx, top):
        x = ctx.t(ctx.inputs(top)[0]) if ctx.inputs(top) else None
        if x is not None and UNARY[op][0] == "float" and not dtypes.is_float(x.dtype):
            raise UnsupportedError([f"{ctx.code}[{x.dtype}]"])   # e.g. EXP[int8]
        ctx.add(op, ctx.inputs(top)[:1], ctx.outputs(top), dict(attrs or {}))
    return imp


tflite_op("RELU")(_tfl("Relu"))
tflite_op("RELU6")(_tfl("Clip", {"min": 0.0, "max": 6.0}))
tflite_op("RELU_N1_TO_1")(_tfl("Clip", {"min": -1.0, "max": 1.0}))
tflite_op("LOGISTIC")(_tfl("Sigmoid"))
tflite_op("TANH")(_tfl("Tanh"))
tflite_op("EXP")(_tfl("Exp"))
tflite_op("ABS")(_tfl("Abs"))
tflite_op("NEG")(_tfl("Neg"))
tflite_op("SQRT")(_tfl("Sqrt"))
tflite_op("HARD_SWISH")(_tfl("HardSwish"))


@tflite_op("LEAKY_RELU")
def _tfl_leaky_relu(ctx, op):
    """Float: LeakyRelu; int8: QLeakyRelu (TFLite Micro's two multipliers, ops/qleaky.py)."""
    o = ctx.options(op, "LeakyReluOptions")
    alpha = float(o.Alpha()) if o is not None else 0.2
    x = ctx.t(ctx.inputs(op)[0])
    if x.dtype == "int8" and x.quant is not None:
        ctx.add("QLeakyRelu", ctx.inputs(op)[:1], ctx.outputs(op), {"alpha": alpha})
        return
    tfl_float_only(ctx, op, "LEAKY_RELU")
    ctx.add("LeakyRelu", ctx.inputs(op)[:1], ctx.outputs(op), {"alpha": alpha})


@tflite_op("ELU")
def _tfl_elu(ctx, op):
    tfl_float_only(ctx, op, "ELU")
    ctx.add("Elu", ctx.inputs(op)[:1], ctx.outputs(op), {"alpha": 1.0})


@tflite_op("GELU")
def _tfl_gelu(ctx, op):
    tfl_float_only(ctx, op, "GELU")
    o = ctx.options(op, "GeluOptions")
    approx = bool(o.Approximate()) if o is not None else False
    ctx.add("Gelu", ctx.inputs(op)[:1], ctx.outputs(op), {"approximate": "tanh" if approx else "none"})


@tflite_op("RSQRT")
def _tfl_rsqrt(ctx, op):
    tfl_float_only(ctx, op, "RSQRT")
    x, out = ctx.inputs(op)[0], ctx.outputs(op)[0]
    r = ctx.tmp(out + "_sqrt")
    ctx.add("Sqrt", [x], [r])
    ctx.add("Reciprocal", [r], [out])


@tflite_op("CAST")
def _tfl_cast(ctx, op):
    out = ctx.outputs(op)[0]
    ctx.add("Cast", ctx.inputs(op)[:1], [out], {"to": ctx.t(out).dtype})
