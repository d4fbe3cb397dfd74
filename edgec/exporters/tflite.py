"""TFLite flatbuffer writer: an edgec :class:`~edgec.ir.graph.Graph` -> ``.tflite`` bytes.

::

    from edgec.exporters import tflite as tflite_out
    data = tflite_out.to_bytes(g)          # bytes of a TFLite model (schema v3, "TFL3")
    tflite_out.save(g, "model.tflite")     # written atomically

The graph must be expressible in TFLite: activations in TFLite's layouts (``Conv``
and pooling with ``layout="NHWC"``, weights OHWI as the IR keeps them), softmax
along the last axis, fused activations NONE/RELU/RELU6/RELU_N1_TO_1, and operators
that have a TFLite builtin.  Whatever is not expressible is reported at once as an
:class:`~edgec.ir.errors.UnsupportedError` listing every offending node.

What the writer does for each IR operator (the inverse of :mod:`edgec.frontends.tflite`):

==================  ====================================================================
IR                  TFLite
==================  ====================================================================
Conv (group 1)      CONV_2D; grouped: CONV_2D with filters of depth C/group
Conv (depthwise)    DEPTHWISE_CONV_2D (group == C, one input channel per filter);
                    weights OHWI ``[O, KH, KW, 1]`` -> ``[1, KH, KW, O]``, per-channel
                    quantization axis 0 -> 3, depth multiplier O / C
FullyConnected      FULLY_CONNECTED (``keep_num_dims`` from ``keep_dims``)
Add Sub Mul Div     ADD SUB MUL DIV with the fused activation
Max Min             MAXIMUM MINIMUM
MaxPool AvgPool     MAX_POOL_2D AVERAGE_POOL_2D (SAME or VALID padding only)
Softmax LogSoftmax  SOFTMAX (beta) LOG_SOFTMAX
Reshape Copy        RESHAPE (shape as an int32 input and in ReshapeOptions)
Transpose           TRANSPOSE;  Concat: CONCATENATION;  Pad: PAD / PADV2
QMean Reduce*       MEAN / SUM (int8: QMean), REDUCE_MAX / MIN / PROD (axes as an int32 input)
QLeakyRelu          LEAKY_RELU (int8; float: LeakyRelu), alpha in LeakyReluOptions
Quantize            QUANTIZE;  Dequantize: DEQUANTIZE
Relu Clip Sigmoid   RELU, RELU6 / RELU_N1_TO_1 / RELU, LOGISTIC; Tanh Exp Abs Neg Sqrt
HardSwish           TANH EXP ABS NEG SQRT HARD_SWISH
==================  ====================================================================

Convolutions without a bias get a zero bias, as the TFLite converter writes them
(ai-edge-litert's CONV_2D requires one; TFLite Micro's DEPTHWISE_CONV_2D crashes with
a segfault on a -1 bias input); reading the file back gives the same graph plus that
zero bias.  Other absent optional inputs are left out of the operator's input list
rather than written as -1.

Padding: TFLite convolutions only know SAME and VALID; any other explicit padding
of a convolution becomes a PAD operator (zero point for int8, which adds nothing to
the accumulator, exactly as the IR's padding) followed by a VALID convolution.

Quantization: every quantized tensor carries its scale and zero point (vectors for
per-channel, with ``quantized_dimension``).  int32 biases of int8 convolutions and
fully connected layers get TFLite's bias quantization (``x_scale * w_scale[c]``,
zero point 0) when the IR leaves it out.

Constant data goes into buffers (buffer 0 is the empty sentinel), 16-byte aligned.
The output is deterministic: the same graph gives the same bytes.

Adding an operator: register a function with :func:`exporter` that receives the
:class:`Writer` and the node and calls :meth:`Writer.op`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir.bundle import write_file
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, Node, QuantParams

INF = float("inf")

# IR dtype -> TFLite TensorType
TENSOR_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7,
                "int8": 9, "float64": 10, "uint64": 12, "uint32": 15, "uint16": 16}

PADDING_SAME, PADDING_VALID = 0, 1

# Fused activation as the IR's real clamp range -> TFLite ActivationFunctionType
_ACT_CODES = {None: 0, (0.0, INF): 1, (-1.0, 1.0): 2, (0.0, 6.0): 3}

# Operator versions the TFLite converter writes for int8 kernels (float: 1).  Both
# TFLite Micro and ai-edge-litert register every version up to these.
INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2,
                 "SUB": 2, "MUL": 2, "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "SOFTMAX": 2,
                 "LOG_SOFTMAX": 2, "CONCATENATION": 2, "PAD": 2, "PADV2": 2, "QUANTIZE": 2,
                 "DEQUANTIZE": 2, "TRANSPOSE": 2, "RELU": 2, "RELU6": 2, "LOGISTIC": 2,
                 "TANH": 2, "MAXIMUM": 2, "MINIMUM": 2, "RESHAPE": 1, "MEAN": 2, "SUM": 2,
                 "REDUCE_MAX": 2, "REDUCE_MIN": 2, "LEAKY_RELU": 2}

EXPORTERS: dict[str, object] = {}


def exporter(*ops: str):
    """Register ``fn(writer, node)`` as the TFLite lowering of IR ops ``ops``."""
    def deco(fn):
        for o in ops:
            EXPORTERS[o] = fn
        return fn
    return deco


def _builtin_codes() -> dict[str, int]:
    from tflite.BuiltinOperator import BuiltinOperator
    return {k: v for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


class _Unsupported(Exception):
    """Raised by an exporter for one node; collected into one UnsupportedError."""


class Writer:
    """The model under construction: TFLite tensors, buffers, operator codes and operators."""

    def __init__(self, g: Graph):
        self.g = g
        self.tensors: list[dict] = []
        # buffer 0 is the empty sentinel; an entry may also be ("external", offset, size):
        # the schema's form for data outside the flatbuffer (large models; tests of bad files)
        self.buffers: list = [b""]
        # the subgraph's input/output tensor indices (default: the graph's inputs/outputs)
        self.subgraph_inputs: list[int] | None = None
        self.subgraph_outputs: list[int] | None = None
        self.opcodes: list[tuple[str, int]] = []   # (builtin name, version)
        self.operators: list[dict] = []
        self._index: dict[str, int] = {}
        self._names: set[str] = set()
        self._codes = _builtin_codes()

    # -- tensors --------------------------------------------------------------
    def tensor(self, name: str) -> int:
        """The TFLite index of IR tensor ``name`` (created on first use)."""
        if not name:
            return -1
        if name not in self._index:
            t = self.g.tensors[name]
            self._index[name] = self.new_tensor(name, t.shape, t.dtype, t.data, t.quant)
        return self._index[name]

    def new_tensor(self, hint: str, shape, dtype: str, data=None, quant: QuantParams | None = None) -> int:
        """A TFLite tensor with no IR counterpart (reshape shapes, transposed weights...)."""
        if dtype not in TENSOR_TYPES:
            raise _Unsupported(f"{dtype} tensors")
        name = hint or "t"
        k = 1
        while name in self._names:
            name = f"{hint}_{k}"
            k += 1
        self._names.add(name)
        buf = 0
        if data is not None:
            arr = np.asarray(data).astype(_np_type(dtype))  # (not ascontiguousarray: keeps 0-d)
            if tuple(arr.shape) != tuple(shape):
                raise EdgecError(f"tensor {name!r}: data shape {list(arr.shape)} differs from "
                                 f"{list(shape)}")
            self.buffers.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
            buf = len(self.buffers) - 1
        self.tensors.append({"name": name, "shape": [int(d) for d in shape],
                             "type": TENSOR_TYPES[dtype], "buffer": buf, "quant": quant})
        return len(self.tensors) - 1

    def const(self, hint: str, data, dtype: str, quant: QuantParams | None = None) -> int:
        arr = np.asarray(data)
        return self.new_tensor(hint, arr.shape, dtype, arr, quant)

    # -- operators -------------------------------------------------------------
    def op(self, code: str, inputs: list[int], outputs: list[int], options=None,
           version: int | None = None) -> None:
        """Append an operator.  ``options``: ``("Conv2DOptions", {"Padding": 1, ...})``
        with field names as in the TFLite schema (list values become int32 vectors)."""
        if code not in self._codes:
            raise _Unsupported(f"TFLite has no builtin {code}")
        if version is None:
            quantized = any(self.tensors[i]["type"] in (TENSOR_TYPES["int8"], TENSOR_TYPES["int16"])
                            for i in inputs + outputs if i >= 0)
            version = INT8_VERSIONS.get(code, 1) if quantized else 1
        inputs = list(inputs)
        while inputs and inputs[-1] < 0:
            inputs.pop()  # absent trailing optional inputs are left out, not written as -1
        key = (code, version)
        if key not in self.opcodes:
            self.opcodes.append(key)
        self.operators.append({"opcode": self.opcodes.index(key), "inputs": list(inputs),
                               "outputs": list(outputs), "options": options})

    def custom_op(self, name: str, inputs: list[int], outputs: list[int], options: dict | None = None,
                  version: int = 1) -> None:
        """Append a custom operator (``CUSTOM`` with ``custom_code`` ``name``) whose
        options are a flexbuffer map, as Larq Compute Engine's operators are."""
        from flatbuffers import flexbuffers
        key = ("CUSTOM:" + name, version)
        if key not in self.opcodes:
            self.opcodes.append(key)
        raw = bytes(flexbuffers.Dumps(dict(sorted(options.items())))) if options else b""
        self.operators.append({"opcode": self.opcodes.index(key), "inputs": list(inputs),
                               "outputs": list(outputs), "options": None, "custom": raw})

    # -- helpers for exporters ---------------------------------------------------
    def t(self, name: str):
        return self.g.tensors[name]

    def act_code(self, node: Node) -> int:
        act = node.attrs.get("act")
        key = None if act is None else (float(act[0]), float(act[1]))
        if key not in _ACT_CODES:
            raise _Unsupported(f"fused activation clamping to {list(key)}")
        return _ACT_CODES[key]

    def same_or_valid(self, H, W, KH, KW, sh, sw, dh, dw, pads) -> int | None:
        from ..ops.conv import tfl_pads
        if list(pads) == tfl_pads(H, W, KH, KW, sh, sw, dh, dw, PADDING_VALID):
            return PADDING_VALID
        if list(pads) == tfl_pads(H, W, KH, KW, sh, sw, dh, dw, PADDING_SAME):
            return PADDING_SAME
        return None

    # -- serialization ------------------------------------------------------------
    def finish(self, description: str = "edgec") -> bytes:
        import flatbuffers
        import tflite
        b = flatbuffers.Builder(1024 + sum(len(x) for x in self.buffers if isinstance(x, bytes)))

        def ivec(values, dtype=np.int32):
            return b.CreateNumpyVector(np.asarray(list(values), dtype=dtype))

        def table(cls: str, fields: dict) -> int:
            mod = tflite  # the package re-exports every table's builder functions
            vecs = {k: ivec(v) for k, v in fields.items() if isinstance(v, (list, tuple))}
            getattr(mod, f"{cls}Start")(b)
            for k, v in fields.items():
                getattr(mod, f"{cls}Add{k}")(b, vecs.get(k, v))
            return getattr(mod, f"{cls}End")(b)

        # buffers
        buf_offs = []
        for data in self.buffers:
            if isinstance(data, tuple):
                _, offset, size = data
                tflite.BufferStart(b)
                tflite.BufferAddOffset(b, int(offset))
                tflite.BufferAddSize(b, int(size))
            elif data:
                b.StartVector(1, len(data), 16)
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                b.vectorNumElems = len(data)
                dvec = b.EndVector()
                tflite.BufferStart(b)
                tflite.BufferAddData(b, dvec)
            else:
                tflite.BufferStart(b)
            buf_offs.append(tflite.BufferEnd(b))
        # tensors
        t_offs = []
        for t in self.tensors:
            name = b.CreateString(t["name"].encode("utf-8", "replace"))
            shape = ivec(t["shape"])
            q = t["quant"]
            qoff = None
            if q is not None:
                scale = b.CreateNumpyVector(np.asarray(q.scale, np.float32).reshape(-1))
                zp = b.CreateNumpyVector(np.asarray(q.zero_point, np.int64).reshape(-1))
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, scale)
                tflite.QuantizationParametersAddZeroPoint(b, zp)
                tflite.QuantizationParametersAddQuantizedDimension(b, int(q.axis or 0))
                qoff = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, t["type"])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if qoff is not None:
                tflite.TensorAddQuantization(b, qoff)
            t_offs.append(tflite.TensorEnd(b))
        # operators
        from tflite.BuiltinOptions import BuiltinOptions
        op_offs = []
        for o in self.operators:
            ins, outs = ivec(o["inputs"]), ivec(o["outputs"])
            opt_off, opt_type = None, 0
            if o["options"] is not None:
                cls, fields = o["options"]
                opt_off = table(cls, fields)
                opt_type = getattr(BuiltinOptions, cls)
            custom = None
            if o.get("custom"):
                custom = b.CreateNumpyVector(np.frombuffer(o["custom"], np.uint8))
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, o["opcode"])
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opt_off is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt_type)
                tflite.OperatorAddBuiltinOptions(b, opt_off)
            if custom is not None:
                tflite.OperatorAddCustomOptions(b, custom)
                tflite.OperatorAddCustomOptionsFormat(b, 0)  # FLEXBUFFERS
            op_offs.append(tflite.OperatorEnd(b))

        def vec_of(offsets, start):
            start(b, len(offsets))
            for off in reversed(offsets):
                b.PrependUOffsetTRelative(off)
            return b.EndVector()

        g_ins = ivec(self.subgraph_inputs if self.subgraph_inputs is not None
                     else [self.tensor(i) for i in self.g.inputs])
        g_outs = ivec(self.subgraph_outputs if self.subgraph_outputs is not None
                      else [self.tensor(o) for o in self.g.outputs])
        tvec = vec_of(t_offs, tflite.SubGraphStartTensorsVector)
        ovec = vec_of(op_offs, tflite.SubGraphStartOperatorsVector)
        sname = b.CreateString(self.g.name.encode("utf-8", "replace")[:256])
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tvec)
        tflite.SubGraphAddInputs(b, g_ins)
        tflite.SubGraphAddOutputs(b, g_outs)
        tflite.SubGraphAddOperators(b, ovec)
        tflite.SubGraphAddName(b, sname)
        sg = tflite.SubGraphEnd(b)

        code_offs = []
        for code, version in self.opcodes:
            cname = None
            if code.startswith("CUSTOM:"):
                cname = b.CreateString(code[len("CUSTOM:"):])
                c = self._codes["CUSTOM"]
            elif code in self._codes:
                c = self._codes[code]
            else:  # "BUILTIN_<n>": a raw code (tests write unknown ones on purpose)
                c = int(code.rpartition("_")[2])
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
            tflite.OperatorCodeAddBuiltinCode(b, c)
            if cname is not None:
                tflite.OperatorCodeAddCustomCode(b, cname)
            tflite.OperatorCodeAddVersion(b, version)
            code_offs.append(tflite.OperatorCodeEnd(b))
        cvec = vec_of(code_offs, tflite.ModelStartOperatorCodesVector)
        sgvec = vec_of([sg], tflite.ModelStartSubgraphsVector)
        bvec = vec_of(buf_offs, tflite.ModelStartBuffersVector)
        desc = b.CreateString(description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cvec)
        tflite.ModelAddSubgraphs(b, sgvec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bvec)
        root = tflite.ModelEnd(b)
        b.Finish(root, file_identifier=b"TFL3")
        return bytes(b.Output())


