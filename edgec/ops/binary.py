"""Elementwise binary operators with numpy broadcasting.

Float and integer tensors compute the plain operation.  int8 quantized ``Add``,
``Sub`` and ``Mul`` follow TFLite Micro's ADD/SUB/MUL bit for bit (inputs
rescaled with a left shift of 20 and per-input multipliers, then requantized).
Variadic ONNX ``Sum``, ``Mean``, ``Max`` and ``Min`` become chains of binary nodes.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes, qmath
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, dsp, onnx_op, register, shared, tflite_op
from ._requant import requant_shift, requant_table, wrap32
from ._util import act_range_float, act_range_quant, apply_act_float, broadcast_shape, broadcast_strides, c_act_float, coalesce, loop_nest, quant_of, tfl_activation, tfl_float_only


def _trunc_div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(b == 0, 0, np.trunc(np.true_divide(a, np.where(b == 0, 1, b))))
        return q.astype(a.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def _mod(a, b, fmod):
    """ONNX Mod: fmod=1 is C's fmod / truncated remainder, fmod=0 takes the sign
    of the divisor (numpy's mod, also for floats).  Integer x % 0 gives 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if a.dtype.kind == "f":
            return np.fmod(a, b) if fmod else np.mod(a, b)
        safe = np.where(b == 0, 1, b)
        r = np.fmod(a, safe) if fmod else np.mod(a, safe)
        return np.where(b == 0, 0, r).astype(a.dtype)


def _bitshift(a, b, left):
    """ONNX BitShift: a shift by a negative amount or by the bit width or more
    gives 0 (or -1 for a right shift of a negative signed value)."""
    a, b = np.broadcast_arrays(a, b)
    bits = a.dtype.itemsize * 8
    bad = (b < 0) | (b >= bits)
    bs = np.where(bad, 0, b).astype(np.uint64)
    if left:
        u = a.view(np.dtype(f"u{a.dtype.itemsize}"))
        y = np.left_shift(u.astype(np.uint64), bs).astype(u.dtype).view(a.dtype)
        return np.where(bad, 0, y).astype(a.dtype)
    y = np.right_shift(a, bs.astype(a.dtype) if a.dtype.kind == "i" else bs.astype(a.dtype))
    fill = np.where(a < 0, -1, 0) if a.dtype.kind == "i" else 0
    return np.where(bad, fill, y).astype(a.dtype)


def _wrap(fn):
    """Integer add/sub/mul wrap around (two's complement), as numpy does."""
    def f(a, b, at):
        with np.errstate(over="ignore"):
            return fn(a, b)
    return f


# name -> (numpy fn(a, b, attrs), C expression template for floats, for ints, output dtype rule)
# "{a}" and "{b}" are the operands; "{T}" the C type.  Output "same" or "bool".
BINARY = {
    "Add": (_wrap(lambda a, b: a + b), "{a} + {b}", "{a} + {b}", "same"),
    "Sub": (_wrap(lambda a, b: a - b), "{a} - {b}", "{a} - {b}", "same"),
    "Mul": (_wrap(lambda a, b: a * b), "{a} * {b}", "{a} * {b}", "same"),
    "Div": (lambda a, b, at: _trunc_div(a, b), "{a} / {b}", "({b} == 0 ? 0 : {a} / {b})", "same"),
    "Pow": (lambda a, b, at: _pow(a, b), "{powf}({a}, {b})", "({T})pow((double){a}, (double){b})",
            "same"),
    "Max": (lambda a, b, at: np.maximum(a, b), "EDGEC_FMAX({a}, {b})", "EDGEC_MAX({a}, {b})", "same"),
    "Min": (lambda a, b, at: np.minimum(a, b), "EDGEC_FMIN({a}, {b})", "EDGEC_MIN({a}, {b})", "same"),
    "Mod": (lambda a, b, at: _mod(a, b, at.get("fmod", 0)), "{fmod}({a}, {b})",
            "EDGEC_IMOD({a}, {b})", "same"),
    "PRelu": (lambda a, b, at: np.where(a < 0, a * b, a), "({a} < 0 ? {a} * {b} : {a})",
              "({a} < 0 ? {a} * {b} : {a})", "same"),
    "Equal": (lambda a, b, at: a == b, "{a} == {b}", "{a} == {b}", "bool"),
    "Less": (lambda a, b, at: a < b, "{a} < {b}", "{a} < {b}", "bool"),
    "Greater": (lambda a, b, at: a > b, "{a} > {b}", "{a} > {b}", "bool"),
    "LessOrEqual": (lambda a, b, at: a <= b, "{a} <= {b}", "{a} <= {b}", "bool"),
    "GreaterOrEqual": (lambda a, b, at: a >= b, "{a} >= {b}", "{a} >= {b}", "bool"),
    "And": (lambda a, b, at: np.logical_and(a, b), None, "({a} && {b})", "bool"),
    "Or": (lambda a, b, at: np.logical_or(a, b), None, "({a} || {b})", "bool"),
    "Xor": (lambda a, b, at: np.logical_xor(a, b), None, "(!{a} != !{b})", "bool"),
    "BitwiseAnd": (lambda a, b, at: a & b, None, "{a} & {b}", "same"),
    "BitwiseOr": (lambda a, b, at: a | b, None, "{a} | {b}", "same"),
    "BitwiseXor": (lambda a, b, at: a ^ b, None, "{a} ^ {b}", "same"),
    "BitShiftLeft": (lambda a, b, at: _bitshift(a, b, True), None, "", "same"),
    "BitShiftRight": (lambda a, b, at: _bitshift(a, b, False), None, "", "same"),
}

QUANTIZED = ("Add", "Sub", "Mul")


def _pow(a, b):
    with np.errstate(all="ignore"):
        y = np.power(a.astype(np.float64), b.astype(np.float64))
        if a.dtype.kind in "iu":
            y = np.trunc(np.nan_to_num(y))
        return y.astype(a.dtype)


_UNSIGNED = {"int8": "uint8_t", "int16": "uint16_t", "int32": "uint32_t", "int64": "uint64_t"}


def _int_expr(op: str, dt: str, a: str, b: str, attrs) -> str | None:
    """C for integer operations whose plain C form is undefined somewhere
    (signed overflow, INT_MIN / -1, shifts out of range)."""
    ct = dtypes.c_type(dt)
    signed = dt in _UNSIGNED
    bits = dtypes.itemsize(dt) * 8
    wide = dtypes.itemsize(dt) >= 4  # no promotion to int: signed overflow is UB
    if op in ("Add", "Sub", "Mul") and signed and wide:
        sym = {"Add": "+", "Sub": "-", "Mul": "*"}[op]
        ut = _UNSIGNED[dt]
        return f"({ct})(({ut}){a} {sym} ({ut}){b})"
    if op == "Div" and signed:
        ut = _UNSIGNED[dt]
        return f"({b} == 0 ? 0 : ({b} == -1 ? ({ct})(0u - ({ut}){a}) : {a} / {b}))"
    if op == "Mod":
        if attrs.get("fmod", 0):
            if signed:
                return f"(({b} == 0 || {b} == -1) ? 0 : {a} % {b})"
            return f"({b} == 0 ? 0 : {a} % {b})"
        if signed:
            return f"(({b} == 0 || {b} == -1) ? 0 : EDGEC_IMOD({a}, {b}))"
        return f"({b} == 0 ? 0 : {a} % {b})"
    if op == "BitShiftLeft":
        if signed:
            ut = _UNSIGNED[dt]
            return f"(({b} < 0 || {b} >= {bits}) ? 0 : ({ct})({ut})(({ut}){a} << {b}))"
        return f"({b} >= {bits} ? 0 : ({ct})({a} << {b}))"
    if op == "BitShiftRight":
        if signed:
            return (f"(({b} < 0 || {b} >= {bits}) ? ({a} < 0 ? -1 : 0) : "
                    f"({a} < 0 ? ~(~{a} >> {b}) : {a} >> {b}))")
        return f"({b} >= {bits} ? 0 : ({ct})({a} >> {b}))"
    return None


def _is_q(g, n):
    return g.tensors[n.inputs[0]].dtype in ("int8", "int16") and \
        g.tensors[n.inputs[0]].quant is not None and g.tensors[n.outputs[0]].quant is not None


def add_params(g, n):
    """TFLite Micro's ADD/SUB int8 prepare."""
    s1, z1 = quant_of(g, n.inputs[0]).scalar()
    s2, z2 = quant_of(g, n.inputs[1]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = qmath.quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = qmath.quantize_multiplier(float(s2) / twice_max)
    mo, sho = qmath.quantize_multiplier(twice_max / ((1 << left_shift) * float(so)))
    return dict(left_shift=left_shift, in1_offset=-z1, in2_offset=-z2, out_offset=zo,
                m1=m1, s1=sh1, m2=m2, s2=sh2, mo=mo, so=sho)


def add_tables(g, n):
    """Constants of ``edgec_add_s8`` (:func:`.dsp.add`, and an ADD fused into a
    Conv) for an int8 Add/Sub node: the per-input rescaling of TFLite Micro's ADD
    as two 256-entry tables, then the output requantization ({M, H, S} and fast=1
    when :func:`._requant.requant_table` applies, else {M, shift, 0} for
    edgec_mbqm): (table a, table b, requantization, fast, zero point, lo, hi)."""
    p = add_params(g, n)
    v = np.arange(-128, 128, dtype=np.int64)
    ta = qmath.mul_by_quantized_multiplier((v + p["in1_offset"]) << p["left_shift"], p["m1"], p["s1"])
    tb = qmath.mul_by_quantized_multiplier((v + p["in2_offset"]) << p["left_shift"], p["m2"], p["s2"])
    if n.op == "Sub":
        tb = -tb
    so, zo = quant_of(g, n.outputs[0]).scalar()
    lo, hi = act_range_quant(n.attrs.get("act"), so, zo)
    rt = requant_table([p["mo"]], [p["so"]], zo)
    if rt is not None:
        M, H = (int(v) for v in rt[0][0])
        rq, zp = [M, H, requant_shift(H)], rt[1]
        fast = 1
    else:
        rq, zp, fast = np.array([p["mo"], p["so"], 0], np.int64), zo, 0
    return wrap32(ta), wrap32(tb), np.asarray(rq, np.int64), fast, zp, lo, hi


def mul_params(g, n):
    s1, z1 = quant_of(g, n.inputs[0]).scalar()
    s2, z2 = quant_of(g, n.inputs[1]).scalar()
    so, zo = quant_of(g, n.outputs[0]).scalar()
    m, s = qmath.quantize_multiplier(float(s1) * float(s2) / float(so))
    return dict(in1_offset=-z1, in2_offset=-z2, out_offset=zo, mo=m, so=s)


class Binary(Op):
    def infer(self, g, n):
        a, b = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if a.dtype != b.dtype and not (self.name == "Pow" and b.dtype != "bool"):
            raise EdgecError(f"{n.op}: operand types differ ({a.dtype}, {b.dtype})")
        shape = broadcast_shape(a.shape, b.shape, where=n.op)
        kind = BINARY[self.name][3]
        return [OutSpec(shape, "bool" if kind == "bool" else a.dtype)]

    def check(self, g, n):
        a = g.tensors[n.inputs[0]]
        fexpr, iexpr = BINARY[self.name][1], BINARY[self.name][2]
        if _is_q(g, n):
            if self.name not in QUANTIZED or a.dtype != "int8":
                return f"{self.name}[quantized {a.dtype}]"
            for i in n.inputs[:2]:
                if g.tensors[i].quant.scale.size != 1:
                    return f"{self.name}[int8] with per-axis quantization"
            return None
        if dtypes.is_float(a.dtype) and fexpr is None:
            return f"{self.name}[{a.dtype}]"
        if a.dtype == "bool" and self.name not in ("And", "Or", "Xor", "Equal"):
            return f"{self.name}[bool]"
        if not dtypes.is_float(a.dtype) and iexpr is None:
            return f"{self.name}[{a.dtype}]"
        return None

    def reference(self, g, n, xs):
        a, b = xs[0], xs[1]
        if _is_q(g, n):
            return [self._ref_quant(g, n, a, b)]
        fn = BINARY[self.name][0]
        with np.errstate(all="ignore"):
            y = fn(a, b, n.attrs)
        if n.attrs.get("act") is not None:
            y = apply_act_float(y, act_range_float(n.attrs["act"]))
        return [np.asarray(y)]

    def _ref_quant(self, g, n, a, b):
        so, zo = quant_of(g, n.outputs[0]).scalar()
        lo, hi = act_range_quant(n.attrs.get("act"), so, zo)
        a = a.astype(np.int64)
        b = b.astype(np.int64)
        if self.name == "Mul":
            p = mul_params(g, n)
            acc = qmath.mul_by_quantized_multiplier(
                qmath.wrap32((a + p["in1_offset"]) * (b + p["in2_offset"])), p["mo"], p["so"])
        else:
            p = add_params(g, n)
            s1 = qmath.mul_by_quantized_multiplier((a + p["in1_offset"]) << p["left_shift"],
                                                   p["m1"], p["s1"])
            s2 = qmath.mul_by_quantized_multiplier((b + p["in2_offset"]) << p["left_shift"],
                                                   p["m2"], p["s2"])
            raw = s1 + s2 if self.name == "Add" else s1 - s2
            acc = qmath.mul_by_quantized_multiplier(qmath.wrap32(raw), p["mo"], p["so"])
        return np.clip(acc + p["out_offset"], lo, hi).astype(np.int8)

    def emit(self, k):
        g, n = k.g, k.node
        out = k.tout()
        sa = broadcast_strides(k.tin(0).shape, out.shape)
        sb = broadcast_strides(k.tin(1).shape, out.shape)
        so = broadcast_strides(out.shape, out.shape)
        shape, (sa, sb, so) = coalesce(out.shape, [sa, sb, so])
        a = f"{k.x(0)}[{{ia}}]"
        b = f"{k.x(1)}[{{ib}}]"
        if _is_q(g, n):
            if self.name in ("Add", "Sub") and dsp.add_applies(k):
                return dsp.add(k, add_tables(g, n))
            so_, zo = quant_of(g, n.outputs[0]).scalar()
            lo, hi = act_range_quant(n.attrs.get("act"), so_, zo)
            if self.name == "Mul":
                p = mul_params(g, n)
                body = (f"int32_t acc = edgec_mbqm((int32_t)((uint32_t)((int32_t){a} + {p['in1_offset']}) * "
                        f"(uint32_t)((int32_t){b} + {p['in2_offset']})), {p['mo']}, {p['so']});\n")
            else:
                p = add_params(g, n)
                if k.optimize == "size":
                    body = shared.add(k, p, lo, hi)
                    if body is not None:
                        return body
                op = "+" if self.name == "Add" else "-"
                body = (f"const int32_t s1 = edgec_mbqm(((int32_t){a} + {p['in1_offset']}) * {1 << p['left_shift']}, "
                        f"{p['m1']}, {p['s1']});\n"
                        f"const int32_t s2 = edgec_mbqm(((int32_t){b} + {p['in2_offset']}) * {1 << p['left_shift']}, "
                        f"{p['m2']}, {p['s2']});\n"
                        f"int32_t acc = edgec_mbqm((int32_t)((uint32_t)s1 {op} (uint32_t)s2), {p['mo']}, {p['so']});\n")
            body += (f"acc += {p['out_offset']};\n"
                     f"acc = acc < {lo} ? {lo} : acc;\nacc = acc > {hi} ? {hi} : acc;\n"
                     f"y0[{{io}}] = (int8_t)acc;")
            return "  {\n" + loop_nest(shape, {"ia": sa, "ib": sb, "io": so}, body, "    ") + "\n  }\n"
        dt = k.tin(0).dtype
        ct = dtypes.c_type(dt)
        fexpr, iexpr = BINARY[self.name][1], BINARY[self.name][2]
        tpl = fexpr if dtypes.is_float(dt) else iexpr
        if dt.startswith("uint") or dt == "bool":
            tpl = {"PRelu": "{a}"}.get(self.name, tpl)
        special = None if dtypes.is_float(dt) else _int_expr(self.name, dt, a, b, n.attrs)
        if special is not None:
            expr = special
        elif self.name == "Pow" and (k.tin(1).dtype != dt or dt != "float32"):
            expr = f"({ct})pow((double){a}, (double){b})"
        elif self.name == "Mod" and dtypes.is_float(dt) and not n.attrs.get("fmod", 0):
            k.need("fmod_floor")
            expr = f"edgec_fmod_floor{'f' if dt == 'float32' else ''}({a}, {b})"
        else:
            expr = tpl.format(a=a, b=b, T=ct, bits=dtypes.itemsize(dt) * 8,
                              powf="powf" if dt == "float32" else "pow",
                              fmod="fmodf" if dt == "float32" else "fmod")
        if n.attrs.get("act") is not None:
            expr = c_act_float(f"({expr})", act_range_float(n.attrs["act"]), ct)
        cast = "(uint8_t)" if out.dtype == "bool" else f"({dtypes.c_type(out.dtype)})"
        body = f"y0[{{io}}] = {cast}({expr});"
        return "  {\n" + loop_nest(shape, {"ia": sa, "ib": sb, "io": so}, body, "    ") + "\n  }\n"


# Op traits of the ops above (edgec.ops.Op): the passes read them from the registry
TRAITS = {
    "Add": dict(fuses_activation=True, transpose_commutes="binary", quantize="compute"),
    "Sub": dict(fuses_activation=True, transpose_commutes="binary", quantize="compute"),
    "Mul": dict(fuses_activation=True, transpose_commutes="binary", quantize="compute"),
    "Max": dict(transpose_commutes="binary"),
    "Min": dict(transpose_commutes="binary"),
    "Div": dict(transpose_commutes="binary"),
}

for _name in BINARY:
    register(type(_name, (Binary,), {"name": _name, **TRAITS.get(_name, {})}))


# --- ONNX importers ------------------------------------------------------------

def _simple(op):
    def imp(ctx, node):
        ctx.add(op, [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)], {}, node.name)
    return imp


for _op in ("Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Equal", "Less", "Greater",
            "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "BitwiseAnd",
            "BitwiseOr", "BitwiseXor"):
    onnx_op(_op)(_simple(_op))


@onnx_op("Mod")
def _onnx_mod(ctx, node):
    ctx.add("Mod", [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)],
            {"fmod": int(ctx.attr(node, "fmod", 0))}, node.name)


