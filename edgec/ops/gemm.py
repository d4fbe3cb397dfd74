"""Matrix products: ``FullyConnected`` (constant weights) and ``MatMul``.

IR ``FullyConnected``: inputs ``x, w[, b]`` with ``x`` viewed as ``[M, K]``
(its last dimension is K), ``w`` ``[N, K]`` constant, ``b`` ``[N]``; output
``x.shape[:-1] + [N]`` when ``keep_dims`` else ``[M, N]``; fused ``act``.
int8 follows TFLite Micro's FULLY_CONNECTED (multiplier of ``float(x_scale *
w_scale) / y_scale``, one per tensor; per channel when the weights are
quantized per channel).

IR ``MatMul``: numpy ``matmul`` semantics (batched, broadcasting), float.
ONNX ``Gemm`` and ``MatMul`` with a constant right operand become
FullyConnected.
"""
from __future__ import annotations

import numpy as np

from ..ir import qmath
from ..ir.dtypes import np_dtype
from ..ir.errors import EdgecError, Reason, UnsupportedError
from . import OutSpec, Op, dsp, onnx_op, register, shared, tflite_op
from ._requant import c_multipliers, channel_multipliers, requant_table
from ._util import act_range_float, act_range_quant, apply_act_float, broadcast_shape, broadcast_strides, check_per_channel, choice, prod, quant_of, tfl_activation
from .conv import _tfl_dequant_weights, dequantized_weights, is_weight_only, weight_scales


def fc_dims(g, n):
    x = g.tensors[n.inputs[0]]
    w = g.tensors[n.inputs[1]]
    if w.rank != 2:
        raise EdgecError(f"FullyConnected weights must be 2-D, got {list(w.shape)}")
    N, K = w.shape
    if x.size % K:
        raise EdgecError(f"FullyConnected: input {list(x.shape)} is not a multiple of K={K}")
    return x.size // K, N, K


def fc_requant(g, n):
    xq, wq, yq = quant_of(g, n.inputs[0]), quant_of(g, n.inputs[1]), quant_of(g, n.outputs[0])
    xs, _ = xq.scalar()
    ys, _ = yq.scalar()
    return channel_multipliers(xs, wq.scale, ys, g.tensors[n.inputs[1]].shape[0])


def simd_kernel(g, n, mve: bool) -> bool:
    """Whether an int8 FullyConnected node gets a DSP (``mve``: Helium) kernel
    (:func:`.dsp.fully_connected`) on a build that wants them."""
    x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
    if x.dtype != "int8" or w.quant is None or int(w.quant.zero_point[0]) != 0:
        return False
    return mve or (fc_dims(g, n)[2] % 4 == 0 and requant_table(*fc_requant(g, n), 0) is not None)


