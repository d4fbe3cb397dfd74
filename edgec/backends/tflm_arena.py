"""TensorFlow Lite Micro's tensor arena, computed without TensorFlow Lite Micro.

TFLM (``MicroInterpreter::AllocateTensors``) fills one caller-supplied arena from
both ends: *persistent* allocations grow down from the top (the allocator and
planner objects, one ``TfLiteEvalTensor`` per tensor, one ``NodeAndRegistration``
per operator, the parsed builtin options, each kernel's ``OpData`` and per-channel
arrays, scratch-buffer handles, the input/output ``TfLiteTensor`` structs); the
*non-persistent* head holds the activation plan, made by the greedy memory
planner from tensor lifetimes plus the kernels' scratch buffers.  While it
prepares, TFLM also needs *temporary* space above the head (``TfLiteTensor``
structs the kernels ask for, the planner's ``AllocationInfo`` array and its
40-byte-per-buffer workspace); on small models that transient need, not the
final head, decides the smallest arena that works.

This module replays that sequence: it reads the flatbuffer, applies each
kernel's allocation behaviour (what ``Init`` and ``Prepare`` allocate, for the
reference kernels and for the CMSIS-NN kernels), runs a copy of TFLM's greedy
planner and walks the allocator's head, temp and tail pointers.  The result is
the smallest arena ``AllocateTensors()`` accepts and the bytes it then reports as
used (``arena_used_bytes()``, or the Python interpreter's "Arena allocation
total").  Struct sizes depend on the ABI, so there are two profiles:

* ``host``: the ``tflite-micro`` Python interpreter on a 64-bit host (LP64,
  built with ``USE_TFLM_COMPRESSION``, ``RecordingMicroAllocator``), used by
  ``edgec verify --backend tflm --target host`` and by the tests to check this
  model against the real thing;
* ``mcu``: a ``MicroInterpreter`` on a 32-bit Cortex-M (ILP32, arm-none-eabi's
  short enums, no compression), with reference or CMSIS-NN kernels; the
  CMSIS-NN scratch buffers follow the target's DSP/MVE features.

The struct sizes and kernel behaviour are those of TFLM's sources of 2026
(tflite-micro 0.dev2026xxxx, CMSIS-NN 4ab83cc) with GCC; ``KERNEL_TABLE`` says,
per operator, where a figure comes from.  Operators outside the table get a
conservative estimate and the result says so (``exact = False``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.errors import EdgecError

ALIGN = 16  # MicroArenaBufferAlignment()
PLANNER_BYTES_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size()
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp

# ---------------------------------------------------------------------------
# the flatbuffer, as far as TFLM's allocator looks at it

# TensorType -> bytes per element (TfLiteTypeSizeOf); None: TFLM cannot hold it
_TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8,
               11: 16, 12: 8, 13: 4, 14: None, 15: 4, 16: 2, 17: 1, 18: 2}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
               6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128",
               12: "uint64", 13: "resource", 14: "variant", 15: "uint32", 16: "uint16",
               17: "int4", 18: "bfloat16"}


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    has_data: bool           # a constant with bytes in the flatbuffer
    is_variable: bool
    quant_channels: int      # 0: no (complete) quantization; else len(scale)
    bytes: int
    scale: float | None = None       # first scale / zero point (per-tensor parameters)
    zero_point: int | None = None

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, f"type{self.type}")


@dataclass
class OpInfo:
    index: int
    name: str                # builtin name (CONV_2D) or CUSTOM:<code>
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class ModelInfo:
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: list[int]
    outputs: list[int]
    subgraphs: int
    offline_plan: bool
    version: int

    def t(self, i: int) -> TensorInfo | None:
        return self.tensors[i] if 0 <= i < len(self.tensors) else None

    def op_names(self) -> list[str]:
        """Distinct operators, in order of first use."""
        seen: list[str] = []
        for op in self.ops:
            if op.name not in seen:
                seen.append(op.name)
        return seen


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def read_model(buf: bytes) -> ModelInfo:
    """What TFLM's allocator needs from a TFLite flatbuffer."""
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise EdgecError("not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        return _read(bytes(buf))
    except EdgecError:
        raise
    except Exception as e:  # noqa: BLE001 - flatbuffers has no verifier
        raise EdgecError(f"malformed TFLite flatbuffer ({type(e).__name__})") from None


def _read(buf: bytes) -> ModelInfo:
    from tflite.Model import Model
    m = Model.GetRootAs(buf, 0)
    if m.SubgraphsLength() < 1:
        raise EdgecError("the model has no subgraph")
    sg = m.Subgraphs(0)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        has_data = False
        b = t.Buffer()
        if 0 < b < m.BuffersLength():
            bb = m.Buffers(b)
            has_data = bb.DataLength() > 0 or (bb.Offset() > 1 and bb.Size() > 0)
        q = t.Quantization()
        ch = 0
        scale = zp = None
        if q is not None and q.ScaleLength() > 0 and q.ZeroPointLength() > 0:
            ch = q.ScaleLength()
            scale = float(q.Scale(0))
            zp = int(q.ZeroPoint(0))
        ty = int(t.Type())
        size = _TYPE_BYTES.get(ty)
        n = 1
        for d in shape:
            n *= d
        tensors.append(TensorInfo(i, (t.Name() or b"").decode("utf-8", "replace"), shape, ty,
                                  has_data, bool(t.IsVariable()), ch,
                                  n * size if size is not None and n > 0 else 0, scale, zp))
    names = _builtin_names()
    codes = []
    for k in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(k)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:
            codes.append("CUSTOM:" + (oc.CustomCode() or b"").decode("utf-8", "replace")[:64])
        else:
            codes.append(names.get(code, f"BUILTIN_{code}"))
    ops = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        idx = op.OpcodeIndex()
        if idx >= len(codes):
            raise EdgecError(f"operator {k} uses opcode index {idx}, which does not exist")
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for x in ins + outs:
            if x >= len(tensors):
                raise EdgecError(f"operator {k} refers to tensor {x}, which does not exist")
        ops.append(OpInfo(k, codes[idx], ins, outs, _options(codes[idx], op)))
    offline = False
    for k in range(m.MetadataLength()):
        if (m.Metadata(k).Name() or b"") == b"OfflineMemoryAllocation":
            offline = True
    return ModelInfo(tensors, ops,
                     [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else [],
                     [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else [],
                     m.SubgraphsLength(), offline, int(m.Version()))


def _options(name: str, op) -> dict:
    """The builtin options the kernels' buffer sizes depend on."""
    import tflite
    cls = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
           "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions"}.get(name)
    if cls is None or op.BuiltinOptions() is None:
        return {}
    o = getattr(tflite, cls)()
    tab = op.BuiltinOptions()
    o.Init(tab.Bytes, tab.Pos)
    d = {"padding": int(o.Padding()), "stride_w": int(o.StrideW()), "stride_h": int(o.StrideH())}
    if hasattr(o, "DilationWFactor"):
        d["dilation_w"] = int(o.DilationWFactor()) or 1
        d["dilation_h"] = int(o.DilationHFactor()) or 1
    if hasattr(o, "FilterWidth"):
        d["filter_w"] = int(o.FilterWidth())
        d["filter_h"] = int(o.FilterHeight())
    return d


# ---------------------------------------------------------------------------
# ABI profiles: struct (size, alignment) as TFLM's sources compile them

_LP64 = {  # x86-64, g++, TF_LITE_STATIC_MEMORY + USE_TFLM_COMPRESSION (the PyPI wheel)
    "SingleArenaBufferAllocator": (72, 8), "RecordingSingleArenaBufferAllocator": (104, 8),
    "GreedyMemoryPlanner": (72, 8), "MicroAllocator": (72, 8),
    "RecordingMicroAllocator": (272, 8), "MicroBuiltinDataAllocator": (16, 8),
    "SubgraphAllocations": (24, 8), "TfLiteEvalTensor": (24, 8),
    "NodeAndRegistration": (64, 8), "TfLiteTensor": (64, 8),
    "TfLiteAffineQuantization": (24, 8), "ScratchBufferRequest": (16, 8),
    "ScratchBufferHandle": (8, 8), "AllocationInfo": (32, 8), "size_t": (8, 8),
    "pointer": (8, 8),
}
_ILP32 = {  # arm-none-eabi-g++ (short enums), TF_LITE_STATIC_MEMORY, no compression
    "SingleArenaBufferAllocator": (36, 4), "RecordingSingleArenaBufferAllocator": (52, 4),
    "GreedyMemoryPlanner": (44, 4), "MicroAllocator": (36, 4),
    "RecordingMicroAllocator": (124, 4), "MicroBuiltinDataAllocator": (8, 4),
    "SubgraphAllocations": (8, 4), "TfLiteEvalTensor": (12, 4),
    "NodeAndRegistration": (32, 4), "TfLiteTensor": (32, 4),
    "TfLiteAffineQuantization": (12, 4), "ScratchBufferRequest": (12, 4),
    "ScratchBufferHandle": (4, 4), "AllocationInfo": (24, 4), "size_t": (4, 4),
    "pointer": (4, 4),
}
# builtin options the op resolver's parsers allocate (sizeof, alignof): LP64 / ILP32
_PARAMS = {
    "TfLiteAddParams": ((8, 4), (2, 1)), "TfLiteArgMaxParams": ((4, 4), (1, 1)),
    "TfLiteArgMinParams": ((4, 4), (1, 1)), "TfLiteBatchMatMulParams": ((3, 1), (3, 1)),
    "TfLiteCallOnceParams": ((4, 4), (4, 4)), "TfLiteCastParams": ((8, 4), (2, 1)),
    "TfLiteConcatenationParams": ((8, 4), (8, 4)), "TfLiteConvParams": ((28, 4), (28, 4)),
    "TfLiteCumsumParams": ((2, 1), (2, 1)), "TfLiteDepthToSpaceParams": ((4, 4), (4, 4)),
    "TfLiteDepthwiseConvParams": ((28, 4), (28, 4)), "TfLiteDivParams": ((4, 4), (1, 1)),
    "TfLiteFullyConnectedParams": ((32, 8), (5, 1)), "TfLiteGatherParams": ((8, 4), (8, 4)),
    "TfLiteIfParams": ((8, 4), (8, 4)), "TfLiteL2NormParams": ((4, 4), (1, 1)),
    "TfLiteLeakyReluParams": ((4, 4), (4, 4)), "TfLiteMirrorPaddingParams": ((4, 4), (1, 1)),
    "TfLiteMulParams": ((4, 4), (1, 1)), "TfLitePackParams": ((8, 4), (8, 4)),
    "TfLitePoolParams": ((40, 4), (40, 4)), "TfLiteReducerParams": ((1, 1), (1, 1)),
    "TfLiteReshapeParams": ((36, 4), (36, 4)), "TfLiteResizeBilinearParams": ((2, 1), (2, 1)),
    "TfLiteResizeNearestNeighborParams": ((2, 1), (2, 1)), "TfLiteSVDFParams": ((12, 4), (8, 4)),
    "TfLiteShapeParams": ((4, 4), (1, 1)), "TfLiteSoftmaxParams": ((4, 4), (4, 4)),
    "TfLiteSpaceToDepthParams": ((4, 4), (4, 4)), "TfLiteSplitParams": ((4, 4), (4, 4)),
    "TfLiteSplitVParams": ((4, 4), (4, 4)), "TfLiteSqueezeParams": ((36, 4), (36, 4)),
    "TfLiteStridedSliceParams": ((24, 4), (24, 4)), "TfLiteSubParams": ((8, 4), (2, 1)),
    "TfLiteTransposeConvParams": ((20, 4), (16, 4)),
    "TfLiteUnidirectionalSequenceLSTMParams": ((16, 4), (16, 4)),
    "TfLiteUnpackParams": ((8, 4), (8, 4)), "TfLiteVarHandleParams": ((16, 8), (8, 4)),
    "TfLiteWhileParams": ((8, 4), (8, 4)),
}
# builtin operator -> the options struct its parser allocates (None: nothing)
OP_PARAMS = {
    "ADD": "TfLiteAddParams", "ARG_MAX": "TfLiteArgMaxParams", "ARG_MIN": "TfLiteArgMinParams",
    "AVERAGE_POOL_2D": "TfLitePoolParams", "BATCH_MATMUL": "TfLiteBatchMatMulParams",
    "CALL_ONCE": "TfLiteCallOnceParams", "CAST": "TfLiteCastParams",
    "CONCATENATION": "TfLiteConcatenationParams", "CONV_2D": "TfLiteConvParams",
    "CUMSUM": "TfLiteCumsumParams", "DEPTH_TO_SPACE": "TfLiteDepthToSpaceParams",
    "DEPTHWISE_CONV_2D": "TfLiteDepthwiseConvParams", "DIV": "TfLiteDivParams",
    "FULLY_CONNECTED": "TfLiteFullyConnectedParams", "GATHER": "TfLiteGatherParams",
    "IF": "TfLiteIfParams", "L2_NORMALIZATION": "TfLiteL2NormParams",
    "L2_POOL_2D": "TfLitePoolParams", "LEAKY_RELU": "TfLiteLeakyReluParams",
    "MAX_POOL_2D": "TfLitePoolParams", "MEAN": "TfLiteReducerParams",
    "MIRROR_PAD": "TfLiteMirrorPaddingParams", "MUL": "TfLiteMulParams",
    "PACK": "TfLitePackParams", "REDUCE_ALL": "TfLiteReducerParams",
    "REDUCE_MAX": "TfLiteReducerParams", "REDUCE_MIN": "TfLiteReducerParams",
    "RESHAPE": "TfLiteReshapeParams", "RESIZE_BILINEAR": "TfLiteResizeBilinearParams",
    "RESIZE_NEAREST_NEIGHBOR": "TfLiteResizeNearestNeighborParams", "SHAPE": "TfLiteShapeParams",
    "SOFTMAX": "TfLiteSoftmaxParams", "SPACE_TO_DEPTH": "TfLiteSpaceToDepthParams",
    "SPLIT": "TfLiteSplitParams", "SPLIT_V": "TfLiteSplitVParams",
    "SQUEEZE": "TfLiteSqueezeParams", "STRIDED_SLICE": "TfLiteStridedSliceParams",
    "SUB": "TfLiteSubParams", "SUM": "TfLiteReducerParams", "SVDF": "TfLiteSVDFParams",
    "TRANSPOSE_CONV": "TfLiteTransposeConvParams",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "TfLiteUnidirectionalSequenceLSTMParams",
    "UNPACK": "TfLiteUnpackParams", "VAR_HANDLE": "TfLiteVarHandleParams",
    "WHILE": "TfLiteWhileParams",
}


@dataclass(frozen=True)
class Profile:
    """Where the arena is used: ABI, allocator, kernels."""
    name: str
    lp64: bool
    recording: bool          # RecordingMicroAllocator (the Python interpreter)
    kernels: str = "reference"   # "reference" | "cmsis-nn"
    arch: str = "dsp"        # CMSIS-NN build: "none" | "dsp" | "mve"

    def s(self, struct: str) -> tuple[int, int]:
        return (_LP64 if self.lp64 else _ILP32)[struct]

    def params(self, struct: str) -> tuple[int, int]:
        return _PARAMS[struct][0 if self.lp64 else 1]


HOST_PYTHON = Profile("host (tflite-micro Python interpreter, 64-bit)", True, True)


def mcu_profile(kernels: str = "reference", arch: str = "dsp") -> Profile:
    return Profile(f"32-bit MCU, {kernels} kernels" + (f" ({arch})" if kernels == "cmsis-nn" else ""),
                   False, False, kernels, arch)


def cmsis_arch(features) -> str:
    f = set(features or ())
    return "mve" if "mve" in f else ("dsp" if "dsp" in f else "none")


# ---------------------------------------------------------------------------
# kernel behaviour: what Init and Prepare allocate

@dataclass
class OpAlloc:
    init: tuple[int, str] | None = None       # (bytes of OpData, struct name)
    events: list = field(default_factory=list)  # ("temp", tensor) | ("persist", bytes) | ("scratch", bytes)
    exact: bool = True
    note: str = ""


# OpData sizes: (LP64 with compression, ILP32); reference kernels
_OPDATA_REF = {
    "OpDataConv": (80, 56), "OpDataFullyConnected": (72, 48), "OpDataPooling": (32, 32),
    "SoftmaxParams": (80, 56), "OpDataAdd": (60, 60), "OpDataSub": (52, 52), "OpDataMul": (36, 36),
    "OpDataQuantizeReference": (32, 32), "DequantizeOpData": (32, 32),
    "OpDataLogistic": (16, 16), "TanhOpData": (16, 16), "ReluOpData": (28, 28),
    "Relu6OpData": (8, 8), "HardSwishParams": (20, 20), "ConcatOpData": (80, 24),
    "PadOpData": (56, 56), "OpDataReduce": (44, 44), "LogSoftmaxOpData": (40, 28),
    "OpDataAbsRsqrt": (28, 28), "OpDataDiv": (28, 28), "LeakyReluOpData": (24, 24),
    "PreluParams": (28, 28), "StridedSliceParams": (84, 84), "L2NormalizationParams": (4, 4),
    "OpDataSvdf": (36, 36), "BatchMatmulOpData": (32, 16), "TransposeConvOpData": (88, 72),
    "MirrorPadOpData": (20, 20), "ComparisonsOpData": (32, 32), "AddNOpData": (40, 40),
    "CumsumOpData": (36, 36), "SquaredDifferenceOpData": (112, 112),
    "SpaceToBatchParams": (4, 4), "EmbeddingLookupOpData": (16, 8),
}
# CMSIS-NN kernels' OpData (ILP32 only: the CMSIS-NN kernels exist on Arm only)
_OPDATA_CMSIS = {
    "CONV_2D": 60, "DEPTHWISE_CONV_2D": 60, "FULLY_CONNECTED": 72, "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36, "SOFTMAX": 64, "ADD": 60, "MUL": 36, "PAD": 56, "PADV2": 56,
    "BATCH_MATMUL": 36, "SVDF": 40, "TRANSPOSE_CONV": 76,
}
# operators whose reference kernel has no Init (nothing persistent besides options)
_NO_INIT = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "MAXIMUM", "MINIMUM", "SHAPE",
            "GATHER", "GATHER_ND", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "FILL",
            "ZEROS_LIKE", "FLOOR", "CEIL", "ROUND", "NEG", "EXP", "CAST", "SPACE_TO_DEPTH",
            "DEPTH_TO_SPACE", "LOG_SOFTMAX", "BATCH_TO_SPACE_ND", "BROADCAST_TO", "BROADCAST_ARGS",
            "ARG_MAX", "ARG_MIN", "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "SELECT_V2",
            "FLOOR_DIV", "FLOOR_MOD", "REVERSE_V2", "RESIZE_BILINEAR",
            "RESIZE_NEAREST_NEIGHBOR", "SIN", "COS", "LOG", "SQRT", "SQUARE"}
_REF_INIT = {
    "CONV_2D": "OpDataConv", "DEPTHWISE_CONV_2D": "OpDataConv",
    "FULLY_CONNECTED": "OpDataFullyConnected", "AVERAGE_POOL_2D": "OpDataPooling",
    "MAX_POOL_2D": "OpDataPooling", "L2_POOL_2D": "OpDataPooling", "SOFTMAX": "SoftmaxParams",
    "ADD": "OpDataAdd", "SUB": "OpDataSub", "MUL": "OpDataMul",
    "QUANTIZE": "OpDataQuantizeReference", "DEQUANTIZE": "DequantizeOpData",
    "LOGISTIC": "OpDataLogistic", "TANH": "TanhOpData", "RELU": "ReluOpData",
    "RELU6": "Relu6OpData", "HARD_SWISH": "HardSwishParams", "CONCATENATION": "ConcatOpData",
    "PAD": "PadOpData", "PADV2": "PadOpData", "MEAN": "OpDataReduce", "SUM": "OpDataReduce",
    "REDUCE_MAX": "OpDataReduce", "REDUCE_MIN": "OpDataReduce", "REDUCE_ALL": "OpDataReduce",
    "ABS": "OpDataAbsRsqrt", "RSQRT": "OpDataAbsRsqrt",
    "DIV": "OpDataDiv", "LEAKY_RELU": "LeakyReluOpData", "PRELU": "PreluParams",
    "STRIDED_SLICE": "StridedSliceParams", "L2_NORMALIZATION": "L2NormalizationParams",
    "SVDF": "OpDataSvdf", "BATCH_MATMUL": "BatchMatmulOpData",
    "TRANSPOSE_CONV": "TransposeConvOpData", "MIRROR_PAD": "MirrorPadOpData",
    "EQUAL": "ComparisonsOpData", "NOT_EQUAL": "ComparisonsOpData",
    "GREATER": "ComparisonsOpData", "GREATER_EQUAL": "ComparisonsOpData",
    "LESS": "ComparisonsOpData", "LESS_EQUAL": "ComparisonsOpData", "ADD_N": "AddNOpData",
    "CUMSUM": "CumsumOpData", "SQUARED_DIFFERENCE": "SquaredDifferenceOpData",
    "SPACE_TO_BATCH_ND": "SpaceToBatchParams", "EMBEDDING_LOOKUP": "EmbeddingLookupOpData",
}
# operators whose allocation behaviour below was read from the kernels' sources
EXACT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
             "SOFTMAX", "RESHAPE", "ADD", "SUB", "MUL", "QUANTIZE", "DEQUANTIZE", "LOGISTIC",
             "HARD_SWISH", "SQUEEZE", "EXPAND_DIMS", "LOG_SOFTMAX", "DIV", "EXP",
             "MAXIMUM", "MINIMUM", "TANH", "RELU", "RELU6", "CONCATENATION", "MEAN", "SUM",
             "REDUCE_MAX", "REDUCE_MIN", "TRANSPOSE", "PAD", "PADV2"}
