"""ONNX importer (opsets 7 and later, plus the ai.onnx.ml tree ensembles).

Reads the protobuf without executing anything: initializers and Constant nodes
become constant tensors, each node is handed to the importer its operator
module registered (:func:`edgec.ops.onnx_op`), and shapes are resolved by
edgec's own shape inference as nodes are added (shape computations fold to
constants on the way).  External data is read only from inside the model's
directory.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from ..ir import dtypes, limits
from .. import ops
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, check_shape
from ..ops._util import choice

MAX_NAME = 4096


class OnnxContext:
    def __init__(self, g: Graph, opsets: dict[str, int], model_dir: Path | None):
        self.g = g
        self.opsets = opsets
        self.model_dir = model_dir
        self.names: dict[str, str] = {}  # ONNX tensor name -> IR tensor name
        # bytes of constant data (initializers, Constant nodes, tensor attributes) the
        # model may still bring in: limits.constant_bytes, shared by all of them
        self.budget = [limits.current().constant_bytes]

    @property
    def opset(self) -> int:
        return self.opsets.get("", 1)

    def expand_function(self, node, depth: int = 0) -> None:
        """Import ``node`` through its function body in the ONNX standard (for the
        operators' importers, which sit below the frontend)."""
        _expand_function(self, node, depth)

    # --- node access -------------------------------------------------------
    def raw_attr(self, node, name: str, default=None):
        """The AttributeProto ``name`` of ``node``, or None.  Its type must be the one
        the operator's schema gives (an INT may stand for a FLOAT); for operators
        without a schema, the type of ``default`` when there is one."""
        for a in node.attribute:
            if a.name == name:
                want = _attr_types(node.domain, node.op_type,
                                   self.opsets.get(_domain(node.domain), 1)).get(name)
                if want is None and default is not None:
                    want = _type_of_default(default)
                if want is not None and a.type != want and not (
                        a.type == a.INT and want == a.FLOAT):
                    raise EdgecError(f"attribute {name[:40]!r} is {_type_name(a.type)}, "
                                     f"expected {_type_name(want)}")
                return a
        return None

    def attr(self, node, name: str, default=None, choices=None):
        """The value of attribute ``name`` (type-checked by :meth:`raw_attr`), or
        ``default``; with ``choices`` (an enum: auto_pad, modes...) the value must be
        one of them."""
        from onnx import helper
        a = self.raw_attr(node, name, default)
        if a is None:
            return default
        try:
            v = helper.get_attribute_value(a)
        except Exception as e:  # noqa: BLE001 - an attribute of an undefined type
            raise EdgecError(f"attribute {name[:40]!r}: {str(e).splitlines()[0][:80]}") from None
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif hasattr(v, "dims") and hasattr(v, "data_type"):  # TensorProto
            v = tensor_to_numpy(v, self.model_dir, self.budget)
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        if choices is not None:
            choice(v, choices, f"attribute {name[:40]!r}")
        return v

    def attr_graph(self, node, name: str, required: bool = False):
        a = self.raw_attr(node, name)
        if a is None and required:
            raise EdgecError(f"{node.op_type} without its {name!r} graph")
        return a.g if a is not None and a.type == a.GRAPH else None

    def has_attr(self, node, name: str) -> bool:
        return any(a.name == name for a in node.attribute)

    def inp(self, node, i: int) -> str:
        if i >= len(node.input) or not node.input[i]:
            return ""
        try:
            return self.names[node.input[i]]
        except KeyError:
            raise EdgecError(f"node {node.name or node.op_type!r} reads tensor "
                             f"{node.input[i][:80]!r}, which nothing produces") from None

    def n_inputs(self, node) -> int:
        return len(node.input)

    def const(self, name: str):
        return self.g.const(name)

    def const_input(self, node, i: int, what: str):
        """The value of input ``i``, which must be a constant (e.g. a shape)."""
        name = self.inp(node, i)
        if not name:
            return None
        v = self.g.const(name)
        if v is None:
            raise UnsupportedError([f"{node.op_type} with a computed {what}"],
                                   needs_const=self.g.input_ancestors(name))
        return v

    def out(self, node, i: int = 0) -> str:
        if i >= len(node.output) or not node.output[i]:
            return ""
        src = node.output[i]
        if src in self.names:
            raise EdgecError(f"tensor {src[:80]!r} is produced twice")
        name = self.g.unique_name(src)
        self.names[src] = name
        return name

    def tmp(self, hint: str) -> str:
        name = self.g.unique_name(hint)
        return name

    def t(self, name: str):
        return self.g.tensors[name]

    def add(self, op: str, inputs, outputs, attrs=None, name: str = ""):
        n = self.g.add_node(op, inputs, outputs, attrs, name)
        for o in outputs:
            if o and self.g.tensors[o].origin is None:
                self.g.tensors[o].origin = o
        return n


def _domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def _schema(domain: str, op_type: str, opset: int):
    """The operator's ONNX schema at ``opset``, or None."""
    from onnx import defs
    try:
        return defs.get_schema(op_type, opset, _domain(domain))
    except Exception:  # noqa: BLE001 - no such operator (or not at this opset)
        return None


@functools.lru_cache(maxsize=None)
def _attr_types(domain: str, op_type: str, opset: int) -> dict[str, int]:
    """{attribute name: AttributeProto type} from the operator's ONNX schema ({} when
    the operator has none at this opset)."""
    schema = _schema(domain, op_type, opset)
    return {} if schema is None else {k: int(a.type) for k, a in schema.attributes.items()}


@functools.lru_cache(maxsize=None)
def _input_type_params(domain: str, op_type: str, opset: int) -> tuple:
    """The schema's type parameter of each formal input (None for a concrete type or
    a heterogeneous variadic), and whether the last input is variadic."""
    from onnx import defs
    schema = _schema(domain, op_type, opset)
    if schema is None:
        return (), False
    params = {t.type_param_str for t in schema.type_constraints}
    V = defs.OpSchema.FormalParameterOption.Variadic
    out = tuple(f.type_str if f.type_str in params and (f.option != V or f.is_homogeneous) else None
                for f in schema.inputs)
    return out, bool(schema.inputs) and schema.inputs[-1].option == V


def _check_input_types(ctx: OnnxContext, n) -> None:
    """Inputs the operator's schema types with one parameter (MatMul's A and B, Concat's
    inputs, Where's X and Y) must have one element type: the kernels read them as one."""
    params, variadic = _input_type_params(n.domain, n.op_type, ctx.opsets.get(_domain(n.domain), 1))
    if not params:
        return
    labels = ctx.g.meta.labels
    seen: dict[str, tuple[str, str]] = {}
    for i, src in enumerate(n.input):
        p = params[i] if i < len(params) else (params[-1] if variadic else None)
        if p is None or not src or src not in ctx.names:
            continue
        name = ctx.names[src]
        if name in labels:
            continue  # a string label table, held as int64 indices
        dt = ctx.g.tensors[name].dtype
        if p in seen and seen[p][1] != dt:
            raise EdgecError(f"inputs {seen[p][0][:60]!r} ({seen[p][1]}) and {src[:60]!r} ({dt}) "
                             f"must have the same element type ({p} of {n.op_type})")
        seen.setdefault(p, (src, dt))


def _type_of_default(default) -> int | None:
    from onnx import AttributeProto as A
    if isinstance(default, bool) or isinstance(default, (int, np.integer)):
        return A.INT
    if isinstance(default, (float, np.floating)):
        return A.FLOAT
    if isinstance(default, str):
        return A.STRING
    return None


def _type_name(t: int) -> str:
    from onnx import AttributeProto
    try:
        return AttributeProto.AttributeType.Name(t)
    except ValueError:
        return f"type {t}"


def tensor_to_numpy(tp, model_dir: Path | None, budget: list | None = None) -> np.ndarray:
    """An initializer's data, checked before anything is read or decoded: its shape
    against ``limits.tensor_elements`` and its bytes against what is left of
    ``limits.constant_bytes`` (``budget``: a one-element list of the bytes still free,
    shared by all initializers of a model)."""
    from onnx import numpy_helper
    from onnx.external_data_helper import uses_external_data
    name = tp.name[:80]
    dims = tuple(int(d) for d in tp.dims)
    if any(d < 0 for d in dims):
        raise EdgecError(f"initializer {name!r} has a negative dimension {list(dims)}")
    check_shape(dims, tp.name)
    nbytes = math.prod(dims) * _itemsize(tp.data_type)
    if budget is not None:
        if nbytes > budget[0]:
            raise limits.exceeded("constant_bytes", f"initializer {name!r} {list(dims)} "
                                  f"({nbytes:,} bytes) takes the model's constants")
        budget[0] -= nbytes
    if uses_external_data(tp):
        _load_external(tp, model_dir, nbytes)
    try:
        arr = numpy_helper.to_array(tp)
    except Exception as e:  # noqa: BLE001 - malformed protobuf content
        raise EdgecError(f"initializer {name!r}: cannot decode its data "
                         f"({str(e).splitlines()[0][:120]})") from None
    if arr.dtype == object or arr.dtype.kind in "SUO":
        raise UnsupportedError([f"string tensor {name!r}"])
    if tuple(arr.shape) != dims:
        raise EdgecError(f"initializer {name!r}: data length does not match its shape {list(dims)}")
    return arr


def _load_external(tp, model_dir: Path | None, expected: int) -> None:
    """Read an initializer's external data: only a regular file inside the model's
    directory, only the ``expected`` bytes its shape needs (the declared length must
    agree), never more."""
    info = {e.key: e.value for e in tp.external_data}
    loc = info.get("location", "")
    name = tp.name[:80]
    if model_dir is None or not loc:
        raise EdgecError(f"initializer {name!r} refers to external data without a location")
    if not isinstance(loc, str) or "\0" in loc:   # protobuf hands invalid UTF-8 over as bytes
        raise EdgecError(f"initializer {name!r}: external data location {loc[:120]!r} is not a file name "
                         "(invalid UTF-8 or a NUL byte)")
    if os.path.isabs(loc) or ".." in Path(loc).parts:
        raise EdgecError(f"initializer {name!r}: external data path {loc[:120]!r} "
                         "points outside the model directory")
    base = model_dir.resolve()
    p = (base / loc).resolve()
    if base not in p.parents and p != base:
        raise EdgecError(f"initializer {name!r}: external data path {loc[:120]!r} "
                         "points outside the model directory")
    if not p.is_file():
        raise EdgecError(f"initializer {name!r}: external data file {loc[:120]!r} not found "
                         "(or not a regular file)")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise EdgecError(f"initializer {name!r}: bad external data offset/length") from None
    size = p.stat().st_size
    if offset < 0 or offset > size or (length is not None and (length < 0 or offset + length > size)):
        raise EdgecError(f"initializer {name!r}: external data range is outside {loc[:120]!r}")
    if length is not None and length != expected:
        raise EdgecError(f"initializer {name!r}: external data length {length:,} bytes, but its "
                         f"shape needs {expected:,}")
    if length is None and size - offset != expected:
        raise EdgecError(f"initializer {name!r}: external data file {loc[:120]!r} holds "
                         f"{size - offset:,} bytes after offset {offset}, its shape needs {expected:,} "
                         "(give a length to read part of a file)")
    with open(p, "rb") as f:
        f.seek(offset)
        data = f.read(expected)
    tp.raw_data = data
    del tp.external_data[:]
    tp.data_location = 0


def _itemsize(elem_type: int) -> int:
    """Bytes per element of an ONNX element type (1 for types edgec refuses later)."""
    from onnx import helper
    try:
        return max(1, np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except Exception:  # noqa: BLE001 - unknown codes are refused when the data is decoded
        return 1


def _np_dtype_name(elem_type: int) -> str:
    from onnx import helper
    try:
        npt = helper.tensor_dtype_to_np_dtype(elem_type)
    except Exception:  # noqa: BLE001
        raise EdgecError(f"unknown ONNX element type {elem_type}") from None
    try:
        return dtypes.from_numpy(npt)
    except EdgecError:
        raise UnsupportedError([f"element type {np.dtype(npt).name}"]) from None


def _read_model(path: Path):
    import onnx
    from google.protobuf.message import DecodeError
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EdgecError(f"cannot read: {e.strerror}", str(path)) from None
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, RuntimeError, ValueError, TypeError) as e:
        raise EdgecError("not a valid ONNX model (the protobuf does not parse)", str(path)) from e
    except Exception as e:  # noqa: BLE001 - protobuf raises assorted errors
        raise EdgecError("not a valid ONNX model (the protobuf does not parse)", str(path)) from e
    if model.ir_version <= 0 or not model.HasField("graph") or (
            not model.graph.node and not model.graph.output):
        raise EdgecError("not an ONNX model (no graph)", str(path))
    bad = _non_utf8_name(model)
    if bad:
        raise EdgecError(f"the model has a {bad} that is not valid UTF-8", str(path))
    return model


def _non_utf8_name(model) -> str:
    """protobuf hands proto2 string fields that are not UTF-8 back as bytes: find one."""
    g = model.graph
    for what, items in (("graph name", [g.name]),
                        ("initializer name", [t.name for t in g.initializer]),
                        ("input name", [v.name for v in g.input]),
                        ("output name", [v.name for v in g.output]),
                        ("value_info name", [v.name for v in g.value_info]),
                        ("opset domain", [o.domain for o in model.opset_import])):
        if any(isinstance(x, bytes) for x in items):
            return what
    for n in g.node:
        if any(isinstance(x, bytes) for x in (n.op_type, n.domain, n.name, *n.input, *n.output,
                                               *[a.name for a in n.attribute])):
            return f"node field (node {n.name!r})"
    return ""


def load(path: Path, input_shapes: dict | None = None, **_options) -> Graph:
    model = _read_model(path)
    return from_model(model, input_shapes, model_dir=path.parent, where=str(path))


def from_model(model, input_shapes: dict | None = None, model_dir: Path | None = None,
               where: str = "model", bind: dict | None = None) -> Graph:
    """Import an in-memory ModelProto.  ``bind`` maps graph input names to arrays:
    those inputs become constants (frozen parameters such as shapes or axes)."""
    input_shapes = dict(input_shapes or {})
    try:
        return _import(model, input_shapes, model_dir, dict(bind or {}))
    except EdgecError as e:
        if e.where is None:
            e.where = where
            e.args = (f"{where}: {e.args[0]}",)
        raise


def _import(model, input_shapes: dict, model_dir: Path | None, bind: dict) -> Graph:
    opsets = {}
    for o in model.opset_import:
        dom = "" if o.domain in ("", "ai.onnx") else o.domain
        opsets[dom] = int(o.version)
    from onnx import defs
    if opsets.get("", 0) > defs.onnx_opset_version():
        raise UnsupportedError([f"opset {opsets['']} (the newest edgec knows is "
                                f"{defs.onnx_opset_version()})"])
    if model.functions:
        check_inlined_size(model)
        try:
            from onnx import inliner
            model = inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001
            raise EdgecError(f"cannot inline the model's local functions ({e})") from None
    graph = model.graph
    gname = graph.name or "model"
    g = Graph(gname[:MAX_NAME])
    ctx = OnnxContext(g, opsets, model_dir)

    label_tables = _string_label_tables(graph)
    for tp in graph.initializer:
        _check_name(tp.name, "initializer")
        if tp.name in label_tables:
            # a table of class labels (strings cannot exist in C): the indices stand for
            # the labels, and the table travels with the tensors computed from it
            name = g.unique_name(tp.name)
            table = label_tables[tp.name]
            g.add_tensor(name, tuple(int(d) for d in tp.dims),
                         "int64", data=np.arange(len(table), dtype=np.int64).reshape(
                             tuple(int(d) for d in tp.dims)), origin=tp.name)
            g.meta.labels[name] = table
            ctx.names[tp.name] = name
            continue
        arr = tensor_to_numpy(tp, model_dir, ctx.budget)
        name = g.unique_name(tp.name)
        dt = _np_dtype_name(tp.data_type)
        g.add_tensor(name, arr.shape, dt, data=arr, origin=tp.name)
        if tp.name in ctx.names:
            raise EdgecError(f"duplicate initializer {tp.name[:80]!r}")
        ctx.names[tp.name] = name
    for sp in getattr(graph, "sparse_initializer", []):
        raise UnsupportedError(["sparse initializers"])

    for vi in graph.input:
        if vi.name in bind and vi.name not in ctx.names:
            arr = np.asarray(bind.pop(vi.name))
            name = g.unique_name(vi.name)
            g.add_tensor(name, arr.shape, _np_dtype_name(vi.type.tensor_type.elem_type),
                         data=arr, origin=vi.name)
            ctx.names[vi.name] = name
    if bind:
        raise EdgecError(f"cannot bind {', '.join(sorted(bind))[:120]}: not a model input")
    unnamed = input_shapes.pop("", None)
    real_inputs = [vi for vi in graph.input if vi.name not in ctx.names]
    if unnamed is not None:
        if len(real_inputs) != 1:
            raise EdgecError("--input-shape without a name needs a model with one input")
        input_shapes[real_inputs[0].name] = unnamed
    for name in input_shapes:
        if name not in {vi.name for vi in real_inputs}:
            raise EdgecError(f"--input-shape names {name[:80]!r}, which is not a model input "
                             f"(inputs: {', '.join(vi.name[:40] for vi in real_inputs)})")
    if len({vi.name for vi in real_inputs}) != len(real_inputs):
        dup = next(vi.name for k, vi in enumerate(real_inputs)
                   if vi.name in {v.name for v in real_inputs[:k]})
        raise EdgecError(f"duplicate graph input {dup[:80]!r}")
    for vi in real_inputs:
        _check_name(vi.name, "input")
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedError([f"non-tensor input {vi.name[:80]!r}"])
        dt = _np_dtype_name(tt.elem_type)
        dims = []
        dynamic = False
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif d.HasField("dim_value") and d.dim_value == 0 and not d.dim_param:
                dims.append(0)  # an empty tensor: fine if nothing computes on it
            elif d.HasField("dim_value") and d.dim_value < 0 and not d.dim_param:
                raise EdgecError(f"input {vi.name[:80]!r} has a dimension of {d.dim_value}")
            else:
                dims.append(-1)
                dynamic = True
        if vi.name in input_shapes:
            shape = tuple(input_shapes[vi.name])
            if len(shape) != len(dims) and tt.HasField("shape"):
                raise EdgecError(f"--input-shape gives {len(shape)} dimensions for input "
                                 f"{vi.name[:80]!r}, which has {len(dims)}")
            for d, s in zip(dims, shape):
                if d > 0 and d != s:
                    raise EdgecError(f"--input-shape {list(shape)} conflicts with the fixed "
                                     f"shape of input {vi.name[:80]!r}")
        elif dynamic and tt.HasField("shape") and dims[0] == -1 and all(d >= 0 for d in dims[1:]) \
                and len(dims) > 1:
            # a leading dynamic batch dimension: one sample per invoke, as on a microcontroller
            shape = (1, *dims[1:])
            dim0 = tt.shape.dim[0].dim_param or "?"
            g.meta.notes.append(
                f"input {vi.name[:80]!r}: dynamic batch dimension {dim0[:40]!r} set to 1 "
                f"(--input-shape {_hint_name(vi.name)}:" + "x".join(str(d) for d in shape) + " chooses another)")
        elif dynamic or not tt.HasField("shape"):
            raise EdgecError(f"input {vi.name[:80]!r} has a dynamic shape {_fmt_dims(tt)}; "
                             f"give it with --input-shape {_hint_name(vi.name)}:" +
                             "x".join(str(d if d > 0 else 1) for d in dims or [1]))
        else:
            shape = tuple(dims)
        name = g.unique_name(vi.name)
        t = g.add_tensor(name, shape, dt, origin=vi.name)
        ctx.names[vi.name] = name
        g.inputs.append(name)
        if t.size == 0:
            # an empty input has no values: its consumers see an empty constant
            # (so e.g. a reduction over it folds), the input stays in the API
            ctx.names[vi.name] = g.add_const(np.zeros(shape, dtypes.np_dtype(dt)), name + "_empty")

    nodes = _sorted_nodes(graph)
    missing = []
    for n in nodes:
        dom = "" if n.domain in ("", "ai.onnx") else n.domain
        if (dom, n.op_type) not in ops.ONNX_IMPORTERS and _schema_function(ctx, n) is None:
            missing.append(n.op_type if not dom else f"{dom}.{n.op_type}")
    if missing:
        raise UnsupportedError(missing)

    # one pass lists every node edgec cannot compile: after a refused node the pass goes
    # on with the nodes that do not read what it computes (ONNX declares no shape for it)
    unsupported: list[str] = []
    needs: list[str] = []
    refused: set[str] = set()
    for n in nodes:
        for o in n.output:
            _check_name(o, "tensor")
        if refused and refused.intersection(_reads(n)):
            refused.update(o for o in n.output if o)
            continue
        try:
            _import_node(ctx, n)
        except UnsupportedError as e:
            unsupported += e.items
            needs += e.needs_const
            refused.update(o for o in n.output if o)
    if unsupported:
        raise UnsupportedError(unsupported, needs_const=needs)

    if g.meta.labels:
        from ..ops.ml import propagate_labels
        propagate_labels(g)

    outs = []
    for vi in graph.output:
        if vi.name not in ctx.names:
            raise EdgecError(f"graph output {vi.name[:80]!r} is never computed")
        outs.append(ctx.names[vi.name])
    if not outs:
        raise EdgecError("the model has no outputs")
    g.outputs = outs
    g.remove_dead()
    g.validate()
    return g


def _reads(n) -> set[str]:
    """The tensors a node reads: its inputs and those its subgraphs (If / Loop / Scan
    bodies) name from the enclosing graph."""
    names = set(n.input)
    for a in n.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for m in sub.node:
                names |= _reads(m)
    return names


def check_inlined_size(model) -> None:
    """Count the nodes inlining the model's local functions would make, before onnx's
    inliner (C++, not interruptible) makes them: a function calling the previous one
    twice doubles the count at every level, so a small file can ask for 2^40 nodes.
    Over ``limits.nodes`` (or a function that calls itself) is refused.  Subgraphs
    (If / Loop / Scan bodies) count with their nodes."""
    funcs = {(f.domain, f.name): f for f in model.functions}
    limit = limits.current().nodes
    size: dict = {}
    active: set = set()

    def nodes(node_list) -> int:
        total = 0
        for n in node_list:
            callee = (n.domain, n.op_type)
            total += function(callee) if callee in funcs else 1
            for a in n.attribute:
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    total += nodes(sub.node)
            if total > limit:
                break   # enough to know it is over
        return total

    def function(key) -> int:
        if key not in size:
            if key in active:
                raise EdgecError(f"local function {key[1][:80]!r} calls itself")
            active.add(key)
            size[key] = nodes(funcs[key].node)
            active.discard(key)
        return size[key]

    if nodes(model.graph.node) > limit:
        raise limits.exceeded("nodes", "inlining the model's local functions makes more nodes than that")


def _string_label_tables(graph) -> dict[str, list[str]]:
    """String initializers used only as the table of ai.onnx.ml ArrayFeatureExtractor
    (how converters map a class index to its label): {name: labels}.  Any other string
    tensor stays unsupported."""
    from onnx import TensorProto
    strings = {tp.name: tp for tp in graph.initializer if tp.data_type == TensorProto.STRING}
    if not strings:
        return {}
    ok = {name: True for name in strings}
    for n in graph.node:
        for k, i in enumerate(n.input):
            if i in ok and not (n.op_type == "ArrayFeatureExtractor" and k == 0
                                and n.domain == "ai.onnx.ml"):
                ok[i] = False
    out = {}
    for name, tp in strings.items():
        if ok[name] and len(tp.dims) <= 1:
            count = int(tp.dims[0]) if tp.dims else 1
            if count != len(tp.string_data):
                raise EdgecError(f"string initializer {name[:80]!r}: {len(tp.string_data)} strings "
                                 f"for its shape {[int(d) for d in tp.dims]}")
            out[name] = [v.decode("utf-8", "replace") for v in tp.string_data]
    return out


def _import_node(ctx: OnnxContext, n, depth: int = 0) -> None:
    dom = "" if n.domain in ("", "ai.onnx") else n.domain
    fn = ops.ONNX_IMPORTERS.get((dom, n.op_type))
    try:
        _check_input_types(ctx, n)
        if fn is not None:
            fn(ctx, n)
        else:
            _expand_function(ctx, n, depth)
    except UnsupportedError:
        raise
    except EdgecError as e:
        label = (n.name or n.op_type)[:80]
        if "node " not in str(e):
            raise EdgecError(f"node {label!r} ({n.op_type}): {e}") from None
        raise
    except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
        # an importer indexing attributes or inputs the node does not have in the
        # expected form: a malformed model (bugs in valid models surface in the tests)
        label = (n.name or n.op_type)[:80]
        msg = str(e).splitlines()[0][:120] if str(e) else ""
        raise EdgecError(f"node {label!r} ({n.op_type}): malformed attributes or inputs "
                         f"({type(e).__name__}: {msg})") from None


def _schema_function(ctx: OnnxContext, n):
    """The ONNX schema of an operator edgec has no importer for, when the
    standard defines it as a function of other operators; else None."""
    schema = _schema(n.domain, n.op_type, ctx.opsets.get(_domain(n.domain), 1))
    if schema is not None and (schema.has_function or schema.has_context_dependent_function):
        return schema
    return None


MAX_FUNCTION_DEPTH = 8


def _expand_function(ctx: OnnxContext, n, depth: int) -> None:
    """Import an operator through its function body in the ONNX standard (for
    example LayerNormalization, Attention or NegativeLogLikelihoodLoss): the
    body's nodes, specialized for this node's attributes and input types,
    replace it, with internal tensors renamed apart."""
    from onnx import FunctionProto, helper
    dom = "" if n.domain in ("", "ai.onnx") else n.domain
    schema = _schema_function(ctx, n)
    if schema is None or depth >= MAX_FUNCTION_DEPTH:
        raise UnsupportedError([n.op_type if not dom else f"{dom}.{n.op_type}"])
    opset = ctx.opsets.get(dom, 1)
    node = type(n)()
    node.CopyFrom(n)
    present = {a.name for a in node.attribute}
    for aname, adef in schema.attributes.items():
        if aname not in present and adef.default_value.name:
            node.attribute.append(adef.default_value)
    fp = FunctionProto()
    if schema.has_context_dependent_function:
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
        types = []
        for i in node.input:
            if not i:
                types.append(b"")
                continue
            t = ctx.t(ctx.inp(node, list(node.input).index(i)))
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtypes.np_dtype(t.dtype)))
            types.append(helper.make_tensor_type_proto(elem, list(t.shape)).SerializeToString())
        try:
            fp.ParseFromString(schema.get_context_dependent_function_with_opset_version(
                max(versions), node.SerializeToString(), types) if versions else
                schema.get_context_dependent_function(node.SerializeToString(), types))
        except Exception as e:  # noqa: BLE001 - the standard cannot build the body
            raise UnsupportedError([f"{n.op_type} ({str(e).splitlines()[0][:80]})"]) from None
    else:
        versions = [v for v in schema.function_opset_versions if v <= opset]
        fp.ParseFromString(schema.get_function_with_opset_version(max(versions)) if versions
                           else schema.function_body.SerializeToString())
    if not fp.node:
        raise UnsupportedError([n.op_type])
    ctx.fn_count = getattr(ctx, "fn_count", 0) + 1
    prefix = f"{(n.name or n.op_type)[:40]}__f{ctx.fn_count}__"
    rename = {}
    for formal, actual in zip(fp.input, node.input):
        rename[formal] = actual
    for formal in list(fp.input)[len(node.input):]:
        rename[formal] = ""
    for formal, actual in zip(fp.output, node.output):
        rename[formal] = actual
    attrs = {a.name: a for a in fp.attribute_proto}
    attrs.update({a.name: a for a in node.attribute})

    def name_of(t: str) -> str:
        if not t:
            return ""
        if t not in rename:
            rename[t] = prefix + t
        return rename[t]

    body = []
    for bn in fp.node:
        c = type(n)()
        c.CopyFrom(bn)
        del c.input[:]
        del c.output[:]
        c.input.extend(name_of(i) for i in bn.input)
        c.output.extend(name_of(o) for o in bn.output)
        del c.attribute[:]
        for a in bn.attribute:
            if a.ref_attr_name:
                if a.ref_attr_name in attrs:
                    b = type(a)()
                    b.CopyFrom(attrs[a.ref_attr_name])
                    b.name = a.name
                    c.attribute.append(b)
            elif a.type == a.GRAPH:
                b = type(a)()
                b.CopyFrom(a)
                b.g.CopyFrom(rename_subgraph(a.g, rename, prefix))
                c.attribute.append(b)
            elif a.type == a.GRAPHS:
                raise UnsupportedError([f"{n.op_type} (a function body with graph lists)"])
            else:
                c.attribute.append(a)
        c.name = prefix + (bn.name or bn.op_type)
        body.append(c)
    saved = dict(ctx.opsets)
    for o in fp.opset_import:
        ctx.opsets["" if o.domain in ("", "ai.onnx") else o.domain] = int(o.version)
    try:
        for c in body:
            _import_node(ctx, c, depth + 1)
    finally:
        ctx.opsets = saved