def _np_type(dtype: str):
    from ..ir import dtypes
    return dtypes.np_dtype(dtype)


def to_bytes(g: Graph, description: str = "edgec") -> bytes:
    """Serialize ``g`` as a TFLite flatbuffer.  Raises UnsupportedError listing every
    node TFLite cannot express."""
    w = Writer(g)
    problems = []
    for name in g.inputs:
        if g.tensors[name].is_const:
            problems.append(f"constant graph input {name!r}")
    for name in list(g.inputs) + list(g.outputs):
        try:
            w.tensor(name)
        except _Unsupported as e:
            problems.append(str(e))
    for n in g.nodes:
        fn = EXPORTERS.get(n.op)
        if fn is None:
            problems.append(f"{n.op} (no TFLite builtin for it in edgec's writer)")
            continue
        try:
            fn(w, n)
        except _Unsupported as e:
            problems.append(f"{n.op}: {e}")
    if problems:
        raise UnsupportedError(problems, "TFLite export")
    return w.finish(description)


def save(g: Graph, path, description: str = "edgec") -> Path:
    """Write ``g`` to ``path`` as a .tflite file (atomically: temp file + rename)."""
    write_file(path, to_bytes(g, description))
    return Path(path)


# --- operators -------------------------------------------------------------------

def _nhwc(w: Writer, n: Node) -> None:
    if n.attrs.get("layout") != "NHWC":
        raise _Unsupported(f"layout {n.attrs.get('layout')} (TFLite needs NHWC)")