# a generous OpData for operators outside the tables (bytes)
_UNKNOWN_OPDATA = 128


def _dims(model: ModelInfo, i: int) -> tuple[int, ...]:
    t = model.t(i)
    return t.shape if t is not None else ()


def _present(op: OpInfo, k: int, outputs: bool = False) -> int | None:
    lst = op.outputs if outputs else op.inputs
    if 0 <= k < len(lst) and lst[k] >= 0:
        return lst[k]
    return None


def _temps(op: OpInfo, *spec) -> list:
    """('in', k) / ('out', k) -> temp tensor events for the tensors that exist."""
    ev = []
    for kind, k in spec:
        ti = _present(op, k, kind == "out")
        if ti is not None:
            ev.append(("temp", ti))
    return ev


def _pad_amount(padding: int, stride: int, dil: int, in_size: int, k: int, out_size: int) -> int:
    """TFLM's ComputePaddingHeightWidth (padding 0 = SAME, 1 = VALID)."""
    if padding != 0:
        return 0
    eff = (k - 1) * dil + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2


def _conv_scratch_cmsis(model: ModelInfo, op: OpInfo, arch: str) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size (CMSIS-NN, built with GCC)."""
    x, w, y = _dims(model, op.inputs[0]), _dims(model, op.inputs[1]), _dims(model, op.outputs[0])
    if len(x) != 4 or len(w) != 4 or len(y) != 4:
        return 0
    o = op.options
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    dh, dw = o.get("dilation_h", 1), o.get("dilation_w", 1)
    kh, kw, cin_f = w[1], w[2], w[3]
    pad_h = _pad_amount(o.get("padding", 1), sh, dh, x[1], kh, y[1])
    pad_w = _pad_amount(o.get("padding", 1), sw, dw, x[2], kw, y[2])
    cin = x[3]

    def generic():
        if arch == "mve":
            cols = (cin * kw * kh + 15) // 16
            return 4 * cols * 16
        rhs = kw * kh * cin
        rem = rhs % 4
        return 2 * (rhs + 4 - rem if rem else rhs) * 2

    is_1x1 = pad_w == 0 and pad_h == 0 and kw == 1 and kh == 1 and dw == 1 and dh == 1 and cin == cin_f
    if is_1x1:
        return 0  # the 1x1 fast path needs a buffer only when built with Arm Compiler
    is_1xn = x[1] == 1 and dw == 1 and kh == 1 and (sw * cin) % 4 == 0 and cin == cin_f
    if is_1xn and arch == "mve":
        total_pad = (y[2] - 1) * sw + kw - x[2]
        asym = total_pad % 2
        right = max(1, (pad_w + asym + sw - 1) // sw) if pad_w + asym != 0 else 0
        left = max(1, (pad_w + sw - 1) // sw) if pad_w != 0 else 0
        nopad = max(y[2] - (right + left), 0)
        if right + nopad + left != y[2]:
            return generic()
        psl = pad_w * cin
        psr = right * cin if asym else psl
        nel = kw * cin
        return max(nel + psl, nel - cin + psr)
    return generic()


def _dwconv_scratch_cmsis(model: ModelInfo, op: OpInfo, arch: str) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size (CMSIS-NN)."""
    x, w, y = _dims(model, op.inputs[0]), _dims(model, op.inputs[1]), _dims(model, op.outputs[0])
    if len(x) != 4 or len(w) != 4 or len(y) != 4:
        return 0
    o = op.options
    dh, dw = o.get("dilation_h", 1), o.get("dilation_w", 1)
    kh, kw = w[1], w[2]
    pad_h = _pad_amount(o.get("padding", 1), o.get("stride_h", 1), dh, x[1], kh, y[1])
    pad_w = _pad_amount(o.get("padding", 1), o.get("stride_w", 1), dw, x[2], kw, y[2])
    cin, cout = x[3], y[3]
    size = 0
    if arch == "mve" and cin == 1 and cout > 1:
        # converted to a convolution (CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD = 8)
        if cout > 8:
            cols = (cin * kw * kh + 15) // 16
            return 4 * cols * 16 + cout * kh * kw
    if cin == cout and x[0] == 1 and dw == 1 and dh == 1:
        if arch == "mve":
            size = 4 * 16 * kw * kh  # CH_IN_BLOCK_MVE = 16
        elif arch == "dsp":
            if kw == 3 and kh == 3 and pad_h <= 1 and pad_w <= 1:
                return 0
            size = cin * kw * kh * 2
    return size