def rename_subgraph(graph, mapping: dict, prefix: str):
    """A copy of ``graph`` (a branch or loop body) whose own tensors carry
    ``prefix`` and whose references to enclosing tensors follow ``mapping``."""
    g = type(graph)()
    g.CopyFrom(graph)
    local = dict(mapping)
    for t in g.initializer:
        local[t.name] = prefix + t.name
        t.name = local[t.name]
    for vi in g.input:
        local[vi.name] = prefix + vi.name
        vi.name = local[vi.name]
    for nd in g.node:
        for j, i in enumerate(nd.input):
            nd.input[j] = local.get(i, i)
        for j, o in enumerate(nd.output):
            if o:
                local[o] = prefix + o
                nd.output[j] = local[o]
        for a in nd.attribute:
            if a.type == a.GRAPH:
                a.g.CopyFrom(rename_subgraph(a.g, local, prefix))
            for sub in (a.graphs if a.type == a.GRAPHS else []):
                sub.CopyFrom(rename_subgraph(sub, local, prefix))
    for vo in g.output:
        vo.name = local.get(vo.name, vo.name)
    return g


@ops.onnx_op("If")
def _onnx_if(ctx: OnnxContext, node) -> None:
    """If with a condition known at compile time: the chosen branch, inlined."""
    cond = np.asarray(ctx.const_input(node, 0, "condition")).reshape(-1)
    if cond.size != 1:
        raise EdgecError("If: the condition must have one element")
    branch = ctx.attr_graph(node, "then_branch" if bool(cond[0]) else "else_branch")
    if branch is None:
        raise EdgecError("If without its branches")
    ctx.fn_count = getattr(ctx, "fn_count", 0) + 1
    sub = rename_subgraph(branch, {}, f"{(node.name or 'If')[:40]}__b{ctx.fn_count}__")
    if len(sub.output) != len(node.output):
        raise EdgecError(f"If: the branch has {len(sub.output)} outputs, the node {len(node.output)}")
    for t in sub.initializer:
        arr = tensor_to_numpy(t, ctx.model_dir, ctx.budget)
        name = ctx.g.unique_name(t.name)
        ctx.g.add_tensor(name, arr.shape, _np_dtype_name(t.data_type), data=arr, origin=t.name)
        ctx.names[t.name] = name
    for bn in sub.node:
        _import_node(ctx, bn, 1)
    for j, vo in enumerate(sub.output):
        if not node.output[j]:
            continue
        if vo.name not in ctx.names:
            raise EdgecError(f"If: branch output {vo.name[:80]!r} is never computed")
        src = ctx.names[vo.name]
        t = ctx.t(src)
        ctx.add("Reshape", [src], [ctx.out(node, j)], {"shape": list(t.shape)}, node.name)