def _bias_quant(w: Writer, x: str, wt: str, nout: int) -> QuantParams | None:
    xq, wq = w.t(x).quant, w.t(wt).quant
    if xq is None or wq is None:
        return None
    xs = float(np.float32(xq.scale[0]))
    ws = np.asarray(wq.scale, np.float32)
    scale = ws * np.float32(xs) if ws.size > 1 else np.full(1, np.float32(xs) * ws[0], np.float32)
    return QuantParams(scale, np.zeros(scale.size, np.int64), 0 if scale.size > 1 else None)


def _bias(w: Writer, n: Node, nout: int, required: bool = False) -> int:
    b = n.input(2)
    if not b:
        if not required:
            return -1
        xt = w.t(n.inputs[0])
        if xt.dtype == "float32":
            return w.const(n.outputs[0] + "_bias", np.zeros(nout, np.float32), "float32")
        return w.const(n.outputs[0] + "_bias", np.zeros(nout, np.int32), "int32",
                       _bias_quant(w, n.inputs[0], n.inputs[1], nout))
    bt = w.t(b)
    if bt.dtype == "int32" and w.t(n.inputs[0]).dtype in ("int8", "int16"):
        if not bt.is_const:
            raise _Unsupported("computed int32 bias")
        q = bt.quant or _bias_quant(w, n.inputs[0], n.inputs[1], nout)
        return w.new_tensor(b, bt.shape, bt.dtype, bt.data, q)
    return w.tensor(b)