def op_alloc(model: ModelInfo, op: OpInfo, prof: Profile) -> OpAlloc:
    """What this operator's kernel allocates in Init and Prepare under a profile."""
    name = op.name
    cmsis = prof.kernels == "cmsis-nn" and not prof.lp64
    k = OpAlloc()
    # Init
    if cmsis and name in _OPDATA_CMSIS:
        k.init = (_OPDATA_CMSIS[name], name)
    elif name in _REF_INIT:
        s = _REF_INIT[name]
        k.init = (_OPDATA_REF[s][0 if prof.lp64 else 1], s)
    elif name not in _NO_INIT:
        k.init = (_UNKNOWN_OPDATA, "unknown")
    ev = k.events
    x0 = model.t(op.inputs[0]) if op.inputs and op.inputs[0] >= 0 else None
    int8_like = x0 is not None and x0.type_name in ("int8", "int16")

    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = model.t(op.inputs[1])
        qdim = 0 if name == "CONV_2D" else 3
        channels = w.shape[qdim] if w is not None and len(w.shape) > qdim else 0
        if cmsis:
            ev += _temps(op, ("in", 0), ("in", 1), ("out", 0))  # the bias is asked as output 2: none
            if int8_like:
                ev += [("persist", 4 * channels), ("persist", 4 * channels)]
        else:
            ev += _temps(op, ("out", 0), ("in", 0), ("in", 1))
            ev += [("persist", 4 * channels), ("persist", 4 * channels)]
        if w is not None and w.type_name == "int4" and not cmsis:
            ev.append(("scratch", w.bytes))
        ev += _temps(op, ("in", 0), ("in", 1), ("in", 2), ("out", 0))  # CalculateOpData*
        if cmsis and x0 is not None and x0.type_name == "int8":
            b = (_conv_scratch_cmsis if name == "CONV_2D" else _dwconv_scratch_cmsis)(
                model, op, prof.arch)
            if b > 0:
                ev.append(("scratch", b))
        elif cmsis and x0 is not None and x0.type_name == "int16":
            k.exact = False
            k.note = "int16 CMSIS-NN convolution scratch not modelled"
    elif name == "FULLY_CONNECTED":
        w = model.t(op.inputs[1])
        ev += _temps(op, ("in", 0), ("in", 1), ("in", 2), ("out", 0))
        if w is not None and w.type_name == "int4" and not cmsis:
            ev.append(("scratch", w.bytes))
        if w is not None and w.quant_channels > 1 and int8_like:
            ev += [("persist", 4 * w.quant_channels), ("persist", 4 * w.quant_channels)]
        if cmsis and x0 is not None and x0.type_name == "int8" and w is not None \
                and w.type_name != "int4":
            y = _dims(model, op.outputs[0])
            accum = w.shape[-1] if w.shape else 0
            out_depth = y[-1] if y else 0
            if len(y) > 2 and accum % 4 == 0:
                if w.quant_channels <= 1:
                    ev.append(("scratch", out_depth * 8))
            elif prof.arch == "mve" and out_depth > 0:
                bias = model.t(op.inputs[2]) if _present(op, 2) is not None else None
                if w.has_data and (bias is None or bias.has_data):
                    ev.append(("persist", out_depth * 4))  # kernel sums (KERNELS_OPTIMIZED_FOR_SPEED)
                else:
                    ev.append(("scratch", out_depth * 4))
        elif cmsis and x0 is not None and x0.type_name == "int16":
            k.exact = False
            k.note = "int16 CMSIS-NN fully-connected scratch not modelled"
    elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        ev += _temps(op, ("in", 0), ("out", 0))
        if cmsis and name == "AVERAGE_POOL_2D":
            ev += _temps(op, ("in", 0), ("out", 0))
            y = _dims(model, op.outputs[0])
            if x0 is not None and x0.type_name == "int8" and prof.arch == "dsp" and len(y) == 4:
                ev.append(("scratch", 4 * y[3]))
            elif x0 is not None and x0.type_name == "int16":
                k.exact = False
    elif name == "LOG_SOFTMAX":
        ev += _temps(op, ("in", 0), ("out", 0))
        if x0 is not None and x0.type_name == "int8":  # its OpData comes in Prepare
            ev.append(("persist", _OPDATA_REF["LogSoftmaxOpData"][0 if prof.lp64 else 1]))
    elif name == "SOFTMAX":
        ev += _temps(op, ("in", 0), ("out", 0))
        if x0 is not None and x0.type_name == "int16":
            ev += [("persist", 2 * 513), ("persist", 2 * 513)]
    elif name in ("ADD", "SUB", "MUL", "DIV"):
        ev += _temps(op, ("in", 0), ("in", 1), ("out", 0))
    elif name == "EXPAND_DIMS":
        ev += _temps(op, ("in", 0), ("in", 1), ("out", 0))
    elif name in ("MAXIMUM", "MINIMUM"):
        pass  # no Prepare
    elif name in ("TRANSPOSE", "PAD", "PADV2"):
        ev += _temps(op, ("in", 0), ("in", 1), ("in", 2), ("out", 0))
    elif name == "TANH":
        ev += _temps(op, ("in", 0), ("in", 0), ("out", 0))
    elif name == "RELU6":
        ev += _temps(op, ("in", 0))
    elif name == "RELU":
        ev += _temps(op, ("in", 0), ("out", 0))
    elif name == "CONCATENATION":
        ev += _temps(op, ("in", 0), ("out", 0))
        ev += [("temp", i) for i in op.inputs if i >= 0]
    elif name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
        out_elems = 1
        for d in _dims(model, op.outputs[0]):
            out_elems *= d
        rank = len(_dims(model, op.inputs[0]))
        axis = model.t(op.inputs[1]) if len(op.inputs) > 1 else None
        n_axis = 1
        for d in (axis.shape if axis is not None else ()):
            n_axis *= d
        simple = _temps(op, ("in", 0), ("in", 1)) + (_temps(op, ("out", 0)) if x0 is not None
                                                      and x0.type_name == "int8" else [])
        if name in ("MEAN", "SUM"):
            ev += _temps(op, ("in", 0), ("out", 0), ("in", 1))
            if int8_like:
                ev.append(("scratch", 4 * out_elems))
            ev += [("scratch", 4 * rank), ("scratch", 4 * n_axis)] + simple
        else:
            ev += simple + _temps(op, ("in", 0), ("out", 0), ("in", 1))
            ev += [("scratch", 4 * rank), ("scratch", 4 * n_axis)]
    elif name in ("RESHAPE", "SQUEEZE", "QUANTIZE", "DEQUANTIZE", "LOGISTIC", "HARD_SWISH",
                  "EXP"):
        ev += _temps(op, ("in", 0), ("out", 0))
    else:
        # not read from the sources: every input and output once as a temporary tensor
        ev += [("temp", i) for i in op.inputs if i >= 0] + [("temp", o) for o in op.outputs if o >= 0]
    if name not in EXACT_OPS:
        k.exact = False
        k.note = k.note or "allocation behaviour estimated"
    return k