MAX_UNROLL = 256


def _inline_body(ctx: OnnxContext, body, inputs: list[str], tag: str) -> list[str]:
    """Import one copy of a loop body whose graph inputs are bound to the IR
    tensors ``inputs``; returns the IR names of its outputs."""
    ctx.fn_count = getattr(ctx, "fn_count", 0) + 1
    sub = rename_subgraph(body, {}, f"{tag[:40]}__i{ctx.fn_count}__")
    if len(sub.input) != len(inputs):
        raise EdgecError(f"the loop body has {len(sub.input)} inputs, {len(inputs)} given")
    for vi, name in zip(sub.input, inputs):
        ctx.names[vi.name] = name
    for t in sub.initializer:
        arr = tensor_to_numpy(t, ctx.model_dir, ctx.budget)
        name = ctx.g.unique_name(t.name)
        ctx.g.add_tensor(name, arr.shape, _np_dtype_name(t.data_type), data=arr, origin=t.name)
        ctx.names[t.name] = name
    for bn in sub.node:
        _import_node(ctx, bn, 1)
    outs = []
    for vo in sub.output:
        if vo.name not in ctx.names:
            raise EdgecError(f"loop body output {vo.name[:80]!r} is never computed")
        outs.append(ctx.names[vo.name])
    return outs


