"""Where (select with broadcasting), Expand (broadcast to a shape) and Tile
(lowered to Reshape, Expand, Reshape).  Any element type."""
from __future__ import annotations

import numpy as np

from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register, tflite_op
from ._util import broadcast_shape, broadcast_strides, coalesce, loop_nest


def broadcast_kernel(shapes: list, out_shape, body: str) -> str:
    """Loops over ``out_shape``; ``body`` uses ``{i0}``, ``{i1}``, ... (offsets of
    the operands, broadcast) and ``{io}`` (the output offset)."""
    sts = [broadcast_strides(s, out_shape) for s in shapes]
    shape, sts = coalesce(out_shape, sts + [broadcast_strides(out_shape, out_shape)])
    idx = {f"i{j}": st for j, st in enumerate(sts[:-1])}
    idx["io"] = sts[-1]
    return "  {\n" + loop_nest(shape, idx, body, "    ", var="d") + "\n  }\n"


@register
class Where(Op):
    name = "Where"

    def infer(self, g, n):
        c, x, y = (g.tensors[i] for i in n.inputs[:3])
        if x.dtype != y.dtype:
            raise EdgecError(f"Where: X and Y types differ ({x.dtype}, {y.dtype})")
        if c.dtype != "bool":
            raise EdgecError(f"Where: the condition is {c.dtype}, not bool")
        return [OutSpec(broadcast_shape(c.shape, x.shape, y.shape, where="Where"), x.dtype,
                        x.quant if x.quant == y.quant else None)]

    def check(self, g, n):
        x, y = g.tensors[n.inputs[1]], g.tensors[n.inputs[2]]
        if x.quant != y.quant:
            return "Where with differently quantized operands"
        return None

    def reference(self, g, n, xs):
        return [np.where(xs[0], xs[1], xs[2])]

    def emit(self, k):
        shapes = [k.tin(i).shape for i in range(3)]
        body = f"y0[{{io}}] = {k.x(0)}[{{i0}}] ? {k.x(1)}[{{i1}}] : {k.x(2)}[{{i2}}];"
        return broadcast_kernel(shapes, k.tout().shape, body)


@register
class Expand(Op):
    """Broadcast input 0 to ``attrs['shape']`` (bidirectional, as ONNX Expand)."""
    name = "Expand"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        shape = broadcast_shape(x.shape, tuple(n.attrs["shape"]), where="Expand")
        return [OutSpec(shape, x.dtype, x.quant)]

    def reference(self, g, n, xs):
        shape = broadcast_shape(xs[0].shape, tuple(n.attrs["shape"]))
        return [np.array(np.broadcast_to(xs[0], shape))]

    def emit(self, k):
        body = f"y0[{{io}}] = {k.x(0)}[{{i0}}];"
        return broadcast_kernel([k.tin(0).shape], k.tout().shape, body)


@onnx_op("Where")
def _onnx_where(ctx, node):
    ctx.add("Where", [ctx.inp(node, i) for i in range(3)], [ctx.out(node)], {}, node.name)


@onnx_op("Expand")
def _onnx_expand(ctx, node):
    shape = ctx.const_input(node, 1, "shape")
    ctx.add("Expand", [ctx.inp(node, 0)], [ctx.out(node)],
            {"shape": [int(d) for d in np.asarray(shape).reshape(-1)]}, node.name)


@onnx_op("Tile")
def _onnx_tile(ctx, node):
    x = ctx.inp(node, 0)
    reps = [int(r) for r in np.asarray(ctx.const_input(node, 1, "repeats")).reshape(-1)]
    tile_to(ctx, x, reps, ctx.out(node), node.name)


def tile_to(ctx, x: str, reps, out: str, name: str = "") -> None:
    """``out`` = ``x`` repeated ``reps[i]`` times along each axis i (Reshape / Expand)."""
    s = list(ctx.t(x).shape)
    if len(reps) != len(s) or min(reps, default=1) < 0:
        raise EdgecError(f"Tile: repeats {reps} do not fit an input of rank {len(s)}")
    # [d0, d1] -> [1, d0, 1, d1] -> expand [r0, d0, r1, d1] -> [r0*d0, r1*d1]; axes that repeat
    # once stay merged with their neighbours, and at most two repeated axes are done per
    # Expand, so the intermediate rank stays within the IR's 8 (a rank-5 tile needs 3 steps)
    rep_axes = [i for i, r in enumerate(reps) if r != 1]
    cur, cur_shape = x, list(s)
    if not rep_axes:
        ctx.add("Reshape", [x], [out], {"shape": s}, name)
        return
    for step in range(0, len(rep_axes), 2):
        todo = set(rep_axes[step:step + 2])
        inter, big = [], []
        plain = False  # the last entry holds axes that are not repeated in this step
        for i, d in enumerate(cur_shape):
            if i in todo:
                inter += [1, d]
                big += [reps[i], d]
                plain = False
            elif plain:
                inter[-1] *= d
                big[-1] *= d
            else:
                inter.append(d)
                big.append(d)
                plain = True
        new_shape = [d * reps[i] if i in todo else d for i, d in enumerate(cur_shape)]
        last = step + 2 >= len(rep_axes)
        a = ctx.tmp(out + "_split")
        ctx.add("Reshape", [cur], [a], {"shape": inter})
        b = ctx.tmp(out + "_tiled")
        ctx.add("Expand", [a], [b], {"shape": big}, name)
        nxt = out if last else ctx.tmp(out + "_part")
        ctx.add("Reshape", [b], [nxt], {"shape": new_shape})
        cur, cur_shape = nxt, new_shape



# --- TFLite importers -------------------------------------------------------------

@tflite_op("SELECT_V2", "SELECT")
def _tfl_select(ctx, op):
    ctx.add("Where", ctx.inputs(op)[:3], ctx.outputs(op))


@tflite_op("TILE")
def _tfl_tile(ctx, op):
    ins = ctx.inputs(op)
    reps = ctx.const(ins[1]) if len(ins) > 1 and ins[1] else None
    if reps is None:
        raise UnsupportedError(["TILE with computed multiples"])
    tile_to(ctx, ins[0], [int(r) for r in np.asarray(reps).reshape(-1)], ctx.outputs(op)[0])
