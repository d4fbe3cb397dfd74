"""Reshape and its relatives (Flatten, Squeeze, Unsqueeze, Identity, ExpandDims):
all become the IR op ``Reshape`` with a static target shape, a view of its
input (no code, no memory).  ``Copy`` is an explicit copy.  ``Shape`` and
``Size`` fold to constants."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import norm_axis, prod


@register
class Reshape(Op):
    name = "Reshape"
    quantize = "follow"
    view = True

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        shape = tuple(int(d) for d in n.attrs["shape"])
        if prod(shape) != x.size:
            raise EdgecError(f"cannot reshape {list(x.shape)} to {list(shape)}")
        return [OutSpec(shape, x.dtype, x.quant)]

    def reference(self, g, n, xs):
        return [np.reshape(xs[0], n.attrs["shape"])]


@register
class Copy(Op):
    name = "Copy"
    quantize = "follow"
    transpose_commutes = "unary"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        return [OutSpec(x.shape, x.dtype, x.quant)]

    def reference(self, g, n, xs):
        return [np.array(xs[0])]

    def emit(self, k):
        return f"  memcpy({k.y()}, {k.x(0)}, {k.tin(0).nbytes}u);\n"


@register
class BitCast(Op):
    """Reinterpret the bytes of a tensor as another element type of the same size."""
    name = "BitCast"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        to = n.attrs["to"]
        if dtypes.itemsize(to) != dtypes.itemsize(x.dtype):
            raise EdgecError(f"BitCast from {x.dtype} to {to}: element sizes differ")
        return [OutSpec(x.shape, to)]

    def reference(self, g, n, xs):
        y = np.ascontiguousarray(xs[0]).view(dtypes.np_dtype(n.attrs["to"]))
        if n.attrs["to"] == "bool":
            y = y != 0
        return [y]

    def check(self, g, n):
        if n.attrs["to"] == "bool":
            return "BitCast to bool"
        return None

    def emit(self, k):
        return f"  memcpy({k.y()}, {k.x(0)}, {k.tin(0).nbytes}u);\n"


@onnx_op("BitCast")
def _onnx_bitcast(ctx, node):
    from onnx import helper
    try:
        to = dtypes.from_numpy(helper.tensor_dtype_to_np_dtype(int(ctx.attr(node, "to"))))
    except Exception:  # noqa: BLE001
        raise UnsupportedError([f"BitCast to element type {ctx.attr(node, 'to')}"]) from None
    ctx.add("BitCast", [ctx.inp(node, 0)], [ctx.out(node)], {"to": to}, node.name)


def reshape_to(ctx, x: str, shape, out: str, name: str = "") -> None:
    ctx.add("Reshape", [x], [out], {"shape": [int(d) for d in shape]}, name)


# --- ONNX ------------------------------------------------------------------

def _onnx_reshape_target(x_shape, target, allowzero: bool) -> tuple[int, ...]:
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(x_shape):
                raise EdgecError(f"Reshape: 0 at position {i} but input has rank {len(x_shape)}")
            out.append(int(x_shape[i]))
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise EdgecError("Reshape: more than one -1 in the target shape")
    if -1 in out:
        known = prod(d for d in out if d != -1)
        total = prod(x_shape)
        if known == 0 or total % known:
            raise EdgecError(f"Reshape: cannot reshape {list(x_shape)} to {target}")
        out[out.index(-1)] = total // known
    if any(d < 0 for d in out):
        raise EdgecError(f"Reshape: invalid target shape {target}")
    return tuple(out)


@onnx_op("Reshape")
def _onnx_reshape(ctx, node):
    x = ctx.inp(node, 0)
    if ctx.opset < 5:
        target = ctx.attr(node, "shape")
    else:
        target = ctx.const_input(node, 1, "shape")
    shape = _onnx_reshape_target(ctx.t(x).shape, target, bool(ctx.attr(node, "allowzero", 0)))
    reshape_to(ctx, x, shape, ctx.out(node), node.name)


@onnx_op("Flatten")
def _onnx_flatten(ctx, node):
    x = ctx.inp(node, 0)
    s = ctx.t(x).shape
    axis = int(ctx.attr(node, "axis", 1))
    if axis < 0:
        axis += len(s)
    if not 0 <= axis <= len(s):
        raise EdgecError(f"Flatten: axis {ctx.attr(node, 'axis', 1)} out of range for rank {len(s)}")
    reshape_to(ctx, x, (prod(s[:axis]), prod(s[axis:])), ctx.out(node), node.name)


@onnx_op("Identity")
def _onnx_identity(ctx, node):
    x = ctx.inp(node, 0)
    reshape_to(ctx, x, ctx.t(x).shape, ctx.out(node), node.name)


@onnx_op("Squeeze")
def _onnx_squeeze(ctx, node):
    x = ctx.inp(node, 0)
    s = list(ctx.t(x).shape)
    if ctx.opset >= 13:
        axes = ctx.const_input(node, 1, "axes")
    else:
        axes = ctx.attr(node, "axes")
    if axes is None:
        axes = [i for i, d in enumerate(s) if d == 1]
    axes = {norm_axis(a, len(s), "Squeeze") for a in np.asarray(axes).reshape(-1)}
    for a in axes:
        if s[a] != 1:
            raise EdgecError(f"Squeeze: dimension {a} of {s} is not 1")
    reshape_to(ctx, x, [d for i, d in enumerate(s) if i not in axes], ctx.out(node), node.name)


@onnx_op("Unsqueeze")
def _onnx_unsqueeze(ctx, node):
    x = ctx.inp(node, 0)
    s = list(ctx.t(x).shape)
    axes = ctx.const_input(node, 1, "axes") if ctx.opset >= 13 else ctx.attr(node, "axes")
    axes = [int(a) for a in np.asarray(axes).reshape(-1)]
    r = len(s) + len(axes)
    axes = sorted(norm_axis(a, r, "Unsqueeze") for a in axes)
    if len(set(axes)) != len(axes):
        raise EdgecError("Unsqueeze: repeated axes")
    for a in axes:
        s.insert(a, 1)
    reshape_to(ctx, x, s, ctx.out(node), node.name)


@onnx_op("Shape")
def _onnx_shape(ctx, node):
    x = ctx.inp(node, 0)
    s = np.array(ctx.t(x).shape, dtype=np.int64)
    r = len(s)
    start = ctx.attr(node, "start", 0)
    end = ctx.attr(node, "end", r)
    start = max(0, min(r, start + r if start < 0 else start))
    end = max(0, min(r, end + r if end < 0 else end))
    _alias_const(ctx, node, s[start:end])


@onnx_op("Size")
def _onnx_size(ctx, node):
    x = ctx.inp(node, 0)
    _alias_const(ctx, node, np.array(ctx.t(x).size, dtype=np.int64))


def _alias_const(ctx, node, value, i: int = 0) -> None:
    """Bind the node's output ``i`` to a new constant tensor."""
    src = node.output[i]
    name = ctx.g.add_const(value, src)
    ctx.g.tensors[name].origin = src
    ctx.names[src] = name