@onnx_op("BitShift")
def _onnx_bitshift(ctx, node):
    d = ctx.attr(node, "direction", "")
    op = {"LEFT": "BitShiftLeft", "RIGHT": "BitShiftRight"}.get(d)
    if op is None:
        raise EdgecError(f"BitShift direction {d!r}")
    ctx.add(op, [ctx.inp(node, 0), ctx.inp(node, 1)], [ctx.out(node)], {}, node.name)


def _variadic(op):
    def imp(ctx, node):
        ins = [ctx.inp(node, i) for i in range(ctx.n_inputs(node))]
        out = ctx.out(node)
        if len(ins) == 1:
            ctx.add("Reshape", [ins[0]], [out], {"shape": list(ctx.t(ins[0]).shape)}, node.name)
            return
        cur = ins[0]
        for j, x in enumerate(ins[1:]):
            last = j == len(ins) - 2
            y = out if last and op != "Mean" else ctx.tmp(f"{out}_{j}")
            ctx.add("Add" if op in ("Sum", "Mean") else op, [cur, x], [y], {}, node.name)
            cur = y
        if op == "Mean":
            dt = ctx.t(cur).dtype
            c = ctx.g.add_const(np.array(len(ins), dtype=dtypes.np_dtype(dt)), "count")
            ctx.add("Div", [cur, c], [out], {}, node.name)
    return imp