@exporter("Conv")
def _conv(w: Writer, n: Node) -> None:
    from ..ops.conv import geometry
    _nhwc(w, n)
    N, H, W, C, O, KH, KW, Cg, OH, OW = geometry(w.g, n)
    a = n.attrs
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    wt = w.t(n.inputs[1])
    if not wt.is_const:
        raise _Unsupported("computed weights")
    x = w.tensor(n.inputs[0])
    padding = w.same_or_valid(H, W, KH, KW, sh, sw, dh, dw, a["pads"])
    if padding is None:
        pt, pl, pb, pr = a["pads"]
        xt = w.t(n.inputs[0])
        padded = w.new_tensor(n.inputs[0] + "_padded", (N, H + pt + pb, W + pl + pr, C),
                              xt.dtype, quant=xt.quant)
        pads = w.const(n.inputs[0] + "_paddings",
                       np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32), "int32")
        w.op("PAD", [x, pads], [padded])
        x = padded
        padding = PADDING_VALID
    act = w.act_code(n)
    y = w.tensor(n.outputs[0])
    depthwise = Cg == 1 and a["group"] == C and C > 1
    if depthwise:
        q = wt.quant
        if q is not None and q.axis is not None:
            q = QuantParams(q.scale, q.zero_point, 3)
        wdata = np.transpose(wt.data, (3, 1, 2, 0))
        wi = w.new_tensor(n.inputs[1], wdata.shape, wt.dtype, wdata, q)
        bias = _bias(w, n, O, required=True)
        w.op("DEPTHWISE_CONV_2D", [x, wi, bias], [y],
             ("DepthwiseConv2DOptions", {"Padding": padding, "StrideW": sw, "StrideH": sh,
                                         "DepthMultiplier": O // C, "FusedActivationFunction": act,
                                         "DilationWFactor": dw, "DilationHFactor": dh}))
        return
    w.op("CONV_2D", [x, w.tensor(n.inputs[1]), _bias(w, n, O, required=True)], [y],
         ("Conv2DOptions", {"Padding": padding, "StrideW": sw, "StrideH": sh,
                            "FusedActivationFunction": act, "DilationWFactor": dw,
                            "DilationHFactor": dh}))