@register
class FullyConnected(Op):
    name = "FullyConnected"
    fuses_activation = True
    quantize = "compute"

    def infer(self, g, n):
        M, N, K = fc_dims(g, n)
        check_per_channel(g, n, 2, N)
        x = g.tensors[n.inputs[0]]
        shape = tuple(x.shape[:-1]) + (N,) if n.attrs.get("keep_dims") else (M, N)
        if x.dtype not in ("float32", "int8"):
            raise UnsupportedError([f"FullyConnected[{x.dtype}]"])
        return [OutSpec(shape, x.dtype)]

    def check(self, g, n):
        x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
        if not w.is_const:
            return Reason("FullyConnected with computed weights", n.inputs[1])
        if x.dtype == "int8":
            if w.dtype != "int8" or w.quant is None or x.quant is None or \
                    g.tensors[n.outputs[0]].quant is None:
                return "FullyConnected[int8] without int8 quantized weights"
            b = n.input(2)
            if b and g.tensors[b].dtype != "int32":
                return f"FullyConnected[int8] with a {g.tensors[b].dtype} bias"
        elif w.dtype != "float32" and not (x.dtype == "float32" and is_weight_only(w)):
            return f"FullyConnected[{x.dtype}, weights {w.dtype}]"
        return None

    def reference(self, g, n, xs):
        M, N, K = fc_dims(g, n)
        out_shape = g.tensors[n.outputs[0]].shape
        x = xs[0].reshape(M, K)
        w = xs[1]
        b = xs[2] if len(xs) > 2 and xs[2] is not None else None
        act = n.attrs.get("act")
        if x.dtype == np.float32:
            if w.dtype == np.int8:  # weight-only int8
                w = dequantized_weights(w, quant_of(g, n.inputs[1]))
            y = x.astype(np.float64) @ w.astype(np.float64).T
            if b is not None:
                y = y + b
            return [apply_act_float(y.astype(np.float32), act_range_float(act)).reshape(out_shape)]
        _, xzp = quant_of(g, n.inputs[0]).scalar()
        wzp = int(quant_of(g, n.inputs[1]).zero_point[0])
        ys, yzp = quant_of(g, n.outputs[0]).scalar()
        acc = (x.astype(np.int64) - xzp) @ (w.astype(np.int64) - wzp).T
        if b is not None:
            acc = acc + b.astype(np.int64)
        m, s = fc_requant(g, n)
        acc = qmath.mul_by_quantized_multiplier(qmath.wrap32(acc), m, s) + yzp
        lo, hi = act_range_quant(act, ys, yzp)
        return [np.clip(acc, lo, hi).astype(np.int8).reshape(out_shape)]

    def macs(self, g, n):
        M, N, K = fc_dims(g, n)
        return M * N * K

    def emit(self, k):
        g, n = k.g, k.node
        M, N, K = fc_dims(g, n)
        quantized = k.tin(0).dtype == "int8"
        if quantized:
            if dsp.enabled(k):
                m, s = fc_requant(g, n)
                body = dsp.fully_connected(k, M, N, K, m, s)
                if body is not None:
                    return body
        ctx = dict(M=M, N=N, K=K, quantized=quantized, wscale=None,
                   bias=k.x(2) if k.has_input(2) else None)
        if quantized:
            ctx["w"] = k.x(1)
            _, xzp = quant_of(g, n.inputs[0]).scalar()
            wzp = int(quant_of(g, n.inputs[1]).zero_point[0])
            ys, yzp = quant_of(g, n.outputs[0]).scalar()
            m, s = fc_requant(g, n)
            lo, hi = act_range_quant(n.attrs.get("act"), ys, yzp)
            per_channel, ctx["mult"], ctx["shift"] = c_multipliers(k, m, s)
            ctx.update(input_offset=-xzp, weight_offset=-wzp, output_offset=yzp,
                       act_lo=lo, act_hi=hi, per_channel=per_channel)
            if k.optimize == "size":
                return shared.fully_connected(k, ctx, m, s)
        else:
            ctx["w"] = k.x(1)
            ctx["act"] = act_range_float(n.attrs.get("act"))
            wq = is_weight_only(k.tin(1))
            ctx["wscale"] = k.const(weight_scales(k.tin(1), N), "float32", "wscale") if wq else None
        return k.render("fully_connected.c.j2", **ctx)


@register
class MatMul(Op):
    name = "MatMul"

    def _shapes(self, g, n):
        a = g.tensors[n.inputs[0]].shape
        b = g.tensors[n.inputs[1]].shape
        if len(a) == 0 or len(b) == 0:
            raise EdgecError("MatMul of a scalar")
        a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
        b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
        if a2[-1] != b2[-2]:
            raise EdgecError(f"MatMul: {list(a)} x {list(b)}: inner dimensions differ")
        batch = broadcast_shape(a2[:-2], b2[:-2], where="MatMul")
        out = tuple(batch) + (a2[-2], b2[-1])
        final = list(out)
        if len(b) == 1:
            final.pop(-1)
        if len(a) == 1:
            final.pop(-2 if len(b) != 1 else -1)
        return a2, b2, batch, out, tuple(final)

    def infer(self, g, n):
        *_, final = self._shapes(g, n)
        dt = g.tensors[n.inputs[0]].dtype
        return [OutSpec(final, dt)]

    def check(self, g, n):
        dt = g.tensors[n.inputs[0]].dtype
        if dt not in ("float32", "float64", "int32", "int64"):
            return f"MatMul[{dt}]"
        return None

    def reference(self, g, n, xs):
        a, b = xs[0], xs[1]
        if a.dtype == np.float32:
            return [np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.float32)]
        return [np.matmul(a, b)]

    def macs(self, g, n):
        a2, b2, batch, out, _ = self._shapes(g, n)
        return prod(out) * a2[-1]

    def emit(self, k):
        g, n = k.g, k.node
        a2, b2, batch, out, _ = self._shapes(g, n)
        sa = broadcast_strides(a2[:-2], batch)
        sb = broadcast_strides(b2[:-2], batch)
        M, K, N = a2[-2], a2[-1], b2[-1]
        return k.render("matmul.c.j2", batch=list(batch), sa=sa, sb=sb, M=M, K=K, N=N,
                        ctype=k.tout().dtype, a=k.x(0), b=k.x(1),
                        acc_t={"float32": "float", "float64": "double", "int32": "int32_t",
                               "int64": "int64_t"}[k.tout().dtype])


# --- importers ---------------------------------------------------------------

@onnx_op("MatMul")
def _onnx_matmul(ctx, node):
    a, b = ctx.inp(node, 0), ctx.inp(node, 1)
    bt = ctx.t(b)
    at = ctx.t(a)
    if bt.is_const and bt.rank == 2 and at.rank >= 1 and at.dtype == "float32" \
            and not at.is_const:
        w = ctx.g.add_const(np.ascontiguousarray(bt.data.T), b + "_t")
        ctx.add("FullyConnected", [a, w], [ctx.out(node)], {"keep_dims": True, "act": None},
                node.name)
    else:
        ctx.add("MatMul", [a, b], [ctx.out(node)], {}, node.name)


