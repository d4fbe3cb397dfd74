"""Operators: one module per operator family.

Each operator is an :class:`Op` subclass registered with :func:`register`.  An op
has the same few duties everywhere (the onnx2c habit):

* ``infer(g, node)``: output shapes/dtypes/quantization from the inputs;
* ``reference(g, node, xs)``: a numpy implementation with the exact semantics
  edgec's C follows (float ops: the math; int8 ops: TFLite Micro's fixed-point
  arithmetic bit for bit).  It folds constants and is edgec's own reference
  interpreter (:mod:`edgec.ops.interp`);
* ``emit(k)``: the C body of a specialized kernel for the native backend;
* ``macs(g, node)``: multiply-accumulates, for reports.

Frontend importers for the op live beside it, registered with
:func:`onnx_op` / :func:`tflite_op`; compile-time parameters are prepared once
(``conv.prepare``) and the traits the passes need are class attributes of
:class:`Op`.  The checklist: docs/DEVELOPING.md, "Adding an operator".
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass

import numpy as np

from ..ir import dtypes, limits
from ..ir.errors import EdgecError, UnsupportedError
from ..ir import graph as graph_module
from ..ir.graph import Graph, Node, QuantParams


@dataclass
class OutSpec:
    shape: tuple
    dtype: str
    quant: QuantParams | None = None


class Op:
    """Base of all operators.  Subclasses set ``name`` and override what they support."""

    name = ""
    # The output is a view of input 0 (same bytes, no code): Reshape and friends.
    view = False
    # The numpy reference may be used to fold all-constant nodes.
    foldable = True

    # Traits the passes read (declared here, on the operator, never listed in a pass):
    # passes.fuse: a float Relu/Clip after the op folds into its ``attrs["act"]``.
    fuses_activation = False
    # passes.layout: the op carries ``attrs["layout"]`` (NCHW / NHWC); ``to_nhwc``
    # turns NCHW nodes into NHWC ones between transposes.
    layout_sensitive = False
    # passes.layout: how a Transpose of its inputs moves past the op: None (it does
    # not), "unary" (elementwise), "binary" (elementwise on same-shaped inputs),
    # "concat" (the axis is permuted).
    transpose_commutes: str | None = None
    # passes.quantize: None (edgec's quantizer keeps the op float), "compute" (an int8
    # kernel whose output gets its own calibrated parameters), "follow" (the int8
    # output keeps its input's parameters).
    quantize: str | None = None

    def infer(self, g: Graph, n: Node) -> list[OutSpec]:
        raise NotImplementedError

    def reference(self, g: Graph, n: Node, xs: list) -> list[np.ndarray]:
        raise UnsupportedError([f"{n.op} (no reference implementation)"])

    def check(self, g: Graph, n: Node) -> str | None:
        """Return a reason when the native backend cannot compile this node."""
        return None

    def emit(self, k) -> str:
        raise UnsupportedError([self._describe(k.g, k.node)])

    def macs(self, g: Graph, n: Node) -> int:
        return 0

    @staticmethod
    def _describe(g: Graph, n: Node) -> str:
        types = sorted({g.tensors[i].dtype for i in n.inputs if i} |
                       {g.tensors[o].dtype for o in n.outputs if o})
        return f"{n.op}[{','.join(types)}]"


REGISTRY: dict[str, Op] = {}
ONNX_IMPORTERS: dict[tuple[str, str], object] = {}
TFLITE_IMPORTERS: dict[str, object] = {}
TFLITE_QUANT_IMPORTERS: dict[str, object] = {}   # integer variants (tflite_op(quantized=True))


def register(cls):
    REGISTRY[cls.name] = cls()
    return cls


def onnx_op(*op_types: str, domain: str = ""):
    """Register an ONNX importer: ``fn(ctx, onnx_node)`` adds IR nodes."""
    def deco(fn):
        for t in op_types:
            ONNX_IMPORTERS[(domain, t)] = fn
        return fn
    return deco


def tflite_op(*op_names: str, quantized: bool = False):
    """Register a TFLite importer: ``fn(ctx, op)`` adds IR nodes.  ``quantized=True``
    registers the importer of the operator's integer variant (its first input an int8 or
    int16 tensor with quantization parameters): a quantized kernel lives in its own module
    beside the float one, and the frontend picks by the input (:func:`tflite_importer`)."""
    def deco(fn):
        for t in op_names:
            (TFLITE_QUANT_IMPORTERS if quantized else TFLITE_IMPORTERS)[t] = fn
        return fn
    return deco


def tflite_supports(op_name: str) -> bool:
    """Whether some variant of the TFLite operator has an importer."""
    return op_name in TFLITE_IMPORTERS or op_name in TFLITE_QUANT_IMPORTERS


def tflite_importer(op_name: str, first_input=None):
    """The importer of a TFLite operator for its first input tensor (an IR tensor or
    None): the quantized variant's for an int8/int16 input with quantization parameters
    when one is registered, else the operator's own."""
    if op_name in TFLITE_QUANT_IMPORTERS and first_input is not None and \
            first_input.dtype in ("int8", "int16") and first_input.quant is not None:
        return TFLITE_QUANT_IMPORTERS[op_name]
    if op_name in TFLITE_IMPORTERS:
        return TFLITE_IMPORTERS[op_name]
    return _float_variant_missing