@exporter("FullyConnected")
def _fc(w: Writer, n: Node) -> None:
    wt = w.t(n.inputs[1])
    if not wt.is_const:
        raise _Unsupported("computed weights")
    keep = bool(n.attrs.get("keep_dims"))
    if keep and w.t(n.inputs[0]).shape[-1:] != wt.shape[1:]:
        raise _Unsupported("keep_dims with an input whose last dimension is not K")
    w.op("FULLY_CONNECTED", [w.tensor(n.inputs[0]), w.tensor(n.inputs[1]),
                             _bias(w, n, wt.shape[0])], [w.tensor(n.outputs[0])],
         ("FullyConnectedOptions", {"FusedActivationFunction": w.act_code(n), "KeepNumDims": keep}))


def _binary(code: str, options: str | None):
    def fn(w: Writer, n: Node) -> None:
        opts = None
        if options is not None:
            opts = (options, {"FusedActivationFunction": w.act_code(n)})
        elif n.attrs.get("act") is not None:
            raise _Unsupported("fused activation")
        w.op(code, [w.tensor(i) for i in n.inputs[:2]], [w.tensor(n.outputs[0])], opts)
    return fn


for _ir, _code, _opt in (("Add", "ADD", "AddOptions"), ("Sub", "SUB", "SubOptions"),
                         ("Mul", "MUL", "MulOptions"), ("Div", "DIV", "DivOptions"),
                         ("Max", "MAXIMUM", None), ("Min", "MINIMUM", None)):
    exporter(_ir)(_binary(_code, _opt))