# ---------------------------------------------------------------------------
# TFLM's greedy memory planner (GreedyMemoryPlanner::CalculateOffsetsIfNeeded)

def greedy_plan(buffers: list[tuple[int, int, int]]) -> tuple[list[int], int]:
    """buffers: (size, first_time_used, last_time_used) in the order TFLM adds
    them; returns (offsets, maximum memory size)."""
    n = len(buffers)
    if n == 0:
        return [], 0
    # online buffers are listed from the tail (last added first), then
    # bubble-sorted by descending size (ReverseSortInPlace, stable)
    order = list(reversed(range(n)))
    sizes = [buffers[i][0] for i in order]
    swapped = True
    while swapped:
        swapped = False
        for i in range(1, n):
            if sizes[i - 1] < sizes[i]:
                sizes[i - 1], sizes[i] = sizes[i], sizes[i - 1]
                order[i - 1], order[i] = order[i], order[i - 1]
                swapped = True
    offsets = [-1] * n
    placed: list[tuple[int, int]] = []  # (offset, buffer id), kept sorted by offset (stable)
    first = order[0]
    offsets[first] = 0
    placed.append((0, first))
    for bid in order[1:]:
        size, f, last = buffers[bid]
        cand = 0
        prior = None
        for off, other in placed:
            of, ol = buffers[other][1], buffers[other][2]
            if of > last or f > ol:
                continue  # not alive at the same time
            if prior is not None:
                cand = max(cand, prior[0] + buffers[prior[1]][0])
            if off - cand >= size:
                prior = None
                break
            prior = (off, other)
        if prior is not None:
            cand = max(cand, prior[0] + buffers[prior[1]][0])
        offsets[bid] = cand
        # insert after all entries with offset <= cand (TFLM's list insertion)
        pos = len(placed)
        if placed[0][0] > cand:
            pos = 0
        else:
            for j in range(1, len(placed)):
                if placed[j][0] > cand:
                    pos = j
                    break
        placed.insert(pos, (cand, bid))
    return offsets, max(o + buffers[i][0] for i, o in enumerate(offsets))