@onnx_op("Gemm")
def _onnx_gemm(ctx, node):
    a, b, c = ctx.inp(node, 0), ctx.inp(node, 1), ctx.inp(node, 2)
    alpha = float(ctx.attr(node, "alpha", 1.0))
    beta = float(ctx.attr(node, "beta", 1.0))
    trans_a = int(ctx.attr(node, "transA", 0))
    trans_b = int(ctx.attr(node, "transB", 0))
    at, bt = ctx.t(a), ctx.t(b)
    if at.rank != 2 or bt.rank != 2:
        raise EdgecError(f"Gemm expects 2-D inputs, got {list(at.shape)} and {list(bt.shape)}")
    out = ctx.out(node)
    if trans_a:
        a2 = ctx.tmp(a + "_T")
        ctx.add("Transpose", [a], [a2], {"perm": [1, 0]})
        a = a2
    M = ctx.t(a).shape[0]
    if bt.is_const and bt.dtype == "float32" and ctx.t(a).dtype == "float32":
        w = bt.data if trans_b else bt.data.T
        w = (w.astype(np.float32) * np.float32(alpha)) if alpha != 1.0 else w
        N = w.shape[0]
        bias = None
        ct = ctx.t(c) if c else None
        if ct is not None and ct.is_const and ct.size in (1, N) and (
                ct.rank <= 1 or (ct.rank == 2 and ct.shape[0] == 1)):
            bias = np.broadcast_to(ct.data.reshape(-1).astype(np.float32) * np.float32(beta),
                                   (N,)).copy()
            c = ""
        wname = ctx.g.add_const(np.ascontiguousarray(w, dtype=np.float32), b + "_fc")
        ins = [a, wname]
        if bias is not None and beta != 0:
            ins.append(ctx.g.add_const(bias, (c or b) + "_bias"))
        y = out if not c or beta == 0 else ctx.tmp(out + "_ab")
        ctx.add("FullyConnected", ins, [y], {"keep_dims": True, "act": None}, node.name)
        if c and beta != 0:
            cc = c
            if beta != 1.0:
                cc = ctx.tmp(c + "_beta")
                ctx.add("Mul", [c, ctx.g.add_const(np.array(beta, np.float32), "beta")], [cc])
            ctx.add("Add", [y, cc], [out])
        return
    if trans_b:
        b2 = ctx.tmp(b + "_T")
        ctx.add("Transpose", [b], [b2], {"perm": [1, 0]})
        b = b2
    dt = ctx.t(a).dtype
    y = ctx.tmp(out + "_ab")
    ctx.add("MatMul", [a, b], [y], {}, node.name)
    if alpha != 1.0:
        y2 = ctx.tmp(out + "_alpha")
        ctx.add("Mul", [y, ctx.g.add_const(np.array(alpha, dtype=_np(dt)), "alpha")], [y2])
        y = y2
    if c and beta != 0:
        cc = c
        if beta != 1.0:
            cc = ctx.tmp(c + "_beta")
            ctx.add("Mul", [c, ctx.g.add_const(np.array(beta, dtype=_np(dt)), "beta")], [cc])
        ctx.add("Add", [y, cc], [out])
    else:
        ctx.add("Reshape", [y], [out], {"shape": [M, ctx.t(y).shape[1]]})


def _np(dt):
    return np_dtype(dt)


@tflite_op("FULLY_CONNECTED")
def _tfl_fc(ctx, op):
    o = ctx.options(op, "FullyConnectedOptions")
    ins = ctx.inputs(op)
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else ""
    w = _tfl_dequant_weights(ctx, w, x)
    out = ctx.outputs(op)[0]
    keep = bool(o.KeepNumDims()) if o is not None else False
    if o is not None and choice(o.WeightsFormat(), {0: "DEFAULT", 1: "SHUFFLED4x16INT8"},
                                "weights format") != 0:
        raise UnsupportedError(["FULLY_CONNECTED with shuffled weights"])
    act = tfl_activation(o.FusedActivationFunction() if o is not None else 0)
    ot = ctx.t(out)
    M, N = ctx.t(x).size // ctx.t(w).shape[1], ctx.t(w).shape[0]
    if keep or ot.shape == (M, N):
        ctx.add("FullyConnected", [x, w, b] if b else [x, w], [out], {"keep_dims": keep, "act": act})
    else:
        y = ctx.tmp(out + "_2d")
        ctx.g.add_tensor(y, (M, N), ot.dtype, quant=ot.quant)
        ctx.add("FullyConnected", [x, w, b] if b else [x, w], [y], {"keep_dims": False, "act": act})
        ctx.add("Reshape", [y], [out], {"shape": list(ot.shape)})