@exporter("MaxPool", "AveragePool")
def _pool(w: Writer, n: Node) -> None:
    from ..ops.pool import geometry
    _nhwc(w, n)
    N, C, H, W, OH, OW = geometry(w.g, n)
    a = n.attrs
    if a.get("ceil_mode"):
        raise _Unsupported("ceil_mode")
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise _Unsupported("dilations")
    if n.op == "AveragePool" and a.get("count_include_pad") and any(a["pads"]):
        raise _Unsupported("count_include_pad with padding")
    kh, kw = a["kernel"]
    sh, sw = a["strides"]
    padding = w.same_or_valid(H, W, kh, kw, sh, sw, 1, 1, a["pads"])
    if padding is None:
        raise _Unsupported(f"explicit padding {a['pads']}")
    w.op("MAX_POOL_2D" if n.op == "MaxPool" else "AVERAGE_POOL_2D", [w.tensor(n.inputs[0])],
         [w.tensor(n.outputs[0])],
         ("Pool2DOptions", {"Padding": padding, "StrideW": sw, "StrideH": sh, "FilterWidth": kw,
                            "FilterHeight": kh, "FusedActivationFunction": w.act_code(n)}))


@exporter("Softmax", "LogSoftmax")
def _softmax(w: Writer, n: Node) -> None:
    rank = w.t(n.inputs[0]).rank
    axis = int(n.attrs.get("axis", -1))
    if axis not in (-1, rank - 1):
        raise _Unsupported(f"axis {axis} (TFLite normalizes the last axis)")
    x, y = w.tensor(n.inputs[0]), w.tensor(n.outputs[0])
    if n.op == "Softmax":
        w.op("SOFTMAX", [x], [y], ("SoftmaxOptions", {"Beta": float(n.attrs.get("beta", 1.0))}))
    else:
        if float(n.attrs.get("beta", 1.0)) != 1.0:
            raise _Unsupported("beta")
        w.op("LOG_SOFTMAX", [x], [y], ("LogSoftmaxOptions", {}))


@exporter("Reshape", "Copy")
def _reshape(w: Writer, n: Node) -> None:
    shape = [int(d) for d in w.t(n.outputs[0]).shape]
    s = w.const(n.outputs[0] + "_shape", np.array(shape, np.int32), "int32")
    w.op("RESHAPE", [w.tensor(n.inputs[0]), s], [w.tensor(n.outputs[0])],
         ("ReshapeOptions", {"NewShape": shape}))


