"""TensorFlow Lite Micro backend: a ready TFLM project instead of edgec's own C.

For teams that ship TFLM and will not switch runtimes, the bundle does the
chores around it:

* the model flatbuffer as an aligned ``const`` array in its own source file
  (``<name>_model_data.c``, flash);
* ``<name>.cc``: a ``MicroMutableOpResolver<N>`` registering exactly the model's
  builtin operators (the ``Register_<OP>_INT8()`` kernels where every use of the
  operator is int8; they are CMSIS-NN's int8-only kernels when compiled with
  ``-DCMSIS_NN`` and TFLM's generic ones otherwise), the arena, and a C shim with
  the same API as the native backend (``<name>_invoke()``, ``<name>.h`` macros);
* the arena size, computed by :mod:`edgec.backends.tflm_arena` from TFLM's allocation
  rules for 32-bit MCUs (reference and CMSIS-NN kernels) and for 64-bit hosts,
  and checked against the ``tflite-micro`` Python interpreter when installed;
* a Makefile, ``edgec.mk`` and CMakeLists.txt that compile the bundle against
  the user's TFLM (``TFLM_DIR``: its source tree; ``TFLM_LIB``: their prebuilt
  ``libtensorflow-microlite.a``; ``TFLM_CMSIS_NN=1`` when built with CMSIS-NN).

edgec never builds TFLM itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import ops
from ..ir import cgen, dtypes
from . import tflm_arena
from .base import BackendOptions, BackendResult
from ..ir.errors import EdgecError
from ..ir.graph import Graph
from ..ir.templating import render
# the user's TFLM (install, firmware objects) and the interpreter's allocation probe
from ..target.tflm import (SUPPORT_CC, TflmInstall, archive_symbols, cxx_compiler,  # noqa: F401
                           cxx_path, firmware_objects, tflm_install, tflm_try_allocate_isolated)

# builtin operator -> MicroMutableOpResolver method (TFLM 2026)
RESOLVER = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D",
    "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MUL": "AddMul",
    "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad",
    "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape",
    "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE_CONV": "AddTransposeConv", "TRANSPOSE": "AddTranspose",
    "UNPACK": "AddUnpack", "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
# int8-only kernel registrations (CMSIS-NN's when CMSIS_NN is defined; the
# headers fall back to the generic kernel otherwise) and the header declaring them
INT8_KERNELS = {
    "CONV_2D": ("Register_CONV_2D_INT8", "conv.h"),
    "DEPTHWISE_CONV_2D": ("Register_DEPTHWISE_CONV_2D_INT8", "depthwise_conv.h"),
    "FULLY_CONNECTED": ("Register_FULLY_CONNECTED_INT8", "fully_connected.h"),
    "AVERAGE_POOL_2D": ("Register_AVERAGE_POOL_2D_INT8", "pooling.h"),
    "MAX_POOL_2D": ("Register_MAX_POOL_2D_INT8", "pooling.h"),
    "SOFTMAX": ("Register_SOFTMAX_INT8", "softmax.h"),
    "ADD": ("Register_ADD_INT8", "add.h"),
    "MUL": ("Register_MUL_INT8", "mul.h"),
    "PAD": ("Register_PAD_INT8", "pad.h"),
    "TRANSPOSE": ("Register_TRANSPOSE_INT8", "transpose.h"),
    "MAXIMUM": ("Register_MAXIMUM_INT8", "maximum_minimum.h"),
    "MINIMUM": ("Register_MINIMUM_INT8", "maximum_minimum.h"),
    "SVDF": ("Register_SVDF_INT8", "svdf.h"),
    "TRANSPOSE_CONV": ("Register_TRANSPOSE_CONV_INT8", "transpose_conv.h"),
    "BATCH_MATMUL": ("Register_BATCH_MATMUL_INT8", "batch_matmul.h"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("Register_UNIDIRECTIONAL_SEQUENCE_LSTM_INT8",
                                     "unidirectional_sequence_lstm.h"),
}
# operators whose int8 kernel also needs int8 weights (input 1)
_INT8_WEIGHTS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}

# TFLite TensorType -> IR dtype for inputs/outputs
_IO_TYPES = {0: "float32", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
             9: "int8", 10: "float64", 12: "uint64", 15: "uint32", 16: "uint16"}

# The 32-bit arena adds this per operator (plus one) to what the model computes:
# struct layouts change between TFLM releases (from August to October 2026
# TfLiteFullyConnectedParams grew by 16 bytes on 64-bit hosts, for example), and
# a persistent allocation grows in 16-byte steps.
DRIFT_MARGIN_PER_OP = 16


class TflmUnsupported(EdgecError):
    """The model uses operators TFLite Micro has no kernel for."""

    def __init__(self, items):
        self.items = sorted(set(items))
        super().__init__("TensorFlow Lite Micro has no kernel for: " + ", ".join(self.items))


def check_ops(info: tflm_arena.ModelInfo) -> None:
    missing = [n for n in info.op_names() if n not in RESOLVER]
    if missing:
        raise TflmUnsupported([m if not m.startswith("CUSTOM:") else
                               f"custom operator {m[7:]!r}" for m in missing])


def _is_int8(info: tflm_arena.ModelInfo, op: tflm_arena.OpInfo) -> bool:
    x = info.t(op.inputs[0]) if op.inputs and op.inputs[0] >= 0 else None
    if x is None or x.type_name != "int8":
        return False
    if op.name in _INT8_WEIGHTS:
        w = info.t(op.inputs[1]) if len(op.inputs) > 1 else None
        if w is None or w.type_name != "int8":
            return False
    if op.name == "SOFTMAX":
        y = info.t(op.outputs[0]) if op.outputs else None
        if y is None or y.type_name != "int8":
            return False
    return True


def resolver_entries(info: tflm_arena.ModelInfo) -> list[dict]:
    """One entry per distinct builtin operator, in order of first use."""
    out = []
    for name in info.op_names():
        uses = [op for op in info.ops if op.name == name]
        reg = None
        header = None
        if name in INT8_KERNELS and all(_is_int8(info, op) for op in uses):
            reg, header = INT8_KERNELS[name]
        out.append({"op": name, "method": RESOLVER[name], "registration": reg,
                    "header": header, "count": len(uses)})
    return out


def _up(x: int, a: int = 16) -> int:
    return (x + a - 1) // a * a


@dataclass
class ArenaFigures:
    arena_32: int            # <NAME>_ARENA_SIZE on 32-bit targets
    arena_64: int            # on 64-bit hosts (the tflite-micro Python interpreter)
    details: dict = field(default_factory=dict)


def arena_figures(info: tflm_arena.ModelInfo, features=(), arch: str = "arm",
                  check: bool = True, flat: bytes | None = None) -> ArenaFigures:
    """The arena sizes the bundle declares, with how they were found."""
    host = tflm_arena.compute(info, tflm_arena.HOST_PYTHON)
    ref = tflm_arena.compute(info, tflm_arena.mcu_profile("reference"))
    carch = tflm_arena.cmsis_arch(features)
    profiles = {"host_python_64bit": host, "mcu_32bit_reference": ref}
    if arch == "arm":
        profiles[f"mcu_32bit_cmsis_nn_{carch}"] = tflm_arena.compute(
            info, tflm_arena.mcu_profile("cmsis-nn", carch))
    mcu_min = max(r.min_arena for k, r in profiles.items() if k.startswith("mcu_"))
    margin = DRIFT_MARGIN_PER_OP * (len(info.ops) + 1)
    notes = []
    exact = all(r.exact for r in profiles.values())
    if arch != "arm":
        margin *= 2
        exact = False
        notes.append("non-Arm 32-bit target: struct sizes of arm-none-eabi assumed, margin doubled")
    a32 = _up(mcu_min + margin)
    a64 = host.min_arena
    tensors = [p for p in host.plan if p["what"].startswith("tensor")]
    bound = 0
    if tensors:
        bound = max(sum(p["bytes"] for p in tensors if p["first"] <= s <= p["last"])
                    for s in range(min(p["first"] for p in tensors),
                                   max(p["last"] for p in tensors) + 1))
    details = {
        "activation_lower_bound": bound,
        "computed": {k: r.to_json() for k, r in profiles.items()},
        "declared_32bit": a32,
        "declared_64bit": a64,
        "margin_32bit": a32 - mcu_min,
        "margin_note": (f"32-bit: the larger of the reference and CMSIS-NN arenas plus "
                        f"{DRIFT_MARGIN_PER_OP} B per operator (+1) for TFLM struct-layout "
                        "changes between releases; 64-bit: the computed minimum for the "
                        "tflite-micro Python interpreter"),
        "exact": exact,
        "notes": list(dict.fromkeys(notes + [n for r in profiles.values() for n in r.notes])),
    }
    fig = ArenaFigures(a32, a64, details)
    if check and flat is not None:
        chk = interpreter_check(flat, a64)
        details["interpreter_check"] = chk
        if chk.get("status") == "adjusted":
            delta = chk["interpreter_min"] - a64
            fig.arena_64 = chk["interpreter_min"]
            fig.arena_32 = _up(a32 + delta)
            details["declared_32bit"], details["declared_64bit"] = fig.arena_32, fig.arena_64
    return fig


def interpreter_check(flat: bytes, arena: int) -> dict:
    """Run the tflite-micro Python interpreter with ``arena`` bytes: does it
    allocate, what does it report as used, and does 16 bytes less fail?"""
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "tflite-micro is not installed"}
    try:
        ok, used = tflm_try_allocate_isolated(flat, arena)
    except Exception as e:  # noqa: BLE001 - the interpreter may reject the model
        return {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:200]}"}
    if ok:
        tight = not tflm_try_allocate_isolated(flat, arena - 16)[0]
        return {"status": "ok", "declared": arena, "interpreter_used": used,
                "computed_is_minimum": tight,
                "above_used_percent": round(100.0 * (arena - used) / used, 2) if used else None}
    # the model under-estimated: find the interpreter's minimum (multiples of 16)
    lo, hi = arena, max(arena * 2, 4096)
    while not tflm_try_allocate_isolated(flat, hi)[0]:
        lo, hi = hi, hi * 2
        if hi > 1 << 30:
            return {"status": "error", "reason": "the interpreter does not allocate even with 1 GB"}
    while hi - lo > 16:
        mid = _up((lo + hi) // 2)
        if mid >= hi:
            break
        if tflm_try_allocate_isolated(flat, mid)[0]:
            hi = mid
        else:
            lo = mid
    used = tflm_try_allocate_isolated(flat, hi)[1]
    return {"status": "adjusted", "declared": arena, "interpreter_min": hi,
            "interpreter_used": used,
            "reason": "edgec's computed arena was too small for this tflite-micro version; "
                      "both declared arenas were raised by the difference"}


@dataclass
class TflmResult:
    files: dict[str, str]
    arena_size: int
    arena: ArenaFigures
    layers: list[dict]
    weights_bytes: int
    model: bytes
    resolver: list[dict]
    io: dict


def _io_desc(t: tflm_arena.TensorInfo, idx: int) -> dict:
    dt = _IO_TYPES.get(t.type)
    if dt is None:
        raise EdgecError(f"model input/output {idx} has type {t.type_name}, which the C API "
                         "cannot pass")
    n = 1
    for d in t.shape:
        n *= d
    d = {"index": idx, "name": cgen.comment_text(t.name), "shape": list(t.shape), "dtype": dt,
         "ctype": dtypes.c_type(dt), "elements": n, "bytes": n * dtypes.itemsize(dt)}
    if t.quant_channels == 1 and t.scale is not None and t.scale > 0:
        d["scale"] = t.scale
        d["zero_point"] = t.zero_point
        d["scale_c"] = cgen.c_float(t.scale)
    return d


def model_array(data: bytes, per_line: int = 16) -> str:
    """The flatbuffer as a C initializer body."""
    hexes = [f"0x{b:02x}" for b in data]
    lines = [", ".join(hexes[i:i + per_line]) for i in range(0, len(hexes), per_line)]
    return "{\n  " + ",\n  ".join(lines) + "\n}"


def generate(flat: bytes, prefix: str, target, graph=None, check: bool = True,
             model_name: str = "model") -> TflmResult:
    info = tflm_arena.read_model(flat)
    check_ops(info)
    if info.subgraphs != 1:
        raise EdgecError(f"the model has {info.subgraphs} subgraphs (control flow); the tflm "
                         "backend handles single-subgraph models")
    resolver = resolver_entries(info)
    fig = arena_figures(info, target.features, "arm" if target.arch == "arm" else target.arch,
                        check=check, flat=flat)
    arena = fig.arena_64 if target.is_host else fig.arena_32
    macs_by_op = _macs(graph, info)
    layers = []
    for op in info.ops:
        outs = [o for o in op.outputs if o >= 0]
        layers.append({
            "index": op.index, "op": op.name, "name": f"{op.name.lower()}_{op.index}",
            "outputs": [f"t{o}" for o in outs],
            "output_shapes": [list(info.tensors[o].shape) for o in outs],
            "output_dtypes": [_IO_TYPES.get(info.tensors[o].type, info.tensors[o].type_name)
                              for o in outs],
            "output_bytes": [info.tensors[o].bytes for o in outs],
            "weights_bytes": sum(info.tensors[i].bytes for i in op.inputs
                                 if i >= 0 and info.tensors[i].has_data),
            "macs": int(macs_by_op.get(op.index, 0)),
        })
    io = {"inputs": [_io_desc(info.tensors[i], k) for k, i in enumerate(info.inputs)],
          "outputs": [_io_desc(info.tensors[o], k) for k, o in enumerate(info.outputs)]}
    headers = sorted({e["header"] for e in resolver if e["header"]} - {
        "conv.h", "depthwise_conv.h", "fully_connected.h", "pooling.h", "softmax.h", "add.h",
        "mul.h", "maximum_minimum.h", "svdf.h", "transpose_conv.h", "batch_matmul.h",
        "unidirectional_sequence_lstm.h"})
    macs = sum(L["macs"] for L in layers) or _total_macs(graph)
    common = dict(prefix=prefix, PREFIX=prefix.upper(), io=io, arena_32=fig.arena_32,
                  arena_64=fig.arena_64, weights_bytes=len(flat), macs=macs,
                  model_name=cgen.comment_text(model_name), resolver=resolver,
                  n_ops=len(info.ops), extra_headers=headers, model_bytes=len(flat),
                  arena_details=fig.details)
    # every symbol carries the bundle's prefix (the shim's edgec_* helpers -> <prefix>_*)
    files = {
        f"{prefix}.h": cgen.prefix_symbols(render("tflm/model.h.j2", **common), prefix),
        f"{prefix}.cc": cgen.prefix_symbols(render("tflm/model.cc.j2", **common), prefix),
        f"{prefix}_model_data.c": render("tflm/model_data.c.j2", **common,
                                         array=model_array(flat)),
    }
    return TflmResult(files, arena, fig, layers, len(flat), flat, resolver, io)


def _macs(graph, info) -> dict[int, int]:
    """MACs per TFLite operator, from edgec's graph when it could import the model."""
    if graph is None:
        return {}
    out: dict[int, int] = {}
    for n in graph.nodes:
        m = re.search(r"_(\d+)$", n.name or "")
        if not m:
            continue
        try:
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + int(ops.get(n.op).macs(graph, n))
        except Exception:  # noqa: BLE001 - MACs are informational
            pass
    return out