def _float_variant_missing(ctx, op):
    """An operator edgec imports only in its quantized variant, given another input type."""
    x = ctx.t(ctx.inputs(op)[0]) if ctx.inputs(op) else None
    raise UnsupportedError([f"{ctx.opname.rsplit('_', 1)[0].upper()}[{x.dtype if x else 'none'}]"])


def get(op: str) -> Op:
    try:
        return REGISTRY[op]
    except KeyError:
        raise UnsupportedError([op]) from None


def infer_node(g: Graph, n: Node) -> None:
    specs = get(n.op).infer(g, n)
    if len(specs) < len([o for o in n.outputs if o]):
        raise EdgecError(f"node {n.name!r} ({n.op}) has {len(n.outputs)} outputs, "
                         f"the operator gives {len(specs)}")
    for o, s in zip(n.outputs, specs):
        if not o:
            continue
        shape = tuple(int(d) for d in s.shape)
        t = g.tensors.get(o)
        if t is None:
            g.add_tensor(o, shape, s.dtype, quant=s.quant)
            continue
        if t.is_const:
            raise EdgecError(f"node {n.name!r} ({n.op}) writes constant tensor {o!r}")
        provisional = g.meta.provisional_shapes
        if provisional and o in provisional:
            provisional.discard(o)  # declared with placeholders (TFLite's -1 dimensions)
            t.shape = shape
        if tuple(t.shape) != shape and int(np.prod(t.shape)) == int(np.prod(shape)) \
                and get(n.op).view:
            continue  # declared reshape target differs only in how it is written
        if tuple(t.shape) != shape:
            raise EdgecError(f"node {n.name!r} ({n.op}): output {o!r} is declared with "
                             f"shape {list(t.shape)} but computes to {list(shape)}")
        if t.dtype != s.dtype:
            raise EdgecError(f"node {n.name!r} ({n.op}): output {o!r} is declared "
                             f"{t.dtype} but computes to {s.dtype}")
        if t.quant is None and s.quant is not None:
            t.quant = s.quant


def _drop_node(g: Graph, n: Node) -> None:
    """Remove a node just folded (the last one, as a rule: O(1) then)."""
    if g.nodes and g.nodes[-1] is n:
        g.nodes.pop()
    else:
        g.nodes.remove(n)


def fold_growth(g: Graph, n: Node) -> int:
    """Bytes folding ``n`` would add beyond the constants it reads (0 for a node that
    only moves or shrinks them), checked against ``limits.fold_bytes``."""
    out = sum(g.tensors[o].nbytes for o in n.outputs if o)
    read = sum(g.tensors[i].nbytes for i in n.inputs if i)
    return max(0, out - read)


def try_fold(g: Graph, n: Node) -> bool:
    """Replace an all-constant node's outputs by constants (compile-time evaluation).
    A node whose result would take the graph's folded bytes past ``limits.fold_bytes``
    stays an operator (computed at run time)."""
    op = get(n.op)
    outs = [g.tensors[o] for o in n.outputs if o]
    if outs and all(t.size == 0 for t in outs):
        # an empty result is known without computing anything
        for t in outs:
            y = np.zeros(t.shape, dtypes.np_dtype(t.dtype))
            y.setflags(write=False)
            t.data = y
        _drop_node(g, n)
        return True
    if not op.foldable:
        return False
    ins = [i for i in n.inputs if i]
    if not all(g.tensors[i].is_const for i in ins):
        return False
    growth = fold_growth(g, n)
    if g.fold_growth + growth > limits.current().fold_bytes:
        return False
    xs = [g.tensors[i].data if i else None for i in n.inputs]
    try:
        ys = op.reference(g, n, xs)
    except UnsupportedError:
        return False
    g.fold_growth += growth
    for t, y in zip(outs, ys):
        y = np.asarray(y).astype(dtypes.np_dtype(t.dtype), copy=False).reshape(t.shape)
        y = np.asarray(y, order="C")
        y.setflags(write=False)
        t.data = y
    _drop_node(g, n)
    return True


def load_all() -> None:
    """Import every op module so their registrations run."""
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


load_all()
# The IR knows no operator: a graph asks the operators (shape inference, constant folding)
# through this hook whenever a node is added.
graph_module.install_op_semantics(sys.modules[__name__])