@onnx_op("Constant")
def _onnx_constant(ctx, node):
    if len(node.attribute) != 1:
        raise EdgecError("Constant needs exactly one value attribute")
    a = node.attribute[0].name
    v = ctx.attr(node, a)
    if a == "value":
        arr = np.asarray(v)
    elif a in ("value_float", "value_int"):
        arr = np.array(v, dtype=np.float32 if a == "value_float" else np.int64)
    elif a in ("value_floats", "value_ints"):
        arr = np.array(v, dtype=np.float32 if a == "value_floats" else np.int64)
    else:
        raise UnsupportedError([f"Constant with {a}"])
    _alias_const(ctx, node, arr)


# --- TFLite ----------------------------------------------------------------

def _tfl_open_shape(ctx, op, code: str, x_shape: list) -> list | None:
    """The output shape of RESHAPE / EXPAND_DIMS / SQUEEZE from its operands, for an
    output whose declared dimensions are placeholders (TFLite's -1), or None."""
    ins = ctx.inputs(op)
    second = ctx.const(ins[1]) if len(ins) > 1 and ins[1] else None
    if code == "RESHAPE" and second is not None:
        return list(_onnx_reshape_target(x_shape, second, False))
    if code == "EXPAND_DIMS" and second is not None:
        a = int(np.asarray(second).reshape(-1)[0])
        shape = list(x_shape)
        shape.insert(a + len(x_shape) + 1 if a < 0 else a, 1)
        return shape
    if code == "SQUEEZE":
        o = ctx.options(op, "SqueezeOptions")
        dims = {int(d) + len(x_shape) if d < 0 else int(d) for d in o.SqueezeDimsAsNumpy()} \
            if o is not None and o.SqueezeDimsLength() else set()
        return [d for i, d in enumerate(x_shape) if not (i in dims if dims else d == 1)]
    return None


def _tfl_reshape(code: str):
    def imp(ctx, op):
        x, out = ctx.inputs(op)[0], ctx.outputs(op)[0]
        xs = list(ctx.t(x).shape)
        shape = list(ctx.t(out).shape)
        if out in ctx.g.meta.provisional_shapes:
            shape = _tfl_open_shape(ctx, op, code, xs) or shape
        if int(np.prod(shape)) != ctx.t(x).size:
            raise EdgecError(f"output shape {shape} does not match input {xs}")
        ctx.add("Reshape", [x], [out], {"shape": shape})
    return imp


for _code in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
    tflite_op(_code)(_tfl_reshape(_code))


@onnx_op("Dropout")
def _onnx_dropout(ctx, node):
    """Inference: the identity (and an all-true mask).  Training mode with a
    non-zero ratio draws random numbers, which edgec does not compile."""
    x = ctx.inp(node, 0)
    if ctx.opset >= 12:
        training = ctx.const_input(node, 2, "training_mode") if ctx.inp(node, 2) else None
        training = bool(training is not None and np.asarray(training).reshape(-1)[0])
        ratio = ctx.const_input(node, 1, "ratio") if training and ctx.inp(node, 1) else None
        ratio = 0.5 if ratio is None else float(np.asarray(ratio).reshape(-1)[0])
    else:
        ratio = float(ctx.attr(node, "ratio", 0.5))
        training = ctx.opset < 7 and not ctx.attr(node, "is_test", 0)
    if training and ratio != 0:
        raise UnsupportedError(["Dropout in training mode (random)"])
    reshape_to(ctx, x, ctx.t(x).shape, ctx.out(node), node.name)
    if len(node.output) > 1 and node.output[1]:
        _alias_const(ctx, node, np.ones(ctx.t(x).shape, dtype=bool), 1)


@tflite_op("SHAPE")
def _tfl_shape(ctx, op):
    """The (static) shape of the input: a constant (Keras' Flatten and Reshape with an
    unknown batch compute their target shape with SHAPE, STRIDED_SLICE and PACK)."""
    x, out = ctx.inputs(op)[0], ctx.outputs(op)[0]
    o = ctx.t(out)
    value = np.array(ctx.t(x).shape, dtype=np.int64)
    if o.dtype not in ("int32", "int64") or o.size != value.size:
        raise EdgecError(f"SHAPE output {list(o.shape)} {o.dtype} does not hold the input's rank "
                         f"{value.size}")
    o.data = value.astype(o.dtype).reshape(o.shape)