@exporter("QMean", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd")
def _reduce(w: Writer, n: Node) -> None:
    code = "SUM" if n.attrs.get("sum") else {
        "QMean": "MEAN", "ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX",
        "ReduceMin": "REDUCE_MIN", "ReduceProd": "REDUCE_PROD"}[n.op]
    axes = w.const(n.outputs[0] + "_axes", np.array(n.attrs["axes"], np.int32), "int32")
    w.op(code, [w.tensor(n.inputs[0]), axes], [w.tensor(n.outputs[0])],
         ("ReducerOptions", {"KeepDims": bool(n.attrs.get("keepdims"))}))


@exporter("QLeakyRelu", "LeakyRelu")
def _leaky_relu(w: Writer, n: Node) -> None:
    w.op("LEAKY_RELU", [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])],
         ("LeakyReluOptions", {"Alpha": float(n.attrs["alpha"])}))


@exporter("Transpose")
def _transpose(w: Writer, n: Node) -> None:
    from ..ops import get
    perm = get("Transpose")._perm(w.g, n)
    p = w.const(n.outputs[0] + "_perm", np.array(perm, np.int32), "int32")
    w.op("TRANSPOSE", [w.tensor(n.inputs[0]), p], [w.tensor(n.outputs[0])], ("TransposeOptions", {}))


@exporter("Concat")
def _concat(w: Writer, n: Node) -> None:
    if n.attrs.get("act") is not None:
        raise _Unsupported("fused activation")
    rank = w.t(n.inputs[0]).rank
    axis = int(n.attrs["axis"])
    axis = axis + rank if axis < 0 else axis
    w.op("CONCATENATION", [w.tensor(i) for i in n.inputs], [w.tensor(n.outputs[0])],
         ("ConcatenationOptions", {"Axis": axis, "FusedActivationFunction": 0}))


@exporter("Pad")
def _pad(w: Writer, n: Node) -> None:
    xt = w.t(n.inputs[0])
    p = [int(v) for v in n.attrs["pads"]]
    r = xt.rank
    if n.attrs.get("mode", "constant") != "constant":
        raise _Unsupported(f"mode {n.attrs.get('mode')}")
    if min(p, default=0) < 0:
        raise _Unsupported("negative pads")
    pads = w.const(n.outputs[0] + "_paddings", np.array(list(zip(p[:r], p[r:])), np.int32)
                   .reshape(r, 2), "int32")
    v = n.attrs.get("value")
    default = int(xt.quant.zero_point[0]) if xt.quant is not None else 0
    x, y = w.tensor(n.inputs[0]), w.tensor(n.outputs[0])
    if v is None or float(v) == float(default):
        w.op("PAD", [x, pads], [y], ("PadOptions", {}))
        return
    c = w.const(n.outputs[0] + "_value", np.array([v]).astype(_np_type(xt.dtype)), xt.dtype, xt.quant)
    w.op("PADV2", [x, pads, c], [y], ("PadV2Options", {}))


@exporter("Quantize")
def _quantize(w: Writer, n: Node) -> None:
    yt = w.t(n.outputs[0])
    if yt.quant is None:
        raise _Unsupported("output without quantization parameters")
    if n.attrs.get("rounding", "away") != "away" and w.t(n.inputs[0]).dtype == "float32":
        raise _Unsupported("round half to even (TFLite rounds half away from zero)")
    w.op("QUANTIZE", [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])], ("QuantizeOptions", {}))


@exporter("Dequantize")
def _dequantize(w: Writer, n: Node) -> None:
    w.op("DEQUANTIZE", [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])], ("DequantizeOptions", {}))


_UNARY = {"Relu": ("RELU", None), "Sigmoid": ("LOGISTIC", None), "Tanh": ("TANH", None),
          "Exp": ("EXP", "ExpOptions"), "Abs": ("ABS", "AbsOptions"), "Neg": ("NEG", "NegOptions"),
          "Sqrt": ("SQRT", None), "HardSwish": ("HARD_SWISH", "HardSwishOptions")}


@exporter(*_UNARY)
def _unary(w: Writer, n: Node) -> None:
    code, opts = _UNARY[n.op]
    w.op(code, [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])],
         (opts, {}) if opts else None)