def _total_macs(graph) -> int:
    if graph is None:
        return 0
    total = 0
    for n in graph.nodes:
        try:
            total += int(ops.get(n.op).macs(graph, n))
        except Exception:  # noqa: BLE001 - MACs are informational
            pass
    return total


class TflmBackend:
    """TensorFlow Lite Micro behind the backend contract: it bundles the TFLite flatbuffer
    the pipeline hands it (``options.tflite``); edgec's graph of it, when there is one,
    gives MACs and the firmware's expected outputs."""
    name = "tflm"

    def generate(self, graph: Graph | None, options: BackendOptions) -> BackendResult:
        tgt, prefix, flat = options.target, options.prefix, options.tflite
        src = options.source
        res = generate(flat, prefix, tgt, graph=graph, check=options.tflm_check,
                       model_name=src.name if src is not None else "model")
        ar = "arm-none-eabi-ar" if tgt.arch == "arm" else (
            "riscv64-unknown-elf-ar" if tgt.arch == "riscv" else "ar")
        io_bytes = sum(t["bytes"] for t in res.io["inputs"] + res.io["outputs"])
        return BackendResult(
            files=dict(res.files), arena_size=res.arena_size,
            arena_lower_bound=res.arena.details["activation_lower_bound"],
            weights_bytes=res.weights_bytes, layers=res.layers,
            macs=sum(L["macs"] for L in res.layers) or _total_macs(graph),
            from_graph=False, inputs=_io_json(res.io["inputs"]),
            outputs=_io_json(res.io["outputs"]), io_bytes=io_bytes,
            info={"model_bytes": len(flat),
                  "resolver": [{k: v for k, v in e.items() if k != "header"} for e in res.resolver],
                  "resolver_size": len(res.resolver),
                  "arena": res.arena.details},
            template_dir="tflm/",
            build_vars=dict(arena_32=res.arena.arena_32, arena_64=res.arena.arena_64,
                            nm=ar[:-2] + "nm", cxx=cxx_compiler(tgt.cc)),
            products=(f"{prefix}_linked.o",),
            firmware_files={"firmware/edgec_tflm_support.cc": SUPPORT_CC},
            estimate_note="estimate before linking: the model flatbuffer plus arena and I/O "
                          "buffers; TFLM's code is known only after linking (edgec size)",
            tflite=flat)


def _io_json(items) -> list[dict]:
    out = []
    for t in items:
        d = {"name": t["name"], "shape": t["shape"], "dtype": t["dtype"]}
        if "scale" in t:
            d["quant"] = {"scale": [t["scale"]], "zero_point": [t["zero_point"]]}
        out.append(d)
    return out
