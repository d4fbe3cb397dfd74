"""TFLite flatbuffer importer (builtin operators; int8 per-channel and float models).

Every tensor of the main subgraph becomes an IR tensor carrying its TFLite
quantization parameters and its index (``origin``), so intermediate results can
be compared with the TFLite Micro interpreter tensor by tensor.  Each operator
is handed to the importer its operator module registered with
:func:`edgec.ops.tflite_op`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir import limits
from .. import ops
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, QuantParams

# TFLite TensorType -> IR dtype (None: not supported)
_TYPES = {0: "float32", 1: None, 2: "int32", 3: "uint8", 4: "int64", 5: None, 6: "bool",
          7: "int16", 8: None, 9: "int8", 10: "float64", 11: None, 12: "uint64", 13: None,
          14: None, 15: "uint32", 16: "uint16", 17: None}
_TYPE_NAMES = {1: "float16", 5: "string", 8: "complex64", 11: "complex128", 13: "resource",
               14: "variant", 17: "int4"}


def builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


class TfliteContext:
    def __init__(self, g: Graph, model, subgraph, names: dict[int, str]):
        self.g = g
        self.model = model
        self.sg = subgraph
        self.names = names
        self.opname = ""
        self.code = ""  # the TFLite operator being imported (LOGISTIC, CUSTOM:...)

    def inputs(self, op) -> list[str]:
        return [self.names[i] if i >= 0 else "" for i in op.InputsAsNumpy()] \
            if op.InputsLength() else []

    def outputs(self, op) -> list[str]:
        return [self.names[i] if i >= 0 else "" for i in op.OutputsAsNumpy()] \
            if op.OutputsLength() else []

    def options(self, op, cls_name: str):
        import tflite
        cls = getattr(tflite, cls_name)
        tab = op.BuiltinOptions()
        o = cls()
        if tab is None:
            return None
        o.Init(tab.Bytes, tab.Pos)
        return o

    def t(self, name: str):
        return self.g.tensors[name]

    def const(self, name: str):
        return self.g.const(name)

    def tmp(self, hint: str) -> str:
        return self.g.unique_name(hint)

    def add(self, op: str, inputs, outputs, attrs=None, name: str = ""):
        return self.g.add_node(op, inputs, outputs, attrs, name or self.opname)


def load(path: Path, input_shapes: dict | None = None, **_options) -> Graph:
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise EdgecError(f"cannot read: {e.strerror}", str(path)) from None
    try:
        return from_bytes(buf, input_shapes, name=path.stem)
    except EdgecError as e:
        if e.where is None:
            e.where = str(path)
            e.args = (f"{path}: {e.args[0]}",)
        raise


def from_bytes(buf: bytes, input_shapes: dict | None = None, name: str = "model") -> Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise EdgecError("not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        return _import(buf, input_shapes or {}, name)
    except (EdgecError, UnsupportedError):
        raise
    except Exception as e:  # noqa: BLE001 - flatbuffers has no verifier: any read may fail
        raise EdgecError(f"malformed TFLite flatbuffer ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:100] if str(e) else 'bad offset'})") from None


def _buffer_bytes(buf: bytes, model, index: int) -> bytes | None:
    if index <= 0 or index >= model.BuffersLength():
        return None
    b = model.Buffers(index)
    off = b.Offset()
    if off > 1:
        size = b.Size()
        if off + size > len(buf):
            raise EdgecError(f"buffer {index} lies outside the file")
        return buf[off:off + size]
    if b.DataLength() == 0:
        return None
    return b.DataAsNumpy().tobytes()


def _import(buf: bytes, input_shapes: dict, name: str) -> Graph:
    from tflite.Model import Model
    model = Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() < 1:
        raise EdgecError("the model has no subgraph")
    sg = model.Subgraphs(0)
    g = Graph(name)
    g.meta.tflite_version = int(model.Version())
    g.meta.tflite_flatbuffer = buf  # the model as given (the tflm backend bundles it)
    ntens = sg.TensorsLength()
    names: dict[int, str] = {}
    const_budget = limits.current().constant_bytes
    for i in range(ntens):
        t = sg.Tensors(i)
        tname = (t.Name() or b"").decode("utf-8", "replace")[:256] or f"t{i}"
        ttype = t.Type()
        dt = _TYPES.get(ttype)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise EdgecError(f"tensor {tname!r} has a negative dimension {list(shape)}")
        data = None
        raw = _buffer_bytes(buf, model, t.Buffer())
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            scale = q.ScaleAsNumpy().astype(np.float32)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(
                scale.shape, np.int64)
            if np.all(scale > 0) and np.all(np.isfinite(scale)):
                if zp.size not in (1, scale.size):
                    raise EdgecError(f"tensor {tname!r}: {scale.size} quantization scales and "
                                     f"{zp.size} zero points")
                quant = QuantParams(scale, zp, int(q.QuantizedDimension()) if scale.size > 1 else None)
            elif dt in ("int8", "uint8", "int16", "int32"):
                # a scale is what kernels multiply and divide by (a bias's is its input's
                # times its weights'): a NaN, zero or negative one is a broken model, not
                # something to ignore; float tensors' quantization means nothing to edgec
                raise EdgecError(f"tensor {tname!r}: quantization scale {scale.tolist()[:4]} is not "
                                 "positive and finite")
        if dt is None:
            if raw is None and ttype in _TYPE_NAMES:
                dt = None
            if dt is None:
                # Kept only if unused; the op using it will report it.
                dt_name = _TYPE_NAMES.get(ttype, f"type {ttype}")
                g.meta.unsupported_types[i] = dt_name
                continue
        if raw is not None:
            npt = np.dtype(np.bool_ if dt == "bool" else dt)
            count = int(np.prod(shape)) if shape else 1
            if len(raw) != count * npt.itemsize:
                raise EdgecError(f"tensor {tname!r}: buffer of {len(raw)} bytes does not "
                                 f"match its shape {list(shape)} ({dt})")
            const_budget -= len(raw)
            if const_budget < 0:
                raise limits.exceeded("constant_bytes", f"tensor {tname[:80]!r} ({len(raw):,} bytes) "
                                      "takes the model's constants")
            data = np.frombuffer(raw, dtype=npt).reshape(shape)
        uname = g.unique_name(tname)
        if data is None and i in {int(x) for x in sg.InputsAsNumpy()} and tname in input_shapes:
            shape = tuple(input_shapes[tname])
        g.add_tensor(uname, shape, dt, data=data, quant=quant, origin=i)
        names[i] = uname
        if data is None and t.ShapeSignatureLength() and (t.ShapeSignatureAsNumpy() < 0).any():
            # a dimension the converter could not fix: ``shape`` holds a placeholder 1
            # there, the shape inference of the producing operator decides
            g.meta.provisional_shapes.add(uname)

    def tensor_name(i: int) -> str:
        if i not in names:
            what = g.meta.unsupported_types.get(i)
            if what:
                raise UnsupportedError([f"{what} tensors"])
            raise EdgecError(f"operator refers to tensor {i}, which does not exist")
        return names[i]

    for i in (sg.InputsAsNumpy() if sg.InputsLength() else []):
        n = tensor_name(int(i))
        if g.tensors[n].is_const:
            continue
        g.inputs.append(n)
    for i in (sg.OutputsAsNumpy() if sg.OutputsLength() else []):
        g.outputs.append(tensor_name(int(i)))
    if not g.outputs:
        raise EdgecError("the model has no outputs")
    for n in g.inputs:
        if any(d == 0 for d in g.tensors[n].shape) or not g.tensors[n].shape:
            if not g.tensors[n].shape:
                continue
            raise EdgecError(f"input {n!r} has a zero dimension {list(g.tensors[n].shape)}")

    bnames = builtin_names()
    codes = []
    for k in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(k)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            custom = (oc.CustomCode() or b"").decode("utf-8", "replace")[:64]
            codes.append("CUSTOM:" + custom)
        else:
            codes.append(bnames.get(code, f"BUILTIN_{code}"))

    oplist = [sg.Operators(k) for k in range(sg.OperatorsLength())]
    for op in oplist:
        idx = op.OpcodeIndex()
        if idx >= len(codes):
            raise EdgecError(f"operator uses opcode index {idx}, which does not exist")

    ctx = TfliteContext(g, model, sg, names)
    # One pass lists every operator variant edgec cannot compile, whatever the order: a
    # refused operator adds no node, but its outputs stay declared as the flatbuffer
    # declares them (dtype, shape, quantization), so the operators after it are still
    # imported and checked against them.
    unsupported: list[str] = []
    refused: set[str] = set()  # tensors computed from a refused operator's outputs
    for k, op in enumerate(oplist):
        opname = codes[op.OpcodeIndex()]
        for i in list(op.InputsAsNumpy() if op.InputsLength() else []) + \
                list(op.OutputsAsNumpy() if op.OutputsLength() else []):
            if i >= 0:
                tensor_name(int(i))
        ctx.opname = f"{opname.lower()}_{k}"
        ctx.code = opname
        downstream = bool(refused.intersection(ctx.inputs(op)))
        if downstream or not ops.tflite_supports(opname):
            refused.update(o for o in ctx.outputs(op) if o)
        if not ops.tflite_supports(opname):   # an operator edgec has no importer for at all
            unsupported.append(opname)
            continue
        try:
            first = ctx.inputs(op)[0] if ctx.inputs(op) else None
            ops.tflite_importer(opname, ctx.g.tensors.get(first) if first else None)(ctx, op)
        except UnsupportedError as e:
            unsupported += e.items
            refused.update(o for o in ctx.outputs(op) if o)
        except EdgecError as e:
            if downstream:
                # what a refused operator computes may not be what the file declares
                # (a provisional shape it would have decided): skip, keep listing
                continue
            raise EdgecError(f"operator {k} ({opname}): {e}") from None
    if unsupported:
        raise UnsupportedError(unsupported)
    g.remove_dead()
    g.topo_sort()
    g.validate()
    return g