@exporter("Clip")
def _clip(w: Writer, n: Node) -> None:
    lo, hi = n.attrs.get("min"), n.attrs.get("max")
    key = (None if lo is None else float(lo), None if hi is None else float(hi))
    code = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1", (0.0, None): "RELU"}.get(key)
    if code is None:
        raise _Unsupported(f"clip to [{lo}, {hi}] (TFLite has RELU, RELU6, RELU_N1_TO_1)")
    w.op(code, [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])])


# --- Larq Compute Engine custom operators (binary layers) ----------------------------

@exporter("BitPack")
def _lce_quantize(w: Writer, n: Node) -> None:
    x = w.t(n.inputs[0])
    if int(n.attrs.get("axis", -1)) % max(x.rank, 1) != x.rank - 1:
        raise _Unsupported("packing along an axis other than the last (LCE packs channels last)")
    t = n.attrs.get("threshold")
    default = 0 if x.dtype == "float32" else int(x.quant.zero_point[0]) if x.quant is not None else 0
    if t is not None and any(float(v) != float(default) for v in np.asarray(t).reshape(-1)):
        raise _Unsupported("a threshold other than 0 (LceQuantize binarizes at zero)")
    w.custom_op("LceQuantize", [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])])


@exporter("BitUnpack")
def _lce_dequantize(w: Writer, n: Node) -> None:
    if int(n.attrs.get("axis", -1)) % w.t(n.inputs[0]).rank != w.t(n.inputs[0]).rank - 1:
        raise _Unsupported("unpacking along an axis other than the last")
    w.custom_op("LceDequantize", [w.tensor(n.inputs[0])], [w.tensor(n.outputs[0])])


_LCE_DOT_ACT = {None: 0, (0, None): 1, (-1, 1): 2, (0, 6): 3}


@exporter("BinaryConv")
def _lce_bconv2d(w: Writer, n: Node) -> None:
    from ..ops import bnn
    _nhwc(w, n)
    g = w.g
    N, H, W, C, O, KH, KW, OH, OW = bnn.conv_geometry(g, n)
    a = n.attrs
    if g.tensors[n.inputs[0]].dtype != "int32":
        raise _Unsupported("binary weights with float inputs (LCE binarizes the input too)")
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    padding = w.same_or_valid(H, W, KH, KW, sh, sw, dh, dw, a["pads"])
    if padding is None:
        raise _Unsupported(f"explicit padding {a['pads']} (LCE knows SAME and VALID)")
    if a.get("act") is not None:
        raise _Unsupported("a clamp after the multiplier (LCE clamps the dot product)")
    K = KH * KW * C
    dc = a.get("dot_clamp")
    key = None if dc is None else (int(dc[0]) if int(dc[0]) > -K else None,
                                   int(dc[1]) if int(dc[1]) < K else None)
    if key == (None, None):
        key = None
    if key not in _LCE_DOT_ACT:
        raise _Unsupported(f"dot product clamp {dc}")
    opts = {"channels_in": C, "dilation_height_factor": dh, "dilation_width_factor": dw,
            "fused_activation_function": _LCE_DOT_ACT[key], "pad_values": int(a.get("pad_value", 0)),
            "padding": padding, "stride_height": sh, "stride_width": sw}
    kind = bnn.out_kind(g, n)
    x, wt = w.tensor(n.inputs[0]), w.tensor(n.inputs[1])
    y = w.tensor(n.outputs[0])
    if kind == "bits":
        T = bnn.thresholds(g, n, O)
        # bit = dot < T  <=>  popcount > floor((K - T) / 2)
        thr = np.floor_divide(K - T, 2).clip(-(1 << 31), (1 << 31) - 1).astype(np.int32)
        ti = w.const(n.outputs[0] + "_thresholds", thr, "int32")
        w.custom_op("LceBconv2d", [x, wt, -1, -1, ti], [y], opts)
        return
    m = g.tensors[n.inputs[2]].data if n.input(2) else np.ones(O, np.float32)
    b = g.tensors[n.inputs[3]].data if n.input(3) else np.zeros(O, np.float32)
    mi = w.const(n.outputs[0] + "_multiplier", np.broadcast_to(m, (O,)).astype(np.float32), "float32")
    bi = w.const(n.outputs[0] + "_bias", np.broadcast_to(b, (O,)).astype(np.float32), "float32")
    w.custom_op("LceBconv2d", [x, wt, mi, bi, -1], [y], opts)
