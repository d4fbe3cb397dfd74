"""Reductions over a set of axes (ReduceSum, ReduceMean, ReduceMax, ReduceMin,
ReduceProd, ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare)
and ArgMax / ArgMin along one axis.

IR attributes: ``axes`` (sorted, non-negative; the axes reduced) and
``keepdims``; ArgMax/ArgMin have ``axis``, ``keepdims`` and
``select_last_index`` and give int64.  Floats accumulate in their own type;
integers in 64-bit unsigned arithmetic (wrapping like numpy), integer means and
norms are truncated toward zero.  NaN propagates through max and min.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_literal
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import coalesce, loop_nest, norm_axis, prod, strides

KINDS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
         "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


def reduction_loops(shape, axes):
    """Loop geometry of a reduction over ``axes`` of a row-major ``shape``: the kept
    dimensions (``oshape``, input strides ``ox``, output strides ``oy``) and the reduced
    ones (``ishape``, input strides ``ix``), adjacent contiguous dimensions merged."""
    sx = strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    oshape = [shape[d] for d in kept] or [1]
    ostr = [sx[d] for d in kept] or [0]
    oshape, (ox, oy) = coalesce(oshape, [ostr, strides(oshape)])
    ishape = [shape[d] for d in axes] or [1]
    istr = [sx[d] for d in axes] or [0]
    ishape, (ix,) = coalesce(ishape, [istr])
    return oshape, ox, oy, ishape, ix


def out_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_np(kind: str, x: np.ndarray, axes: tuple) -> np.ndarray:
    """The reduction in numpy, keepdims=True, in the result dtype of x."""
    dt = x.dtype
    isf = dt.kind == "f"
    if x.size == 0:
        # the reduction of an empty set is the operation's identity
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        if dt == np.bool_:
            ident = kind == "ReduceMin"
        elif kind in ("ReduceMax", "ReduceMin"):
            lo, hi = (-np.inf, np.inf) if isf else (np.iinfo(dt).min, np.iinfo(dt).max)
            ident = lo if kind == "ReduceMax" else hi
        else:
            ident = {"ReduceProd": 1, "ReduceLogSum": -np.inf, "ReduceLogSumExp": -np.inf,
                     "ReduceMean": np.nan}.get(kind, 0)
        return np.full(shape, ident).astype(dt)
    with np.errstate(all="ignore"):
        if kind in ("ReduceMax", "ReduceMin"):
            if x.dtype == np.bool_:
                r = (np.any if kind == "ReduceMax" else np.all)(x, axis=axes, keepdims=True)
            else:
                r = (np.max if kind == "ReduceMax" else np.min)(x, axis=axes, keepdims=True)
            return r.astype(dt)
        if isf:
            xd = x.astype(np.float64)
        else:
            xd = x.astype(np.uint64 if dt.kind == "u" else np.int64)
        count = prod(x.shape[a] for a in axes)
        if kind == "ReduceSum":
            r = xd.sum(axis=axes, keepdims=True)
        elif kind == "ReduceSumSquare":
            r = (xd * xd).sum(axis=axes, keepdims=True)
        elif kind == "ReduceProd":
            r = xd.prod(axis=axes, keepdims=True)
        elif kind == "ReduceL1":
            r = np.abs(xd).sum(axis=axes, keepdims=True)
        elif kind == "ReduceMean":
            r = xd.sum(axis=axes, keepdims=True)
            r = r / count if isf else np.trunc(r.astype(np.float64) / count)
        elif kind == "ReduceL2":
            r = np.sqrt((xd * xd).sum(axis=axes, keepdims=True).astype(np.float64))
            r = r if isf else np.trunc(r)
        elif kind == "ReduceLogSum":
            r = np.log(xd.sum(axis=axes, keepdims=True).astype(np.float64))
        elif kind == "ReduceLogSumExp":
            xf = xd.astype(np.float64)
            m = xf.max(axis=axes, keepdims=True)
            mf = np.where(np.isfinite(m), m, 0)
            r = np.log(np.exp(xf - mf).sum(axis=axes, keepdims=True)) + mf
        else:
            raise EdgecError(kind)
        if not isf and kind in ("ReduceLogSum", "ReduceLogSumExp"):
            r = np.trunc(np.nan_to_num(r))
        if not isf and r.dtype.kind == "f":
            r = r.astype(np.int64)
        return r.astype(dt)


class Reduce(Op):
    def _axes(self, g, n):
        x = g.tensors[n.inputs[0]]
        return tuple(sorted({norm_axis(a, x.rank, n.op) for a in n.attrs["axes"]}))

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        axes = self._axes(g, n)
        if x.dtype == "bool" and self.name not in ("ReduceMax", "ReduceMin"):
            raise UnsupportedError([f"{self.name}[bool]"])
        return [OutSpec(out_shape(x.shape, axes, n.attrs.get("keepdims", 1)), x.dtype)]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.quant is not None and x.dtype in ("int8", "uint8", "int16"):
            # max and min commute with an affine map: fine when the output keeps its parameters
            if self.name not in ("ReduceMax", "ReduceMin") or g.tensors[n.outputs[0]].quant != x.quant:
                return f"{self.name}[quantized {x.dtype}]"
        if x.size == 0:
            return f"{self.name} of an empty tensor"
        return None

    def reference(self, g, n, xs):
        axes = self._axes(g, n)
        y = _reduce_np(self.name, xs[0], axes)
        return [y.reshape(out_shape(xs[0].shape, axes, n.attrs.get("keepdims", 1)))]

    def macs(self, g, n):
        return g.tensors[n.inputs[0]].size

    def emit(self, k):
        x = k.tin(0)
        axes = self._axes(k.g, k.node)
        kind = self.name
        dt = x.dtype
        ct = dtypes.c_type(dt)
        isf = dtypes.is_float(dt)
        f = "f" if dt == "float32" else ""
        oshape, ox, oy, ishape, ix = reduction_loops(x.shape, axes)
        count = prod(x.shape[a] for a in axes)
        v = "x0[{ix} + {jx}]" if k.x(0) == "x0" else f"{k.x(0)}[{{ix}} + {{jx}}]"
        if kind in ("ReduceMax", "ReduceMin"):
            acc_t = ct
            if dt == "bool":
                init = "0" if kind == "ReduceMax" else "1"
                step = f"acc = {'acc || v' if kind == 'ReduceMax' else 'acc && v'};"
            elif isf:
                init = "-INFINITY" if kind == "ReduceMax" else "INFINITY"
                m = "EDGEC_FMAX" if kind == "ReduceMax" else "EDGEC_FMIN"
                step = f"acc = {m}(v, acc);"
            else:
                lo, hi = dtypes.int_range(dt)
                init = c_literal(lo if kind == "ReduceMax" else hi, dt)
                step = f"acc = v {'>' if kind == 'ReduceMax' else '<'} acc ? v : acc;"
            final = "acc"
        else:
            if isf:
                acc_t = ct
                av = "v"
                absv = f"fabs{f}(v)"
            else:
                acc_t = "uint64_t"
                av = "(uint64_t)v"
                absv = "(uint64_t)(v < 0 ? -(int64_t)v : (int64_t)v)" if dt in dtypes.SIGNED_INT_TYPES \
                    else "(uint64_t)v"
            init = "1" if kind == "ReduceProd" else "0"
            step = {
                "ReduceSum": f"acc += {av};", "ReduceMean": f"acc += {av};",
                "ReduceLogSum": f"acc += {av};", "ReduceProd": f"acc *= {av};",
                "ReduceSumSquare": f"acc += {av} * {av};", "ReduceL2": f"acc += {av} * {av};",
                "ReduceL1": f"acc += {absv};",
                "ReduceLogSumExp": f"acc += exp{f}(v - mx);",
            }[kind]
            if isf:
                final = {"ReduceMean": f"acc / ({ct}){count}", "ReduceL2": f"sqrt{f}(acc)",
                         "ReduceLogSum": f"log{f}(acc)", "ReduceLogSumExp": f"log{f}(acc) + mx"
                         }.get(kind, "acc")
            else:
                signed = "(double)(int64_t)acc" if dt in dtypes.SIGNED_INT_TYPES else "(double)acc"
                final = {"ReduceMean": f"({ct})({signed} / {count}.0)",
                         "ReduceL2": f"({ct})sqrt({signed})",
                         "ReduceLogSum": f"({ct})log({signed})",
                         }.get(kind, f"({ct})acc")
        lines = [f"{acc_t} acc = {init};"]
        if kind == "ReduceLogSumExp":
            if not isf:
                raise UnsupportedError([f"ReduceLogSumExp[{dt}]"])
            lines = [f"{ct} mx = -INFINITY;", f"{acc_t} acc = 0;",
                     loop_nest(ishape, {"jx": ix}, f"const {ct} v = {v};\nmx = EDGEC_FMAX(v, mx);",
                               "", var="j"),
                     "if (mx == INFINITY || mx == -INFINITY || mx != mx) mx = 0;"]
        lines.append(loop_nest(ishape, {"jx": ix}, f"const {ct} v = {v};\n{step}", "", var="j"))
        lines.append(f"y0[{{oy}}] = {final};")
        body = "\n".join(lines)
        return "  {\n" + loop_nest(oshape, {"ix": ox, "oy": oy}, body, "    ") + "\n  }\n"


for _k in KINDS:
    register(type(_k, (Reduce,), {"name": _k}))


class ArgReduce(Op):
    def _axis(self, g, n):
        return norm_axis(n.attrs.get("axis", 0), g.tensors[n.inputs[0]].rank, n.op)

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        a = self._axis(g, n)
        return [OutSpec(out_shape(x.shape, (a,), n.attrs.get("keepdims", 1)), "int64")]

    def check(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype == "bool":
            return f"{self.name}[bool]"
        if x.size == 0:
            return f"{self.name} of an empty tensor"
        return None

    def reference(self, g, n, xs):
        x = xs[0]
        a = self._axis(g, n)
        fn = np.argmax if self.name == "ArgMax" else np.argmin
        if n.attrs.get("select_last_index", 0):
            r = x.shape[a] - 1 - fn(np.flip(x, a), axis=a)
        else:
            r = fn(x, axis=a)
        r = np.expand_dims(r, a) if n.attrs.get("keepdims", 1) else r
        return [r.astype(np.int64)]

    def emit(self, k):
        x = k.tin(0)
        a = self._axis(k.g, k.node)
        outer, d, inner = prod(x.shape[:a]), x.shape[a], prod(x.shape[a + 1:])
        cmp = ">" if self.name == "ArgMax" else "<"
        if k.node.attrs.get("select_last_index", 0):
            cmp += "="
        ct = dtypes.c_type(x.dtype)
        return (f"  for (int o = 0; o < {outer}; ++o) {{\n"
                f"    for (int i = 0; i < {inner}; ++i) {{\n"
                f"      const {ct}* xp = {k.x(0)} + o * {d * inner} + i;\n"
                f"      {ct} best = xp[0];\n"
                f"      int64_t arg = 0;\n"
                f"      for (int j = 1; j < {d}; ++j) {{\n"
                f"        if (xp[j * {inner}] {cmp} best) {{ best = xp[j * {inner}]; arg = j; }}\n"
                f"      }}\n"
                f"      y0[o * {inner} + i] = arg;\n"
                f"    }}\n  }}\n")


@register
class ArgMax(ArgReduce):
    name = "ArgMax"


@register
class ArgMin(ArgReduce):
    name = "ArgMin"


# --- ONNX ----------------------------------------------------------------------

def _onnx_reduce(op):
    def imp(ctx, node):
        x = ctx.inp(node, 0)
        r = ctx.t(x).rank
        axes_from_input = ctx.opset >= (13 if op == "ReduceSum" else 18)
        if axes_from_input:
            axes = ctx.const_input(node, 1, "axes") if ctx.inp(node, 1) else None
        else:
            axes = ctx.attr(node, "axes")
        axes = [] if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
        keep = int(ctx.attr(node, "keepdims", 1))
        if not axes:
            if int(ctx.attr(node, "noop_with_empty_axes", 0)):
                ctx.add("Reshape", [x], [ctx.out(node)], {"shape": list(ctx.t(x).shape)}, node.name)
                return
            axes = list(range(r))
        axes = sorted({norm_axis(a, r, op) for a in axes})
        ctx.add(op, [x], [ctx.out(node)], {"axes": axes, "keepdims": keep}, node.name)
    return imp


for _k in KINDS:
    onnx_op(_k)(_onnx_reduce(_k))


def _onnx_arg(op):
    def imp(ctx, node):
        ctx.add(op, [ctx.inp(node, 0)], [ctx.out(node)],
                {"axis": int(ctx.attr(node, "axis", 0)), "keepdims": int(ctx.attr(node, "keepdims", 1)),
                 "select_last_index": int(ctx.attr(node, "select_last_index", 0))}, node.name)
    return imp


onnx_op("ArgMax")(_onnx_arg("ArgMax"))
onnx_op("ArgMin")(_onnx_arg("ArgMin"))


# --- TFLite ----------------------------------------------------------------------

_TFL_REDUCE = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax",
               "REDUCE_MIN": "ReduceMin", "REDUCE_PROD": "ReduceProd"}


def _tfl_reduce(code: str):
    """MEAN, SUM, REDUCE_MAX/MIN/PROD: axes from the constant second input (negative
    ones wrap, duplicates ignored), ReducerOptions.keep_dims; int8 MEAN and SUM are
    TFLite Micro's quantized reductions (ops/qmean.py)."""
    def imp(ctx, op):
        ins = ctx.inputs(op)
        x, out = ins[0], ctx.outputs(op)[0]
        if len(ins) < 2 or not ins[1] or not ctx.t(ins[1]).is_const:
            raise UnsupportedError([f"{code} with computed axes"])
        xt = ctx.t(x)
        axes = sorted({norm_axis(int(a), xt.rank, code)
                       for a in np.asarray(ctx.const(ins[1])).reshape(-1)})
        o = ctx.options(op, "ReducerOptions")
        keep = int(bool(o.KeepDims())) if o is not None else 0
        if xt.dtype == "int8" and xt.quant is not None and code in ("MEAN", "SUM"):
            ctx.add("QMean", [x], [out], {"axes": axes, "keepdims": keep, "sum": int(code == "SUM")})
        elif not axes:
            ctx.add("Reshape", [x], [out], {"shape": list(xt.shape)})
        else:
            ctx.add(_TFL_REDUCE[code], [x], [out], {"axes": axes, "keepdims": keep})
    return imp


for _c in _TFL_REDUCE:
    tflite_op(_c)(_tfl_reduce(_c))
