"""edgec's intermediate representation.

A :class:`Graph` holds named :class:`Tensor` objects and a list of :class:`Node`
objects.  Every shape is static (frontends resolve dynamic dimensions before a
graph is built).  Constant tensors carry their data; quantized tensors carry
:class:`QuantParams` (per-tensor or per-axis scale and zero point).

Operator semantics live in :mod:`edgec.ops` (one module per family); the graph
only knows the structure.  Shapes and dtypes of a node's outputs are filled in
by the op's ``infer`` when the node is added, and a node whose inputs are all
constant is folded on the spot (its outputs become constants), so frontends can
read shape tensors and other computed constants while importing.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import dtypes, limits
from .errors import EdgecError


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    ``scale`` and ``zero_point`` are 1-D arrays: one element for per-tensor
    quantization, or one per slice along ``axis`` for per-axis quantization.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))
        if self.zero_point.size == 1 and self.scale.size > 1:
            self.zero_point = np.full(self.scale.shape, int(self.zero_point[0]), np.int64)
        if self.scale.size != self.zero_point.size:
            raise EdgecError("quantization scale and zero point have different lengths")
        if not np.all(np.isfinite(self.scale)) or np.any(self.scale <= 0):
            raise EdgecError("quantization scale must be positive and finite")
        if self.scale.size == 1:
            self.axis = None

    @property
    def per_axis(self) -> bool:
        return self.axis is not None

    def scalar(self) -> tuple[float, int]:
        if self.scale.size != 1:
            raise EdgecError("expected per-tensor quantization")
        return float(self.scale[0]), int(self.zero_point[0])

    def __eq__(self, other):
        return (isinstance(other, QuantParams) and self.axis == other.axis
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def to_json(self) -> dict:
        return {"scale": [float(s) for s in self.scale],
                "zero_point": [int(z) for z in self.zero_point],
                "axis": self.axis}


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None
    quant: QuantParams | None = None
    # Where the tensor came from in the source model (tensor name or index),
    # used to match intermediate tensors with the reference runtime.
    origin: Any = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * dtypes.itemsize(self.dtype)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    name: str = ""

    def input(self, i: int) -> str:
        """Name of input ``i``, or '' when absent (optional inputs)."""
        return self.inputs[i] if i < len(self.inputs) else ""


@dataclass
class ModelSource:
    """The model as it was read, once, before its import: the backends that compile the
    file with their own importer (tvm) or bundle it as it is (tflm) take it from here."""

    name: str                      # file name, or the graph's name
    format: str                    # onnx | tflite | keras | savedmodel | ir
    path: Path | None = None       # the file (or SavedModel directory) it came from
    data: bytes | None = None      # the file's bytes (None for a directory or a graph)
    sha256: str | None = None      # of the file (of every file of a directory)

    def to_json(self) -> dict:
        d = {"source": self.name, "format": self.format}
        if self.sha256 is not None:
            d["sha256"] = self.sha256
        return d


class OpSemantics(Protocol):
    """What the graph needs from the operators (:mod:`edgec.ops` provides it): output
    shapes, dtypes and quantization of a new node, and folding of all-constant nodes."""

    def infer_node(self, g: "Graph", node: Node) -> None: ...

    def try_fold(self, g: "Graph", node: Node) -> None: ...


_semantics: OpSemantics | None = None


def install_op_semantics(semantics: OpSemantics) -> None:
    """Called once, when :mod:`edgec.ops` is imported (every frontend and pass imports it):
    the IR knows no operator itself, the operators depend on the IR."""
    global _semantics
    _semantics = semantics


@dataclass
class GraphMeta:
    """What a graph carries besides its tensors and nodes: facts about the model it was
    imported from and what edgec did to it.  Every field starts empty.  A copy of the
    graph (:meth:`Graph.copy`, the quantizer's new graph) gets a shallow copy of it: the
    fields' values are shared, so code that changes a list or dict of an existing graph
    replaces the field (``meta.transforms = [*meta.transforms, note]``) rather than
    appending to it in place; only frontends and ops' importers, while they build a new
    graph, add to its lists and dicts in place."""

    # the model file's name (frontends.load), and its format: onnx, tflite, keras, savedmodel
    source: str = ""
    format: str = ""
    # the TFLite flatbuffer as given (the tflm backend bundles it; verify feeds it to
    # LiteRT) and its schema version; a Keras model: the converter that made it
    tflite_flatbuffer: bytes | None = None
    tflite_version: int | None = None
    converted_by: str = ""
    # graph passes that changed the graph, by name (edgec.passes.optimize), in order
    passes: list[str] = field(default_factory=list)
    # what was done to the model that changes what it computes or how, one sentence each
    # (ZipMap, tree ensembles, pruning, quantization, hybrid weights, ...): the report's
    # transformations after the passes
    transforms: list[str] = field(default_factory=list)
    # what the user should know about how the model was read (defaults taken for them)
    notes: list[str] = field(default_factory=list)
    # string class labels of a tensor holding label indices: tensor name -> labels
    labels: dict[str, list] = field(default_factory=dict)
    # the integer-level encoding of a --quantized-input tree model's input: input name ->
    # {"bits", "top", "nan", "lo", "inv"} (edgec.passes.trees)
    input_encoding: dict[str, dict] = field(default_factory=dict)
    # edgec's quantizer's summary of what it did (edgec.passes.quantize); None: not quantized
    quantization: dict | None = None
    # an ONNX ZipMap's output -> the probability tensor it was compiled as
    zipmap: dict[str, str] = field(default_factory=dict)
    # a hybrid TFLite model's int8 weights dequantized to float32 (ops.conv)
    hybrid_weights: list[str] = field(default_factory=list)
    # TFLite import: tensors whose shape the model file does not pin down (a later
    # operator may settle them) and tensor index -> a type edgec does not support
    provisional_shapes: set[str] = field(default_factory=set)
    unsupported_types: dict[int, str] = field(default_factory=dict)

    def copy(self) -> "GraphMeta":
        """A shallow copy (the values shared), as a graph's copy takes it."""
        return dataclasses.replace(self)


class Graph:
    def __init__(self, name: str = "model"):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        # facts about the model it came from and what edgec did to it
        self.meta = GraphMeta()
        # the model file it was imported from (set by edgec.pipeline.load_source)
        self.source: ModelSource | None = None
        self.fold_constants = True
        # work done on this graph so far, against edgec.ir.limits: nodes created (folded
        # ones included) and bytes constant folding added beyond what it read
        self.nodes_created = 0
        self.fold_growth = 0
        # unique_name's suffixes known taken, per hint, valid for this tensors dict
        self._taken: tuple[dict, dict[str, int]] = (self.tensors, {})

    # -- construction -------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        """``hint``, else ``hint_<i>`` with the smallest free i.  Where the search for
        a hint last stopped is remembered (20,000 constants named "count" cost 2*10^8
        lookups otherwise); tensors are only ever dropped by replacing the dict
        (remove_dead), which forgets it."""
        hint = hint or "t"
        if hint not in self.tensors:
            return hint
        if self._taken[0] is not self.tensors:
            self._taken = (self.tensors, {})
        taken = self._taken[1]
        i = taken.get(hint, 1)
        while f"{hint}_{i}" in self.tensors:
            i += 1
        taken[hint] = i
        return f"{hint}_{i}"

    def add_tensor(self, name: str, shape, dtype: str, data=None, quant=None,
                   origin=None) -> Tensor:
        if name in self.tensors:
            raise EdgecError(f"duplicate tensor name {name!r}")
        shape = tuple(int(d) for d in shape)
        check_shape(shape, name)
        dtypes.check(dtype)
        if data is not None:
            data = np.asarray(data)
            if data.dtype != np.dtype(dtypes.np_dtype(dtype)):
                data = data.astype(dtypes.np_dtype(dtype))
            if tuple(data.shape) != shape:
                raise EdgecError(f"constant {name!r}: data of shape {list(data.shape)} "
                                 f"does not match declared shape {list(shape)}")
            data = np.asarray(data, order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
            data.setflags(write=False)
        if quant is not None:
            check_quant(quant, shape, dtype, name)
        t = Tensor(name, shape, dtype, data, quant, origin)
        self.tensors[name] = t
        return t

    def add_const(self, data, hint: str = "const", quant=None, dtype: str | None = None) -> str:
        data = np.asarray(data)
        dt = dtype or dtypes.from_numpy(data.dtype)
        name = self.unique_name(hint)
        self.add_tensor(name, data.shape, dt, data=data, quant=quant)
        return name

    def add_node(self, op: str, inputs, outputs, attrs=None, name: str = "",
                 infer: bool = True) -> Node:
        """Append a node.  Output tensors that do not exist yet are created by
        the op's shape inference; all-constant nodes are folded."""
        self.nodes_created += 1
        if self.nodes_created > limits.current().nodes:
            raise limits.exceeded("nodes", f"the graph grows past {self.nodes_created - 1:,} nodes")
        node = Node(op, list(inputs), list(outputs), dict(attrs or {}), name or op)
        for i in node.inputs:
            if i and i not in self.tensors:
                raise EdgecError(f"node {node.name!r} ({op}) reads unknown tensor {i!r}")
        self.nodes.append(node)
        if infer:
            ops = _semantics
            if ops is None:
                raise EdgecError("no operator semantics installed (import edgec.ops first)")
            ops.infer_node(self, node)
            if self.fold_constants:
                ops.try_fold(self, node)
        return node

    # -- queries ------------------------------------------------------------
    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        cons: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    cons.setdefault(i, []).append(n)
        return cons

    def t(self, name: str) -> Tensor:
        return self.tensors[name]

    def const(self, name: str) -> np.ndarray | None:
        if not name:
            return None
        t = self.tensors.get(name)
        return None if t is None else t.data

    # ops that only move or convert values: a float input reached through them
    # is itself a parameter (weights, a clip range), not data
    _PARAM_PATH = ("Reshape", "Transpose", "Cast", "Copy", "Concat", "Slice", "Expand")

    def input_ancestors(self, name: str) -> list[str]:
        """Source names (``origin``) of the graph inputs that hold the parameters
        tensor ``name`` is computed from: integer inputs it depends on, and float
        inputs it is a moved or converted copy of (not ones it is computed from
        by arithmetic: those are data, whose value the model must not freeze)."""
        prod = self.producers()
        inputs = set(self.inputs)
        out, seen, stack = set(), set(), [(name, True)]
        while stack:
            t, direct = stack.pop()
            if (t, direct) in seen or t not in self.tensors or self.tensors[t].is_const:
                continue
            seen.add((t, direct))
            tt = self.tensors[t]
            if t in inputs:
                if direct or not dtypes.is_float(tt.dtype):
                    out.add(str(tt.origin if tt.origin is not None else t))
            elif t in prod:
                n = prod[t]
                d = direct and n.op in self._PARAM_PATH
                stack.extend((i, d) for i in n.inputs if i)
        return sorted(out)

    # -- maintenance --------------------------------------------------------
    def topo_sort(self) -> None:
        """Order nodes so every node comes after the producers of its inputs
        (stable: keeps the existing order where it is already valid)."""
        prod = {}
        for n in self.nodes:
            for o in n.outputs:
                if o:
                    if o in prod:
                        raise EdgecError(f"tensor {o!r} is produced by more than one node")
                    prod[o] = n
        order: list[Node] = []
        state: dict[int, int] = {}  # 1 = visiting, 2 = done
        for root in self.nodes:
            if state.get(id(root)) == 2:
                continue
            stack = [(root, 0, None)]
            while stack:
                n, k, deps = stack.pop()
                if k == 0:
                    if state.get(id(n)) == 2:
                        continue
                    state[id(n)] = 1
                if deps is None:  # once per visit, not once per input (wide nodes)
                    deps = [prod[i] for i in n.inputs if i in prod]
                if k < len(deps):
                    stack.append((n, k + 1, deps))
                    d = deps[k]
                    s = state.get(id(d))
                    if s == 1:
                        raise EdgecError(f"the graph has a cycle through node {d.name!r}")
                    if s is None:
                        stack.append((d, 0, None))
                else:
                    state[id(n)] = 2
                    order.append(n)
        self.nodes = order

    def remove_dead(self) -> None:
        """Drop nodes whose outputs nobody needs and tensors nobody references."""
        needed = set(self.outputs)
        keep = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs if o):
                keep.append(n)
                needed.update(i for i in n.inputs if i)
        self.nodes = keep[::-1]
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(i for i in n.inputs if i)
            used.update(o for o in n.outputs if o)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}

    def replace_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def validate(self) -> None:
        prod = set(self.inputs)
        for name in self.inputs:
            if name not in self.tensors:
                raise EdgecError(f"graph input {name!r} is not a tensor")
        for n in self.nodes:
            for i in n.inputs:
                if i and i not in self.tensors:
                    raise EdgecError(f"node {n.name!r} reads unknown tensor {i!r}")
                if i and not self.tensors[i].is_const and i not in prod:
                    raise EdgecError(f"node {n.name!r} reads {i!r} before it is computed")
            for o in n.outputs:
                if not o:
                    continue  # an optional output nobody asked for
                if o in prod:
                    raise EdgecError(f"tensor {o!r} is written twice")
                prod.add(o)
        for o in self.outputs:
            if o not in self.tensors:
                raise EdgecError(f"graph output {o!r} is never computed")

    def copy(self) -> "Graph":
        g = Graph(self.name)
        g.tensors = {k: dataclasses.replace(v) for k, v in self.tensors.items()}
        g.nodes = [Node(n.op, list(n.inputs), list(n.outputs), dict(n.attrs), n.name)
                   for n in self.nodes]
        g.inputs = list(self.inputs)
        g.outputs = list(self.outputs)
        g.meta = self.meta.copy()
        g.source = self.source
        g.fold_constants = self.fold_constants
        g.nodes_created = self.nodes_created
        g.fold_growth = self.fold_growth
        return g

    def summary(self) -> str:
        lines = [f"graph {self.name}: {len(self.nodes)} nodes"]
        for n in self.nodes:
            ins = ", ".join(f"{i}{list(self.tensors[i].shape)}" if i else "-" for i in n.inputs)
            outs = ", ".join(f"{o}{list(self.tensors[o].shape)}:{self.tensors[o].dtype}"
                             for o in n.outputs)
            lines.append(f"  {n.op}({ins}) -> {outs}")
        return "\n".join(lines)