def _stack(ctx: OnnxContext, parts: list[str], axis: int, out: str, name: str) -> None:
    """Stack equally shaped tensors along a new axis (Reshape + Concat)."""
    if not parts:
        raise UnsupportedError(["a loop with no iterations"])
    shape = list(ctx.t(parts[0]).shape)
    axis = axis + len(shape) + 1 if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise EdgecError(f"scan output axis {axis} out of range")
    new = shape[:axis] + [1] + shape[axis:]
    ups = []
    for p in parts:
        u = ctx.tmp(p + "_up")
        ctx.add("Reshape", [p], [u], {"shape": new}, name)
        ups.append(u)
    if len(ups) == 1:
        ctx.add("Reshape", [ups[0]], [out], {"shape": new}, name)
    else:
        ctx.add("Concat", ups, [out], {"axis": axis}, name)


@ops.onnx_op("Scan")
def _onnx_scan(ctx: OnnxContext, node) -> None:
    """Scan, unrolled: the static length of the scanned axis is the trip count."""
    if ctx.opset < 9:
        raise UnsupportedError(["Scan (opset 8, with sequence_lens)"])
    body = ctx.attr_graph(node, "body", required=True)
    nscan = int(ctx.attr(node, "num_scan_inputs"))
    ins = [ctx.inp(node, i) for i in range(len(node.input))]
    if not 0 < nscan <= len(ins):
        raise EdgecError(f"Scan: num_scan_inputs {nscan} for {len(ins)} inputs")
    nstate = len(ins) - nscan
    scans = ins[nstate:]
    in_axes = list(ctx.attr(node, "scan_input_axes") or [0] * nscan)
    in_dirs = list(ctx.attr(node, "scan_input_directions") or [0] * nscan)
    nout = len(node.output) - nstate
    out_axes = list(ctx.attr(node, "scan_output_axes") or [0] * nout)
    out_dirs = list(ctx.attr(node, "scan_output_directions") or [0] * nout)
    if nout < 0 or len(in_axes) != nscan or len(in_dirs) != nscan or len(out_axes) != nout or \
            len(out_dirs) != nout or not set(in_dirs + out_dirs) <= {0, 1}:
        raise EdgecError("Scan: scan axes and directions do not match the scanned inputs and "
                         "outputs (directions 0 or 1)")
    lens = set()
    axes = []
    for x, a in zip(scans, in_axes):
        r = ctx.t(x).rank
        a = a + r if a < 0 else a
        axes.append(a)
        lens.add(ctx.t(x).shape[a])
    if len(lens) != 1:
        raise EdgecError(f"Scan inputs of different lengths {sorted(lens)}")
    T = lens.pop()
    if T > MAX_UNROLL:
        raise UnsupportedError([f"Scan over {T} steps (edgec unrolls at most {MAX_UNROLL})"])
    from ..ops.slice import add_slice
    state = ins[:nstate]
    collected = [[] for _ in range(nout)]
    for t in range(T):
        step = []
        for x, a, d in zip(scans, axes, in_dirs):
            shape = list(ctx.t(x).shape)
            pos = T - 1 - t if d else t
            st, sp, sz = [0] * len(shape), [1] * len(shape), list(shape)
            st[a], sz[a] = pos, 1
            sl = ctx.tmp(f"{x}_t{t}")
            add_slice(ctx, x, sl, st, sp, sz, node.name)
            sq = ctx.tmp(f"{x}_s{t}")
            ctx.add("Reshape", [sl], [sq], {"shape": shape[:a] + shape[a + 1:]}, node.name)
            step.append(sq)
        outs = _inline_body(ctx, body, state + step, node.name or "Scan")
        state = outs[:nstate]
        for j in range(nout):
            collected[j].append(outs[nstate + j])
    for j in range(nstate):
        if node.output[j]:
            ctx.add("Reshape", [state[j]], [ctx.out(node, j)], {"shape": list(ctx.t(state[j]).shape)},
                    node.name)
    for j in range(nout):
        if node.output[nstate + j]:
            parts = collected[j][::-1] if out_dirs[j] else collected[j]
            _stack(ctx, parts, out_axes[j], ctx.out(node, nstate + j), node.name)