# ---------------------------------------------------------------------------
# the allocator, replayed

def _up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


@dataclass
class ArenaResult:
    profile: str
    min_arena: int           # smallest arena (multiple of 16) AllocateTensors() accepts
    used: int                # arena_used_bytes() / "Arena allocation total" with that arena
    head: int                # the activation plan (incl. scratch buffers)
    tail: int                # persistent bytes
    binding: str             # what decides min_arena
    scratch: list[int] = field(default_factory=list)
    exact: bool = True
    notes: list[str] = field(default_factory=list)
    plan: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"profile": self.profile, "min_arena": self.min_arena, "used": self.used,
                "head": self.head, "tail": self.tail, "binding": self.binding,
                "scratch_buffers": self.scratch, "exact": self.exact, "notes": self.notes}


class _Sim:
    """SingleArenaBufferAllocator with an arena large enough: head/temp grow up
    from 0, persistent bytes ``t`` grow down from the (16-aligned) end; every
    check TFLM makes is recorded as a requirement on the arena size."""

    def __init__(self):
        self.head = 0
        self.temp = 0
        self.t = 0
        self.need = 0
        self.why = ""

    def _req(self, n: int, why: str) -> None:
        if n > self.need:
            self.need, self.why = n, why

    def persist(self, size: int, align: int, why: str = "persistent") -> None:
        self.t = _up(self.t + size, align)
        # TFLM only checks a persistent allocation against the head; one made
        # while a kernel still holds temporary tensors (per-channel arrays in
        # Prepare) may then overwrite them. We require it not to.
        self._req(max(self.head, self.temp) + self.t, why)

    def temp_alloc(self, size: int, align: int, why: str) -> None:
        start = _up(self.temp, align)
        self.temp = start + size
        self._req(self.temp + self.t, why)

    def reset_temp(self) -> None:
        self.temp = self.head

    def resize_head(self, size: int, align: int, why: str) -> None:
        self.head = _up(0, align) + size
        self.temp = self.head
        self._req(self.head + self.t, why)