onnx_op("Sum")(_variadic("Sum"))
onnx_op("Mean")(_variadic("Mean"))
onnx_op("Max")(_variadic("Max"))
onnx_op("Min")(_variadic("Min"))


# --- TFLite importers ------------------------------------------------------------

def _tfl_binary(op, opts):
    def imp(ctx, top):
        ins = ctx.inputs(top)
        act = None
        if opts:
            o = ctx.options(top, opts)
            if o is not None:
                act = tfl_activation(o.FusedActivationFunction())
        ctx.add(op, ins[:2], ctx.outputs(top), {"act": act})
    return imp


tflite_op("ADD")(_tfl_binary("Add", "AddOptions"))
tflite_op("SUB")(_tfl_binary("Sub", "SubOptions"))
tflite_op("MUL")(_tfl_binary("Mul", "MulOptions"))
tflite_op("DIV")(_tfl_binary("Div", "DivOptions"))
tflite_op("MAXIMUM")(_tfl_binary("Max", None))
tflite_op("MINIMUM")(_tfl_binary("Min", None))

tflite_op("LESS")(_tfl_binary("Less", None))
tflite_op("LESS_EQUAL")(_tfl_binary("LessOrEqual", None))
tflite_op("GREATER")(_tfl_binary("Greater", None))
tflite_op("GREATER_EQUAL")(_tfl_binary("GreaterOrEqual", None))
tflite_op("EQUAL")(_tfl_binary("Equal", None))
tflite_op("POW")(_tfl_binary("Pow", None))


@tflite_op("PRELU")
def _tfl_prelu(ctx, op):
    tfl_float_only(ctx, op, "PRELU")
    ctx.add("PRelu", ctx.inputs(op)[:2], ctx.outputs(op), {})


@tflite_op("SQUARED_DIFFERENCE")
def _tfl_squared_difference(ctx, op):
    tfl_float_only(ctx, op, "SQUARED_DIFFERENCE")
    a, b = ctx.inputs(op)[:2]
    out = ctx.outputs(op)[0]
    d = ctx.tmp(out + "_diff")
    ctx.add("Sub", [a, b], [d], {"act": None})
    ctx.add("Mul", [d, d], [out], {"act": None})