@ops.onnx_op("Loop")
def _onnx_loop(ctx: OnnxContext, node) -> None:
    """Loop, unrolled: the trip count and every iteration's condition must be
    known at compile time."""
    body = ctx.attr_graph(node, "body", required=True)
    M = ctx.const_input(node, 0, "trip count") if ctx.inp(node, 0) else None
    cond = ctx.const_input(node, 1, "condition") if ctx.inp(node, 1) else None
    M = None if M is None else int(np.asarray(M).reshape(-1)[0])
    go = True if cond is None else bool(np.asarray(cond).reshape(-1)[0])
    if M is None and cond is None:
        raise UnsupportedError(["Loop without a trip count or condition"])
    state = [ctx.inp(node, i) for i in range(2, len(node.input))]
    nstate = len(state)
    nout = len(node.output) - nstate
    collected = [[] for _ in range(nout)]
    it = 0
    while go and (M is None or it < M):
        if it >= MAX_UNROLL:
            raise UnsupportedError([f"Loop of more than {MAX_UNROLL} iterations"])
        i_t = ctx.g.add_const(np.array(it, np.int64), "loop_iter")
        c_t = ctx.g.add_const(np.array(go), "loop_cond")
        outs = _inline_body(ctx, body, [i_t, c_t] + state, node.name or "Loop")
        c = ctx.g.const(outs[0])
        if c is None:
            raise UnsupportedError(["Loop with a condition computed at run time"])
        go = bool(np.asarray(c).reshape(-1)[0])
        state = outs[1:1 + nstate]
        for j in range(nout):
            collected[j].append(outs[1 + nstate + j])
        it += 1
    for j in range(nstate):
        if node.output[j]:
            ctx.add("Reshape", [state[j]], [ctx.out(node, j)], {"shape": list(ctx.t(state[j]).shape)},
                    node.name)
    for j in range(nout):
        if node.output[nstate + j]:
            _stack(ctx, collected[j], 0, ctx.out(node, nstate + j), node.name)


