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
from pathlib import Path

from ..ir import cgen, dtypes
from . import tflm_arena
from ..ir.errors import EdgecError
from ..ir.templating import render

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
        from ..commands import reference
        import tflite_micro  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "tflite-micro is not installed"}
    try:
        ok, used = reference.tflm_try_allocate_isolated(flat, arena)
    except Exception as e:  # noqa: BLE001 - the interpreter may reject the model
        return {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:200]}"}
    if ok:
        tight = not reference.tflm_try_allocate_isolated(flat, arena - 16)[0]
        return {"status": "ok", "declared": arena, "interpreter_used": used,
                "computed_is_minimum": tight,
                "above_used_percent": round(100.0 * (arena - used) / used, 2) if used else None}
    # the model under-estimated: find the interpreter's minimum (multiples of 16)
    lo, hi = arena, max(arena * 2, 4096)
    while not reference.tflm_try_allocate_isolated(flat, hi)[0]:
        lo, hi = hi, hi * 2
        if hi > 1 << 30:
            return {"status": "error", "reason": "the interpreter does not allocate even with 1 GB"}
    while hi - lo > 16:
        mid = _up((lo + hi) // 2)
        if mid >= hi:
            break
        if reference.tflm_try_allocate_isolated(flat, mid)[0]:
            hi = mid
        else:
            lo = mid
    used = reference.tflm_try_allocate_isolated(flat, hi)[1]
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
    from .. import ops
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
    from .. import ops
    total = 0
    for n in graph.nodes:
        try:
            total += int(ops.get(n.op).macs(graph, n))
        except Exception:  # noqa: BLE001 - MACs are informational
            pass
    return total


def model_bytes(model, opts) -> tuple[bytes, object, dict]:
    """The TFLite flatbuffer to bundle, edgec's graph of it when it can import
    it (for MACs), and the report's description of the source.  A TFLite file is
    bundled as it is; anything else (ONNX, Keras, a Graph, or a TFLite model to
    quantize with ``--quantize``) goes through edgec's passes, its quantizer when
    asked, and :mod:`edgec.exporters.tflite`, like ``edgec quantize -o x.tflite``."""
    from .. import pipeline as compiler
    from ..ir.graph import Graph
    quant = getattr(opts, "quantize", None)
    if isinstance(model, Graph):
        g = model
        flat = g.meta.get("tflite_flatbuffer") if quant is None else None
        source = {"source": g.meta.get("source", g.name), "format": g.meta.get("format", "ir")}
        if flat is None:
            flat = _export(g, quant)
        return flat, g, source
    p = Path(model)
    try:
        head = p.read_bytes()[:8] if p.is_file() else b""
    except OSError as e:
        raise EdgecError(f"cannot read: {e.strerror}", str(p)) from None
    if head[4:8] == b"TFL3" and quant is None:
        source = {"source": p.name, "format": "tflite", "sha256": compiler.file_digest(p)}
        flat = p.read_bytes()
        try:
            g = compiler.load(p, opts.input_shapes)
        except EdgecError:
            g = None  # TFLM may have kernels edgec's importer lacks: MACs stay unknown
        return flat, g, source
    g = compiler.load(p, opts.input_shapes)
    source = {"source": p.name, "format": g.meta.get("format"), "sha256": compiler.file_digest(p)}
    return _export(compiler.lower(g, opts), quant), g, source


def _export(g, quant=None) -> bytes:
    """edgec's graph as a TFLite flatbuffer (NHWC; quantized first when asked)."""
    from .. import pipeline as compiler
    from ..exporters import tflite as tfl_export
    from ..passes import layout
    if layout.needs_nhwc(g):  # ONNX models: TFLite knows only NHWC
        g = layout.to_nhwc(g)
    if quant is not None:
        g, _, _ = compiler.quantize_graph(g, quant)
    return tfl_export.to_bytes(g)


def cxx_compiler(cc: str) -> str:
    """The C++ driver beside a target's C compiler (arm-none-eabi-gcc -> arm-none-eabi-g++)."""
    if cc.endswith("gcc"):
        return cc[:-3] + "g++"
    if cc.endswith("clang"):
        return cc + "++"
    return "c++"


def compile_bundle(model, opts, tgt, prefix: str):
    """``compile_full`` for ``--backend tflm``: (Bundle, edgec's Graph or None)."""
    from .. import __version__, frontends
    from ..ir.bundle import Bundle
    flat, g, source = model_bytes(model, opts)
    res = generate(flat, prefix, tgt, graph=g, check=opts.extra.get("tflm_check", True),
                   model_name=source.get("source", "model"))
    b = Bundle(prefix, products=("*.o", f"lib{prefix}.a", f"{prefix}_linked.o", "firmware.elf",
                                 "firmware.map"))
    for name, text in res.files.items():
        b.add(name, text)
    ar = "arm-none-eabi-ar" if tgt.arch == "arm" else (
        "riscv64-unknown-elf-ar" if tgt.arch == "riscv" else "ar")
    from ..target import emulator
    ctx = dict(name=prefix, NAME=prefix.upper(), target=tgt, optflags=opts.optflags(),
               arena_size=res.arena_size, arena_32=res.arena.arena_32,
               arena_64=res.arena.arena_64, weights_bytes=res.weights_bytes, ar=ar,
               nm=ar[:-2] + "nm", cxx=cxx_compiler(tgt.cc), firmware=False,
               qemu_cmd=emulator.qemu_command_line(tgt), products=b.products)
    test_inputs = None
    if opts.firmware:
        if g is None:
            raise EdgecError("--firmware with --backend tflm needs a model edgec can import "
                             "(its test vectors and expected outputs come from edgec's graph)")
        from ..target import firmware
        test_inputs = firmware.add_to_bundle(b, g, prefix, tgt, opts, ctx)
        b.add("firmware/edgec_tflm_support.cc", _SUPPORT_CC)
    b.add("edgec.mk", render("tflm/edgec.mk.j2", **ctx))
    b.add("Makefile", render("tflm/Makefile.j2", **ctx))
    b.add("CMakeLists.txt", render("tflm/CMakeLists.txt.j2", **ctx))
    io_bytes = sum(t["bytes"] for t in res.io["inputs"] + res.io["outputs"])
    macs = sum(L["macs"] for L in res.layers) or _total_macs(g)

    def io_json(items):
        out = []
        for t in items:
            d = {"name": t["name"], "shape": t["shape"], "dtype": t["dtype"]}
            if "scale" in t:
                d["quant"] = {"scale": [t["scale"]], "zero_point": [t["zero_point"]]}
            out.append(d)
        return out

    shapes = opts.input_shapes or {}
    if not isinstance(shapes, dict):
        shapes = frontends.parse_input_shapes(shapes)
    b.report = {
        "schema": "edgec-build/1",
        "edgec_version": __version__,
        "model": source,
        "name": prefix,
        "target": tgt.name,
        "backend": "tflm",
        "options": {"opt_level": opts.opt_level, "lto": opts.lto,
                    "input_shapes": {k: list(v) for k, v in sorted(shapes.items())}},
        "transformations": [],
        "inputs": io_json(res.io["inputs"]),
        "outputs": io_json(res.io["outputs"]),
        "arena_bytes": res.arena_size,
        "arena_lower_bound": res.arena.details["activation_lower_bound"],
        "weights_bytes": res.weights_bytes,
        "io_bytes": io_bytes,
        "macs": macs,
        "layers": res.layers,
        "estimate": {
            "note": "estimate before linking: the model flatbuffer plus arena and I/O buffers; "
                    "TFLM's code is known only after linking (edgec size)",
            "flash_constants_bytes": res.weights_bytes,
            "ram_bytes": res.arena_size + io_bytes,
        },
        "tflm": {
            "model_bytes": len(flat),
            "resolver": [{k: v for k, v in e.items() if k != "header"} for e in res.resolver],
            "resolver_size": len(res.resolver),
            "arena": res.arena.details,
        },
    }
    if test_inputs is not None:
        b.report["test_inputs"] = test_inputs
    b.tflm_model = flat
    return b, g



# ---------------------------------------------------------------------------
# firmware: the bundle compiled against the user's TFLM (edgec never builds TFLM)

@dataclass
class TflmInstall:
    """Where the user's TFLM is: its source tree, third-party headers, library,
    and how the library was built (CMSIS-NN kernels; release: no error strings)."""
    dir: Path
    third_party: Path
    lib: Path | None
    cmsis_nn: bool
    release: bool = False

    def includes(self) -> list[Path]:
        tp = self.third_party
        return [self.dir, tp / "flatbuffers" / "include", tp / "gemmlowp", tp / "ruy"]

    def defines(self) -> list[str]:
        d = ["-DTF_LITE_STATIC_MEMORY"] + (["-DCMSIS_NN"] if self.cmsis_nn else [])
        if self.release:  # TFLM's BUILD_TYPE=release: MicroPrintf does not exist
            d += ["-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS"]
        return d


def archive_symbols(path: Path) -> set[str]:
    """The global symbols a static library (GNU ar) defines, from its index."""
    import struct
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise EdgecError(f"{path} is not a static library (ar archive)")
        hdr = f.read(60)
        if len(hdr) < 60 or hdr[:16].strip() not in (b"/", b"/SYM64/"):
            return set()
        size = int(hdr[48:58])
        data = f.read(size)
    wide = hdr[:16].strip() == b"/SYM64/"
    w = 8 if wide else 4
    n = struct.unpack(">Q" if wide else ">I", data[:w])[0]
    names = data[w + n * w:].split(b"\0")[:n]
    return {x.decode("latin-1") for x in names}


def tflm_install(need_lib: bool = True, target_name: str = "cortex-m4") -> TflmInstall:
    """TFLM_DIR / TFLM_LIB (/ TFLM_CMSIS_NN) from the environment, checked; each
    missing piece is one line saying what to set."""
    import os
    d = os.environ.get("TFLM_DIR", "").strip()
    if not d:
        raise EdgecError("TFLM_DIR is not set: set it to your TensorFlow Lite Micro source tree "
                         "(the directory holding tensorflow/lite/micro)")
    root = Path(d).expanduser()
    if not (root / "tensorflow/lite/micro/micro_interpreter.h").is_file():
        raise EdgecError(f"TFLM_DIR={d} has no tensorflow/lite/micro/micro_interpreter.h: set it "
                         "to the TensorFlow Lite Micro source tree")
    tp = root / "tensorflow/lite/micro/tools/make/downloads"
    if not (tp / "flatbuffers/include").is_dir():
        tp = root / "third_party"
    tp = Path(os.environ.get("TFLM_THIRD_PARTY", "") or tp)
    if not (tp / "flatbuffers/include/flatbuffers/flatbuffers.h").is_file():
        raise EdgecError(f"no flatbuffers headers in {tp}: build TFLM once in TFLM_DIR (its make "
                         "fetches them) or set TFLM_THIRD_PARTY to the directory holding "
                         "flatbuffers/, gemmlowp/ and ruy/")
    lib = None
    libs = os.environ.get("TFLM_LIB", "").strip()
    if need_lib:
        if not libs:
            raise EdgecError(f"TFLM_LIB is not set: set it to your libtensorflow-microlite.a built "
                             f"for {target_name} (TFLM's make ... microlite writes it to "
                             "gen/<build>/lib/)")
        lib = Path(libs).expanduser()
        if not lib.is_file():
            raise EdgecError(f"TFLM_LIB={libs} does not exist: set it to your "
                             "libtensorflow-microlite.a")
    syms = archive_symbols(lib) if lib is not None else set()
    flag = os.environ.get("TFLM_CMSIS_NN", "").strip().lower()
    if flag in ("1", "yes", "true", "on"):
        cmsis = True
    elif flag in ("0", "no", "false", "off"):
        cmsis = False
    else:  # a CMSIS-NN build carries CMSIS-NN's functions
        cmsis = "arm_convolve_wrapper_s8" in syms
    release = bool(syms) and "_Z11MicroPrintfPKcz" not in syms
    return TflmInstall(root, tp, lib, cmsis, release)


_SUPPORT_CC = """// edgec_tflm_support.cc: what TFLM's C++ needs from a bare-metal runtime
// (edgec's firmware harness; your application has its own).
// TFLM never frees anything; its classes' virtual destructors still name operator delete.
#include <cstddef>
extern "C" {
#include "edgec_fw.h"
}
void operator delete(void* p) noexcept { (void)p; }
void operator delete(void* p, std::size_t n) noexcept { (void)p; (void)n; }
extern "C" void __cxa_pure_virtual() {
  fw_puts("EDGEC-ERROR pure virtual call\\n");
  fw_exit(FW_EXIT_ERROR);
}
// TFLM's fatal errors and failed asserts: an error exit, not newlib's stdio + signals
extern "C" void abort(void) {
  fw_puts("EDGEC-ERROR abort() in TFLM\\n");
  fw_exit(FW_EXIT_ERROR);
}
extern "C" void __assert_func(const char* file, int line, const char* func, const char* expr) {
  (void)file; (void)line; (void)func; (void)expr;
  fw_puts("EDGEC-ERROR assertion failed in TFLM\\n");
  fw_exit(FW_EXIT_ERROR);
}
"""


def firmware_objects(target, bundle_dir: Path, prefix: str, out_dir: Path, flags, inst: TflmInstall,
                     harness_dir: Path | None = None):
    """Compile a TFLM bundle (its C model array, its C++ shim) and the small C++
    runtime support for firmware; warnings are errors in edgec's own files."""
    from ..target import toolchain
    out_dir = Path(out_dir)
    objs = toolchain.compile_objects(target, [Path(bundle_dir) / f"{prefix}_model_data.c"],
                                     out_dir, [bundle_dir], list(flags), strict=True)
    (out_dir / "edgec_tflm_support.cc").write_text(_SUPPORT_CC)
    cxx = cxx_path(target)
    for src in (Path(bundle_dir) / f"{prefix}.cc", out_dir / "edgec_tflm_support.cc"):
        obj = out_dir / (src.stem + "_cc.o")
        cmd = [cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", *target.cflags, *flags,
               "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", *inst.defines(),
               f"-I{bundle_dir}", *([f"-I{harness_dir}"] if harness_dir else []),
               *[a for d in inst.includes() for a in ("-isystem", str(d))],
               "-c", str(src), "-o", str(obj)]
        toolchain.run(cmd, what=f"{Path(cxx).name} {src.name}")
        objs.append(obj)
    return objs


def cxx_path(target) -> str:
    from ..target import toolchain
    pkg = "libstdc++-arm-none-eabi-newlib" if target.arch == "arm" else target.package
    return toolchain.which(cxx_compiler(target.cc), pkg)