def check_quant(quant: QuantParams, shape: tuple[int, ...], dtype: str, name: str) -> None:
    """Quantization parameters every kernel can take: per-axis scales along an axis of
    the tensor, one per slice; zero points inside the tensor's integer type (they are
    C constants of that type), and 0 for int32 tensors (biases: TFLite and ONNX
    define no other)."""
    where = f"tensor {name[:80]!r}"
    if quant.axis is not None:
        if not 0 <= quant.axis < len(shape) or quant.scale.size != shape[quant.axis]:
            raise EdgecError(f"{where} {list(shape)}: {quant.scale.size} quantization "
                             f"scales along axis {quant.axis}")
    if dtype == "int32":
        if quant.zero_point.any():
            raise EdgecError(f"{where} (int32): quantization zero point "
                             f"{int(quant.zero_point[quant.zero_point != 0][0])} (must be 0)")
    elif dtype in dtypes.INT_TYPES:
        lo, hi = dtypes.int_range(dtype)
        lo, hi = max(lo, -(1 << 63)), min(hi, (1 << 63) - 1)  # zero points are int64
        bad = quant.zero_point[(quant.zero_point < lo) | (quant.zero_point > hi)]
        if bad.size:
            raise EdgecError(f"{where} ({dtype}): quantization zero point {int(bad[0])} "
                             f"outside {lo}..{hi}")


def check_shape(shape: tuple[int, ...], where: str) -> None:
    for d in shape:
        if d < 0:
            raise EdgecError(f"tensor {where!r} has a negative dimension {list(shape)}")
    if len(shape) > 8:
        raise EdgecError(f"tensor {where!r} has rank {len(shape)} (at most 8 supported)")
    n = 1
    for d in shape:
        n *= d
    if n > limits.current().tensor_elements:
        raise limits.exceeded("tensor_elements", f"tensor {where[:80]!r} has shape {list(shape)}")