def _fmt_dims(tt) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                           for d in tt.shape.dim) + "]"


def _hint_name(name: str) -> str:
    return name if name.replace("_", "").replace(".", "").isalnum() else "NAME"


def _check_name(name: str, what: str) -> None:
    if len(name) > MAX_NAME:
        raise EdgecError(f"{what} name of {len(name)} characters (more than {MAX_NAME})")


def _sorted_nodes(graph):
    """Kahn's order over the ONNX nodes (stable); a cycle is an error."""
    import heapq
    produced_by = {}
    for idx, n in enumerate(graph.node):
        for o in n.output:
            if o:
                if o in produced_by:
                    raise EdgecError(f"tensor {o[:80]!r} is produced by more than one node")
                produced_by[o] = idx
    indeg = [0] * len(graph.node)
    users: list[list[int]] = [[] for _ in graph.node]
    for idx, n in enumerate(graph.node):
        for d in {produced_by[i] for i in n.input if i in produced_by}:
            indeg[idx] += 1
            users[d].append(idx)
    ready = [i for i, k in enumerate(indeg) if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(graph.node[i])
        for u in users[i]:
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(graph.node):
        stuck = next(i for i, k in enumerate(indeg) if k > 0)
        n = graph.node[stuck]
        raise EdgecError(f"the graph has a cycle (through node {(n.name or n.op_type)[:80]!r})")
    return order