def compute(model: ModelInfo, prof: Profile) -> ArenaResult:
    """Replay MicroInterpreter(AllocateTensors) for ``model`` under ``prof``."""
    if model.subgraphs != 1:
        raise EdgecError(f"the model has {model.subgraphs} subgraphs (control flow); the tflm "
                         "backend computes arenas for single-subgraph models only")
    if model.offline_plan:
        raise EdgecError("the model carries an offline memory plan (OfflineMemoryAllocation "
                         "metadata); the tflm backend does not model it")
    for t in model.tensors:
        if any(d < 0 for d in t.shape):
            raise EdgecError(f"tensor {t.index} has a dynamic shape {list(t.shape)}; TFLM needs "
                             "static shapes")
    S = prof.s
    sim = _Sim()
    res = ArenaResult(prof.name, 0, 0, 0, 0, "")
    # allocator objects
    if prof.recording:
        sim.persist(*S("RecordingSingleArenaBufferAllocator"))
        sim.persist(*S("GreedyMemoryPlanner"))
        sim.persist(*S("RecordingMicroAllocator"))
    else:
        sim.persist(*S("SingleArenaBufferAllocator"))
        sim.persist(*S("GreedyMemoryPlanner"))
        sim.persist(*S("MicroAllocator"))
    # StartModelAllocation
    sim.persist(*S("MicroBuiltinDataAllocator"))
    req_size, req_align = S("ScratchBufferRequest")
    sim.resize_head(req_size * MAX_SCRATCH_PER_OP, req_align, "scratch-request area")
    sim.persist(*S("SubgraphAllocations"))
    ev_size, ev_align = S("TfLiteEvalTensor")
    sim.persist(ev_size * len(model.tensors), ev_align, "TfLiteEvalTensor array")
    nr_size, nr_align = S("NodeAndRegistration")
    sim.persist(nr_size * len(model.ops), nr_align, "NodeAndRegistration array")
    # builtin options
    for op in model.ops:
        p = OP_PARAMS.get(op.name)
        if p:
            sim.persist(*prof.params(p), why=f"options of operator {op.index}")
    allocs = [op_alloc(model, op, prof) for op in model.ops]
    for a, op in zip(allocs, model.ops):
        if not a.exact:
            res.exact = False
            res.notes.append(f"operator {op.index} ({op.name}): {a.note}")
    # Init
    for a, op in zip(allocs, model.ops):
        if a.init:
            sim.persist(a.init[0], ALIGN, f"OpData of operator {op.index}")
    # Prepare
    t_size, t_align = S("TfLiteTensor")
    q_size, q_align = S("TfLiteAffineQuantization")
    scratch: list[tuple[int, int]] = []  # (bytes, node)
    for a, op in zip(allocs, model.ops):
        for kind, v in a.events:
            if kind == "temp":
                tt = model.tensors[v]
                why = f"prepare of operator {op.index} ({op.name})"
                sim.temp_alloc(t_size, t_align, why)
                if tt.quant_channels:
                    sim.temp_alloc(q_size, q_align, why)
                    sim.temp_alloc(4 + 4 * tt.quant_channels, 4, why)
            elif kind == "persist":
                sim.persist(v, ALIGN, f"buffers of operator {op.index}")
            elif kind == "scratch":
                scratch.append((v, op.index))
        sim.reset_temp()
        sim.resize_head(req_size * (len(scratch) + MAX_SCRATCH_PER_OP), req_align,
                        "scratch-request area")
    # FinishModelAllocation
    if scratch:
        h_size, h_align = S("ScratchBufferHandle")
        sim.persist(h_size * len(scratch), h_align, "scratch buffer handles")
    z_size, z_align = S("size_t")
    sim.temp_alloc(z_size * model.subgraphs, z_align, "memory planning")
    ai_size, ai_align = S("AllocationInfo")
    sim.temp_alloc(ai_size * (len(model.tensors) + len(scratch)), ai_align, "memory planning")
    for t in model.tensors:
        if t.is_variable:
            sim.persist(t.bytes, ALIGN, "variable tensors")
    # lifetimes (AllocationInfoBuilder::MarkAllocationLifetimes)
    first = [-1] * len(model.tensors)
    last = [-1] * len(model.tensors)
    scope = 0
    for i in model.inputs:
        if 0 <= i < len(first):
            first[i] = scope if first[i] == -1 else first[i]
            last[i] = scope
    sfirst = [-1] * len(scratch)
    slast = [-1] * len(scratch)
    for n, op in enumerate(model.ops):
        scope += 1
        for o in op.outputs:
            if o >= 0 and first[o] == -1:
                first[o] = scope
        for i in op.inputs:
            if i >= 0:
                last[i] = scope
        for o in op.outputs:
            if o >= 0:
                last[o] = scope
        for s, (_, node) in enumerate(scratch):
            if node == n:
                if sfirst[s] == -1:
                    sfirst[s] = scope
                slast[s] = scope
    for o in model.outputs:
        if 0 <= o < len(first):
            if first[o] == -1:
                first[o] = scope
            last[o] = scope
    buffers = []
    names = []
    for t in model.tensors:
        if not t.has_data and not t.is_variable and t.bytes != 0:
            buffers.append((_up(t.bytes, ALIGN), first[t.index], last[t.index]))
            names.append(f"tensor {t.index}")
    for s, (b, node) in enumerate(scratch):
        buffers.append((_up(b, ALIGN), sfirst[s], slast[s]))
        names.append(f"scratch of operator {node}")
    # the planner's workspace is all the memory left; it must hold 40 bytes per buffer
    need_plan = _up(sim.temp, ALIGN) + PLANNER_BYTES_PER_BUFFER * len(buffers) + _up(sim.t, ALIGN)
    sim._req(need_plan, "memory planning (AllocationInfo + planner workspace)")
    offsets, head = greedy_plan(buffers)
    res.plan = [{"what": nm, "bytes": b[0], "first": b[1], "last": b[2], "offset": off}
                for nm, b, off in zip(names, buffers, offsets)]
    sim.reset_temp()
    sim.head = 0
    sim.temp = 0
    sim.resize_head(head, ALIGN, "activation plan")
    # MicroInterpreter::AllocateTensors: input and output TfLiteTensors
    p_size, _ = S("pointer")
    for lst in (model.inputs, model.outputs):
        sim.persist(p_size * len(lst), ALIGN, "input/output tensor pointers")
        for i in lst:
            sim.persist(t_size, t_align, "input/output TfLiteTensor")
            if model.tensors[i].quant_channels:
                sim.persist(q_size, q_align, "input/output quantization")
                sim.persist(4 + 4 * model.tensors[i].quant_channels, 4,
                            "input/output quantization")
    res.head = head
    res.tail = sim.t
    res.used = head + sim.t
    res.min_arena = _up(sim.need, ALIGN)
    res.binding = sim.why
    res.scratch = [b for b, _ in scratch]
    return res


def compute_bytes(buf: bytes, prof: Profile) -> ArenaResult:
    return compute(read_model(buf), prof)
