"""``--backend tvm``: Apache TVM lowers, fuses and generates the kernels; edgec
owns the static driver, the arena and the bundle.

apache-tvm 0.27 (the pinned ``tvm`` extra) has no microTVM, AOT executor, C
runtime or memory planner any more (docs: ../shared/docs/TVM.md).  What it
still does well is import (Relax ONNX / TFLite frontends), legalize, fuse and
generate plain C for the fused kernels.  So:

1. import the model file with TVM's frontend and run the Relax pass sequence
   (LegalizeOps ... StaticPlanBlockMemory) under the target: ``main`` becomes a
   flat list of storage allocations, tensor allocations, views (reshape) and
   calls of fused TIR kernels;
2. build those TIR kernels alone with target ``c`` (assertions off): C
   functions with TVM's packed calling convention that take ``DLTensor``
   arguments and call ``TVMBackendAllocWorkspace`` / ``TVMBackendFreeWorkspace``
   for the intermediates of fused kernels;
3. walk ``main`` here: every intermediate tensor gets an offset in edgec's
   arena (:mod:`edgec.backends.memory`, by lifetimes; TVM's own storage plan is used
   when it is smaller), the kernels' workspace is a LIFO bump allocator at the
   top of the same arena, sized by replaying the constant sizes the kernels pass
   to ``TVMBackendAllocWorkspace`` (their frees must be LIFO: checked here);
   constants become ``const`` arrays; the driver is ``templates/tvm/model.c.j2``
   with the header every backend shares (``templates/model.h.j2``).

The bundle builds without TVM: the few headers TVM's C output includes are
copied from the installed wheel (Apache-2.0, with their license headers) and
the runtime functions the kernels call are defined in the driver under
bundle-private names, so the linked model needs nothing but libc/libm.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ir import cgen, dtypes
from . import memory
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, ModelSource
from ..ir.templating import render
from ..target.capture import Fd2Capture
from .base import BackendOptions, BackendResult
from .native import ConstPool, _io_desc

TVM_VERSION = "0.27.0.post1"
INSTALL_HINT = "pip install 'edgec[tvm]'"
ALIGN = 16          # arena tensors and workspace blocks
WS_ALIGN = 16

# Headers TVM's C output includes (directly or through each other), from the
# installed wheels: (package, path inside the package's include dir).
HEADERS = (
    ("tvm_ffi", "dlpack/dlpack.h"),
    ("tvm_ffi", "tvm/ffi/c_api.h"),
    ("tvm_ffi", "tvm/ffi/extra/c_env_api.h"),
    ("tvm", "tvm/runtime/base.h"),
    ("tvm", "tvm/runtime/c_backend_api.h"),
)
# The runtime functions the generated kernels may call, all defined by the
# driver (under bundle-private names).  Anything else is refused.
PLATFORM_FUNCS = ("TVMBackendAllocWorkspace", "TVMBackendFreeWorkspace",
                  "TVMFFIErrorSetRaisedFromCStr")

RELAX_PASSES = ("LegalizeOps", "AnnotateTIROpPattern", "FoldConstant", "FuseOps", "FuseTIR",
                "DeadCodeElimination", "RewriteDataflowReshape", "ToNonDataflow",
                "RemovePurityChecking", "CallTIRRewrite", "StaticPlanBlockMemory")


def require_tvm():
    """Import TVM or say in one line how to get it."""
    try:
        import tvm  # noqa: F401
        from tvm import relax, tirx  # noqa: F401
    except ImportError:
        raise EdgecError(f"the tvm backend needs Apache TVM {TVM_VERSION}: {INSTALL_HINT}") from None
    version = getattr(tvm, "__version__", "?")
    if version != TVM_VERSION:
        raise EdgecError(f"the tvm backend is pinned to apache-tvm {TVM_VERSION} (its API changes "
                         f"between releases), found {version}: {INSTALL_HINT}")
    return tvm


# --------------------------------------------------------------------------- import + lowering

def import_model(source: ModelSource, g: Graph):
    """The model file (its bytes, as the pipeline read them) through TVM's own Relax
    frontend; input shapes from edgec's graph."""
    tvm = require_tvm()
    fmt = g.meta.format
    shapes = {str(g.tensors[i].origin): list(g.tensors[i].shape) for i in g.inputs}
    try:
        if fmt == "onnx":
            from tvm.relax.frontend.onnx import from_onnx
            model, shape_dict = _onnx_for_tvm(source, shapes)
            return from_onnx(model, shape_dict=shape_dict, keep_params_in_input=False)
        if fmt == "tflite":
            model = _tflite_for_tvm(source, g)   # refuses quantized models first
            from tvm.relax.frontend.tflite import from_tflite
            return from_tflite(model)
    except EdgecError:
        raise
    except tvm.error.OpNotImplemented as e:
        err = UnsupportedError([f"TVM: {_first_line(e)}"])
    except Exception as e:  # noqa: BLE001 - TVM's importer errors come in many types
        err = EdgecError(f"TVM could not import the model: {_first_line(e)}")
    else:
        raise EdgecError(f"the tvm backend compiles ONNX and TFLite models, not {fmt}")
    # drop TVM's half-built objects now (their destructors log to stderr)
    import gc
    gc.collect()
    raise err


def _onnx_for_tvm(source: ModelSource, shapes: dict[str, list]):
    """The ONNX model prepared for TVM's importer (external data loaded, every name
    generated) and its input shapes under the new names; returns (model, shape_dict)."""
    import onnx
    proto = onnx.load_model_from_string(source.data)
    if source.path is not None:   # what onnx.load(path) does: external data beside it
        from onnx.external_data_helper import load_external_data_for_model
        load_external_data_for_model(proto, str(Path(source.path).parent))
    model, renamed = _anonymous_onnx(proto)
    init = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in init]
    shape_dict = {renamed[n]: shapes[n] for n in renamed if renamed[n] in names and n in shapes}
    return model, shape_dict


def _tflite_for_tvm(source: ModelSource, g: Graph):
    """The float TFLite model prepared for TVM's importer (every name generated);
    quantized models are refused."""
    quant = [t for t in g.tensors.values() if t.quant is not None]
    if quant:
        raise EdgecError("the tvm backend compiles float TFLite models; TVM imports quantized "
                         "TFLite ops as dequantize -> float -> quantize (no integer kernels): "
                         "use --backend native for int8 models")
    import tflite
    return tflite.Model.GetRootAsModel(_anonymous_tflite(source.data), 0)


def _anonymous_onnx(model):
    """A copy of the model for TVM's importer in which every name is generated
    (values ``v<i>``, nodes ``n<i>``, graphs ``g<i>``; no doc strings or metadata):
    TVM writes names into the C it generates (identifiers, comments) unescaped, so
    no model-supplied text may reach it.  Local functions are inlined first (their
    size checked like the native frontend's).  Returns (model, old value name -> new)."""
    import onnx
    from onnx import inliner

    m = onnx.ModelProto()
    m.CopyFrom(model)
    if m.functions:
        # the size inlining makes was checked (frontends.onnx.check_inlined_size) when the
        # pipeline imported these same bytes with edgec's frontend
        m = inliner.inline_local_functions(m)
    values: dict[str, str] = {}
    counts = {"n": 0, "g": 0}

    def value(name: str) -> str:
        if not name:
            return name   # an absent optional input or output
        if name not in values:
            values[name] = f"v{len(values)}"
        return values[name]

    def graph(gr) -> None:
        gr.name = f"g{counts['g']}"
        counts["g"] += 1
        gr.doc_string = ""
        for coll in (gr.input, gr.output, gr.value_info):
            for vi in coll:
                vi.name = value(vi.name)
                vi.doc_string = ""
        for t in gr.initializer:
            t.name = value(t.name)
            t.doc_string = ""
        for st in gr.sparse_initializer:
            st.values.name = value(st.values.name)
            st.indices.name = value(st.indices.name)
        for n in gr.node:
            n.name = f"n{counts['n']}"
            counts["n"] += 1
            n.doc_string = ""
            n.input[:] = [value(i) for i in n.input]
            n.output[:] = [value(o) for o in n.output]
            for a in n.attribute:
                a.doc_string = ""
                if a.HasField("t"):
                    a.t.name = ""
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    graph(sub)

    graph(m.graph)
    m.doc_string = ""
    m.producer_name = ""
    m.domain = ""
    del m.metadata_props[:]
    return m, values


def _anonymous_tflite(buf: bytes) -> bytes:
    """The TFLite flatbuffer for TVM's importer with generated tensor names (``t<i>``)
    and no description, subgraph names or signatures (see :func:`_anonymous_onnx`)."""
    from ai_edge_litert.tools import flatbuffer_utils as fb
    model = fb.read_model_from_bytearray(bytearray(buf))
    fb.strip_strings(model)
    for sg in model.subgraphs or []:
        for i, t in enumerate(sg.tensors or []):
            t.name = f"t{i}"
    return bytes(fb.convert_object_to_bytearray(model))


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # TVM errors end with the message after a traceback
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln or "not" in ln:
            return ln[:300]
    return (lines[-1] if lines else type(e).__name__)[:300]


def lower(mod, tvm_target):
    """The Relax pass sequence that leaves ``main`` as static allocations and kernel calls."""
    import tvm
    from tvm import relax
    seq = tvm.transform.Sequential([getattr(relax.transform, p)() for p in RELAX_PASSES])
    with tvm_target:
        return seq(mod)


SCHEDULES = ("local", "inline", "none")
CODEGENS = ("c", "llvm")


def schedule_kernels(mod, how: str = "local"):
    """TVM's TIR for a fused kernel computes every stage into a buffer of its own
    (the padded input, the convolution before its bias and activation), which the
    C code takes from the workspace: a fused Conv+Add+Relu needs its input and its
    output once more in RAM.  The schedules apply TVM's own schedule primitives to
    every kernel (a kernel they refuse stays as it is):

    * ``local`` (default): elementwise stages are inlined into elementwise
      consumers; the elementwise epilogue of a reduction is computed at the
      reduction's innermost spatial loop (``reverse_compute_at``: its buffer
      shrinks to a scalar); a padding feeding a reduction is computed per outer
      output position (``compute_at`` at the first loop of the reduction that
      indexes it, e.g. per output row of an NHWC convolution), so only the rows
      it reads are padded;
    * ``inline``: everything that can be inlined is (dlight's ``try_inline``:
      ``compute_inline`` / ``reverse_compute_inline``), paddings into the
      convolutions that read them, then epilogues as above: the least RAM (no
      workspace), but a bounds test in the convolution's inner loop;
    * ``none``: TVM's TIR unchanged.

    Returns the module and, per kernel scheduled, what was done."""
    if how not in SCHEDULES:
        raise EdgecError(f"unknown tvm schedule {how!r} (one of: {', '.join(SCHEDULES)})")
    if how == "none":
        return mod, {}
    from tvm import s_tir, tirx
    from tvm.s_tir.dlight.analysis import normalize_prim_func
    from tvm.s_tir.dlight.base.common_schedules import try_inline
    applied = {}
    updates = {}
    for gv, func in mod.functions.items():
        if not isinstance(func, tirx.PrimFunc):
            continue
        try:
            sch = s_tir.Schedule(func)
            infos = normalize_prim_func(sch)
            if infos is None:
                continue
            n0 = len(infos)
            if how == "inline":
                rem = try_inline(sch, list(infos))
            else:
                rem = _inline_into_elementwise(sch, list(infos))
            moved = _epilogues_at(sch, rem)
            if how == "local":
                moved += _paddings_at(sch, rem)
            if len(rem) < n0 or moved:
                updates[gv] = sch.mod["main"].with_attrs(func.attrs) if func.attrs else sch.mod["main"]
                applied[gv.name_hint] = {"inlined": n0 - len(rem), "moved": moved}
        except Exception:  # noqa: BLE001 - a primitive refused: keep TVM's TIR for this kernel
            continue
    for gv, f in updates.items():
        mod[gv] = f
    return mod, applied


def _lead_spatial(b) -> int:
    kinds = b.dom_kind()
    return len(kinds) - len(kinds.lstrip("S"))


def _same_block(sch, a, b) -> bool:
    return sch.get(a).same_as(sch.get(b))


def _inline_into_elementwise(sch, blocks):
    """Inline injective blocks into injective neighbours only (never a padding
    into the convolution that reads it)."""
    def injective(rv) -> bool:
        return next((b.is_injective() for b in blocks if _same_block(sch, b.block_rv, rv)), False)

    changed = True
    while changed:
        changed = False
        for i, b in enumerate(blocks):
            if not b.is_injective():
                continue
            for prim, neighbours in ((sch.compute_inline, sch.get_consumers),
                                     (sch.reverse_compute_inline, sch.get_producers)):
                try:
                    nb = neighbours(b.block_rv)
                    if nb and all(injective(c) for c in nb):
                        prim(b.block_rv)
                        blocks.pop(i)
                        changed = True
                        break
                except Exception:  # noqa: BLE001 - refused: try the next
                    continue
            if changed:
                break
    return blocks


def _epilogues_at(sch, blocks) -> int:
    """Elementwise blocks after a reduction: computed at its innermost spatial loop."""
    moved = 0
    for i, b in enumerate(blocks):
        lead = _lead_spatial(b)
        if b.is_injective() or lead == 0:
            continue
        for c in blocks[i + 1:]:
            if not c.is_injective():
                break
            try:
                sch.reverse_compute_at(c.block_rv, sch.get_loops(b.block_rv)[lead - 1])
                moved += 1
            except Exception:  # noqa: BLE001 - refused: keep that block where it is
                break
    return moved


def _region_buffer(reg):
    buf = getattr(reg, "source", None)   # 0.27: TensorRegion.source
    return reg.buffer if buf is None else buf


def _paddings_at(sch, blocks) -> int:
    """An injective block read only by a reduction: computed at the reduction's
    first loop of more than one iteration, when that loop indexes what it reads
    (e.g. the output row of an NHWC convolution) and every loop outside it
    does too (else the block would be recomputed for nothing)."""
    from tvm import tirx
    moved = 0
    for b in blocks:
        if not b.is_injective():
            continue
        try:
            cons = sch.get_consumers(b.block_rv)
            if len(cons) != 1:
                continue
            r = next((x for x in blocks if _same_block(sch, x.block_rv, cons[0])), None)
            if r is None or r.is_injective():
                continue
            written = _region_buffer(sch.get(b.block_rv).writes[0])
            used = set()
            for reg in sch.get(r.block_rv).reads:
                if _region_buffer(reg).same_as(written):
                    for rng in reg.region:
                        used |= {v.name for v in tirx.analysis.undefined_vars(rng.min)}
            target = None
            for it in r.iters:
                if it.kind != "S":
                    break
                if int(it.dom) == 1:
                    continue
                if it.var.name in used:
                    target = it.loop_rv
                break
            if target is not None:
                sch.compute_at(b.block_rv, target)
                moved += 1
        except Exception:  # noqa: BLE001 - refused: keep it where it is
            continue
    return moved


# --------------------------------------------------------------------------- main -> steps

@dataclass
class TTensor:
    key: int                 # index in Program.tensors
    shape: tuple
    dtype: str
    kind: str                # "input" | "const" | "storage" | "own" | "view"
    index: int = 0           # input index
    root: int = -1           # views: the tensor they alias
    storage: int = -1        # storage tensors: storage index
    offset: int = 0          # byte offset in the storage
    data: np.ndarray | None = None
    first: int = -1          # lifetime in binding steps
    last: int = -1
    name: str = ""           # TVM var name (comments only)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * dtypes.itemsize(self.dtype)


@dataclass
class Call:
    step: int
    func: str                # TIR function name (GlobalVar)
    args: list[int]          # tensor keys
    outputs: list[int] = field(default_factory=list)


@dataclass
class Program:
    tensors: list[TTensor]
    calls: list[Call]
    storages: list[int]      # TVM's storage sizes (bytes)
    outputs: list[int]       # tensor keys of the returned values
    inputs: list[int]


def _dtype(s: str) -> str:
    s = str(s)
    if s == "bool":
        return "bool"
    try:
        dtypes.check(s)
    except EdgecError:
        raise UnsupportedError([f"TVM tensor dtype {s}"]) from None
    return s


def analyze(mod) -> Program:
    """Walk the lowered ``main``: its parameters, its bindings in order (each one
    step of the tensors' lifetimes), then what it returns."""
    func = mod["main"]
    walk = _MainWalk()
    inputs = [walk.param(i, p) for i, p in enumerate(func.params)]
    body = func.body
    step = 0
    for block in body.blocks:
        for b in block.bindings:
            step += 1
            walk.bind(step, b.var, b.value)
    if walk.problems:
        raise UnsupportedError(walk.problems)
    outputs = walk.returns(body.body, step + 1)
    return Program(walk.tensors, walk.calls, walk.storages, outputs, inputs)


def _sinfo(v) -> tuple[tuple, str]:
    """(shape, dtype) of a Relax value; static tensors only."""
    from tvm import relax
    ty = v.ty
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise UnsupportedError([f"TVM value of type {ty}"])
    try:
        shape = tuple(int(d) for d in ty.shape.values)
    except (TypeError, ValueError, AttributeError):
        raise UnsupportedError([f"dynamic shape {ty.shape} (give --input-shape)"]) from None
    return shape, _dtype(ty.dtype)


class _MainWalk:
    """What :func:`analyze` has seen of ``main`` so far: the tensors (by key), what
    each Relax variable is bound to, TVM's storages, the kernel calls, and the
    bindings edgec cannot run."""

    def __init__(self):
        from tvm import ir
        self.tensors: list[TTensor] = []
        self.var_tensor: dict = {}      # relax.Var -> tensor key
        self.var_storage: dict = {}     # relax.Var -> storage index
        self.storages: list[int] = []
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.const_keys: list[tuple] = []
        self.op_alloc_storage = ir.Op.get("relax.memory.alloc_storage")
        self.op_alloc_tensor = ir.Op.get("relax.memory.alloc_tensor")
        self.op_builtin_alloc = ir.Op.get("relax.builtin.alloc_tensor")
        self.op_reshape = ir.Op.get("relax.reshape")

    def new(self, **kw) -> int:
        t = TTensor(key=len(self.tensors), **kw)
        self.tensors.append(t)
        return t.key

    def param(self, i: int, p) -> int:
        """Input ``i`` of ``main``."""
        shape, dt = _sinfo(p)
        k = self.new(shape=shape, dtype=dt, kind="input", index=i, name=p.name)
        self.var_tensor[p] = k
        return k

    def operand(self, e) -> int:
        """The tensor an argument names: a bound variable, or a constant (one tensor
        per distinct constant)."""
        from tvm import ir, relax
        if isinstance(e, ir.GenericConst):
            for c, k in self.const_keys:
                if c.same_as(e):
                    return k
            data = e.value.numpy()
            shape, dt = tuple(int(d) for d in data.shape), _dtype(str(e.value.dtype))
            k = self.new(shape=shape, dtype=dt, kind="const", data=data)
            self.const_keys.append((e, k))
            return k
        if isinstance(e, relax.Var) and e in self.var_tensor:
            return self.var_tensor[e]
        raise UnsupportedError([f"TVM operand {type(e).__name__}"])

    def use(self, k: int, step: int) -> None:
        """A use at ``step``: extends the lifetime of the tensor and of what it views."""
        while self.tensors[k].kind == "view":
            self.tensors[k].last = max(self.tensors[k].last, step)
            k = self.tensors[k].root
        t = self.tensors[k]
        t.last = max(t.last, step)

    def bind(self, step: int, v, val) -> None:
        """One binding ``v = val`` of ``main``."""
        from tvm import ir, relax
        if isinstance(val, relax.Call) and isinstance(val.op, ir.Op):
            self.builtin(step, v, val)
        elif isinstance(val, relax.Call) and isinstance(val.op, ir.GlobalVar):
            self.kernel_call(step, val)
        elif isinstance(val, relax.Var):
            if val in self.var_tensor:
                self.var_tensor[v] = self.var_tensor[val]
            elif val in self.var_storage:
                self.var_storage[v] = self.var_storage[val]
            else:
                self.problems.append("TVM alias of an unknown value")
        elif isinstance(val, ir.GenericConst):
            self.var_tensor[v] = self.operand(val)
        else:
            name = getattr(getattr(val, "op", None), "name", type(val).__name__)
            self.problems.append(f"TVM {name}")

    def builtin(self, step: int, v, val) -> None:
        """A call of a Relax operator: a storage, a tensor in a storage or of its own,
        or a reshape (a view); anything else is a problem."""
        if val.op.same_as(self.op_alloc_storage):
            size = int(val.args[0].values[0])
            self.var_storage[v] = len(self.storages)
            self.storages.append(size)
        elif val.op.same_as(self.op_alloc_tensor):
            shape, dt = _sinfo(v)
            sto = self.var_storage.get(val.args[0])
            if sto is None:
                raise UnsupportedError(["TVM alloc_tensor on an unknown storage"])
            self.var_tensor[v] = self.new(shape=shape, dtype=dt, kind="storage", storage=sto,
                                          offset=int(val.args[1]), first=step, last=step,
                                          name=v.name)
        elif val.op.same_as(self.op_builtin_alloc):
            shape, dt = _sinfo(v)
            self.var_tensor[v] = self.new(shape=shape, dtype=dt, kind="own", first=step, last=step,
                                          name=v.name)
        elif val.op.same_as(self.op_reshape):
            src = self.operand(val.args[0])
            shape, dt = _sinfo(v)
            self.var_tensor[v] = self.new(shape=shape, dtype=dt, kind="view", root=src, first=step,
                                          last=step, name=v.name)
            self.use(src, step)
        else:
            self.problems.append(f"TVM builtin {val.op.name}")

    def kernel_call(self, step: int, val) -> None:
        """A call of a TIR kernel; its outputs are the allocations it uses first."""
        args = [self.operand(a) for a in val.args]
        c = Call(step, val.op.name_hint, args)
        for k in args:
            t = self.tensors[k]
            # an allocation's first use is the kernel writing it
            if t.kind in ("storage", "own") and t.last == t.first:
                c.outputs.append(k)
            self.use(k, step)
        if not c.outputs:
            self.problems.append(f"TVM kernel call {c.func} without an output")
        self.calls.append(c)

    def returns(self, ret, step: int) -> list[int]:
        """The tensors ``main`` returns, used at the last step."""
        from tvm import relax
        rets = list(ret.fields) if isinstance(ret, relax.Tuple) else [ret]
        outputs = []
        for r in rets:
            k = self.operand(r)
            self.use(k, step)
            outputs.append(k)
        return outputs


# --------------------------------------------------------------------------- kernels

def kernel_module(mod, prog: Program, prefix: str):
    """The called TIR kernels as an IRModule of their own, each with its C symbol
    ``<prefix>_l<N>_<name>`` after the first layer that calls it (per-layer size
    attribution); returns (module, TIR name -> symbol)."""
    from tvm import tirx
    from tvm.ir import IRModule
    symbols: dict[str, str] = {}
    for i, c in enumerate(prog.calls):
        if c.func not in symbols:
            base = re.sub(r"[^a-z0-9_]", "_", c.func.lower())[:40].strip("_") or "kernel"
            symbols[c.func] = f"{prefix}_l{i}_{base}"
    prims = {}
    for gv, f in mod.functions.items():
        if gv.name_hint in symbols:
            if not isinstance(f, tirx.PrimFunc):
                raise UnsupportedError([f"TVM non-TIR function {gv.name_hint}"])
            prims[gv] = f.with_attr("global_symbol", symbols[gv.name_hint])
    return IRModule(prims), symbols


def _tir_build(kmod, tvm_target):
    import tvm
    from tvm import tirx
    with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_assert": True}):
        return tirx.build(kmod, tvm_target)


def build_kernels(mod, prog: Program, tvm_target, prefix: str) -> tuple[str, dict[str, str]]:
    """C source of the called TIR kernels; returns (source, TIR name -> C symbol)."""
    kmod, symbols = kernel_module(mod, prog, prefix)
    src = _tir_build(kmod, tvm_target).inspect_source()
    # The packed entry of symbol S is __tvm_ffi_S: name it S (<prefix>_l<N>_...),
    # and keep every packed function private to the bundle's C file.
    for sym in symbols.values():
        src = re.sub(rf"\b__tvm_ffi_{sym}\b", sym, src)
    src = re.sub(r"^TVM_DLL (int32_t \w+\(void\* self)", r"static \1", src, flags=re.M)
    return src, symbols


# Arm triples LLVM knows for the Cortex-M cores edgec targets (-mcpu=...)
_ARM_TRIPLES = {"cortex-m0": "thumbv6m-none-eabi", "cortex-m0plus": "thumbv6m-none-eabi",
                "cortex-m3": "thumbv7m-none-eabi", "cortex-m4": "thumbv7em-none-eabi",
                "cortex-m7": "thumbv7em-none-eabi", "cortex-m33": "thumbv8m.main-none-eabi",
                "cortex-m55": "thumbv8.1m.main-none-eabi"}
# What a TVM LLVM object may leave to the platform: C library / compiler runtime
# calls, and TVM's runtime function pointers (weak, set by the driver).
OBJECT_POINTERS = {"__TVMBackendAllocWorkspace": "TVMBackendAllocWorkspace",
                   "__TVMBackendFreeWorkspace": "TVMBackendFreeWorkspace"}


def llvm_target(tgt):
    """TVM's LLVM target for edgec's target: the host, or a Cortex-M core from -mcpu."""
    from tvm.target import Target
    if tgt.is_host:
        return Target({"kind": "llvm"}), "host"
    flags = dict(f[2:].split("=", 1) for f in tgt.cflags if f.startswith("-m") and "=" in f)
    cpu = flags.get("cpu", "")
    if tgt.arch != "arm" or cpu not in _ARM_TRIPLES:
        raise EdgecError(f"--tvm-codegen llvm: no LLVM target for {tgt.name} (Cortex-M cores and the "
                         "host only); use --tvm-codegen c")
    d = {"kind": "llvm", "mtriple": _ARM_TRIPLES[cpu], "mcpu": cpu,
         "mfloat-abi": "hard" if flags.get("float-abi") == "hard" else "soft"}
    return Target(d), f"{d['mtriple']} -mcpu={cpu} -mfloat-abi={d['mfloat-abi']}"


def build_object(mod, prog: Program, tvm_target, prefix: str):
    """The kernels as an object file by TVM's LLVM; returns (bytes, TIR name ->
    packed entry symbol, the runtime function pointers it uses, its undefined symbols)."""
    import tempfile
    kmod, symbols = kernel_module(mod, prog, prefix)
    lib = _tir_build(kmod, tvm_target)
    with tempfile.TemporaryDirectory(prefix="edgec-tvm-") as d:
        path = Path(d) / "kernels.o"
        lib.write_to_file(str(path))
        data = path.read_bytes()
    pointers, undefined = _check_object(data, set(symbols.values()))
    return data, {k: f"__tvm_ffi_{v}" for k, v in symbols.items()}, pointers, undefined


def _check_object(data: bytes, syms: set[str]) -> tuple[list[str], list[str]]:
    """Refuse an object that needs TVM's runtime; returns the runtime pointers it
    uses and its undefined symbols."""
    import io
    from elftools.elf.elffile import ELFFile
    elf = ELFFile(io.BytesIO(data))
    st = elf.get_section_by_name(".symtab")
    pointers, bad, entries, undefined = [], [], set(), set()
    for sym in st.iter_symbols():
        name = sym.name
        if not name:
            continue
        bind = sym["st_info"]["bind"]
        if sym["st_shndx"] == "SHN_UNDEF":
            undefined.add(name)
            if "tvm" in name.lower():
                bad.append(name)
        elif bind == "STB_WEAK" and sym["st_info"]["type"] == "STT_OBJECT":
            if name in OBJECT_POINTERS:
                pointers.append(name)
            elif "tvm" in name.lower():
                bad.append(name)
        elif bind == "STB_GLOBAL" and name.startswith("__tvm_ffi_"):
            entries.add(name[len("__tvm_ffi_"):])
    if bad:
        raise UnsupportedError([f"TVM kernels need the TVM runtime ({', '.join(sorted(set(bad)))})"])
    if not syms <= entries:
        raise EdgecError(f"TVM's object lacks kernel entries: {sorted(syms - entries)[:3]}")
    return sorted(pointers), sorted(undefined)


_FUNC_RE = re.compile(r"^static int32_t (\w+)\(void\* self_handle, void\* args, int32_t num_args, "
                      r"void\* result\) \{$", re.M)
_ALLOC_RE = re.compile(r"\b(\w+) = \(\(\w+\*\)\(\(\w+\*\)TVMBackendAllocWorkspace\(1, dev_id, "
                       r"\(uint64_t\)(\d+)ULL, \d+, \d+\)\)\);")
_FREE_RE = re.compile(r"TVMBackendFreeWorkspace\(1, dev_id, (\w+)\)")
_ANY_WS_RE = re.compile(r"TVMBackend\w*Workspace\(")
_CTYPE_BYTES = {"float": 4, "double": 8, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2,
                "int32_t": 4, "uint32_t": 4, "int64_t": 8, "uint64_t": 8, "bool": 1}


def function_bodies(src: str) -> dict[str, str]:
    """Generated kernel name -> its C body text."""
    starts = [(m.group(1), m.end()) for m in _FUNC_RE.finditer(src)]
    out = {}
    for i, (name, pos) in enumerate(starts):
        end = src.find("\n}\n", pos)
        out[name] = src[pos:end if end >= 0 else len(src)]
    return out


@dataclass
class Workspace:
    peak: int                # bytes of the workspace region this kernel needs
    blocks: list[int]        # sizes in allocation order
    depth: int               # most blocks live at once
    stack_arrays: int        # bytes of local arrays (TVM puts allocations <= 1 KB on the stack)


def workspace_of(body: str, name: str = "") -> Workspace:
    """Replay the kernel's TVMBackendAllocWorkspace / FreeWorkspace calls in
    program order with the driver's allocator (LIFO, blocks aligned to
    WS_ALIGN): the peak is exact for straight-line code and for loops whose
    iterations free what they allocate."""
    events = []
    for m in _ALLOC_RE.finditer(body):
        events.append((m.start(), "alloc", m.group(1), int(m.group(2))))
    for m in _FREE_RE.finditer(body):
        events.append((m.start(), "free", m.group(1), 0))
    if len(_ANY_WS_RE.findall(body)) != len(events):
        raise EdgecError(f"TVM kernel {name}: a workspace request edgec cannot size "
                         "(not a constant allocation)")
    events.sort()
    stack: list[tuple[str, int]] = []   # (var, start offset)
    top = peak = depth = 0
    blocks = []
    for _, kind, var, size in events:
        if kind == "alloc":
            start = memory.align_up(top, WS_ALIGN)
            stack.append((var, start))
            top = start + size
            peak = max(peak, top)
            depth = max(depth, len(stack))
            blocks.append(size)
        else:
            if not stack or stack[-1][0] != var:
                raise EdgecError(f"TVM kernel {name}: workspace freed out of order ({var})")
            top = stack.pop()[1]
    if stack:
        raise EdgecError(f"TVM kernel {name}: workspace never freed ({stack[-1][0]})")
    arrays = 0
    for m in re.finditer(r"^\s+(\w+)\s+\w+\[(\d+)\];$", body, re.M):
        arrays += _CTYPE_BYTES.get(m.group(1), 8) * int(m.group(2))
    return Workspace(peak, blocks, depth, arrays)


def runtime_calls(src: str) -> set[str]:
    """TVM runtime functions the generated code calls."""
    calls = set(re.findall(r"\b(TVM\w+)\s*\(", src))
    return {c for c in calls if not c.startswith("TVM_")}


def count_macs(func) -> int:
    """Multiply-accumulates of a TIR kernel: stores ``X[i] = X[i] + a * b``
    weighted by the extents of the loops around them.  (Node classes are told
    apart by name: TIR's Python classes move between TVM releases.)"""
    total = 0

    def kind(e) -> str:
        return type(e).__name__

    def is_mul(e) -> bool:
        if kind(e) == "Cast":
            e = e.value
        return kind(e) == "Mul"

    def same_load(e, store) -> bool:
        if kind(e) not in ("BufferLoad", "TensorLoad"):
            return False
        src = getattr(e, "source", None)
        if src is None:
            src = getattr(e, "buffer", None)
        return src is not None and src.same_as(store.buffer)

    def visit(s, mult: int) -> None:
        nonlocal total
        if s is None:
            return
        k = kind(s)
        if k == "For":
            try:
                ext = int(s.extent)
            except (TypeError, ValueError):
                ext = 1
            visit(s.body, mult * ext)
        elif k == "BufferStore":
            v = s.value
            if kind(v) == "Add" and ((same_load(v.a, s) and is_mul(v.b)) or
                                     (same_load(v.b, s) and is_mul(v.a))):
                total += mult
        elif k == "SeqStmt":
            for x in s.seq:
                visit(x, mult)
        else:
            for attr in ("block", "body", "then_case", "else_case"):
                child = getattr(s, attr, None)
                if child is not None and not isinstance(child, (int, float, str)):
                    visit(child, mult)

    visit(func.body, 1)
    return total


# --------------------------------------------------------------------------- the bundle

@dataclass
class TvmResult:
    model_c: str
    model_h: str
    files: dict[str, str]
    arena_size: int
    lower_bound: int
    layers: list[dict]
    weights_bytes: int
    macs: int
    info: dict
    objects: list[str] = field(default_factory=list)   # files of the bundle to link (LLVM codegen)


def header_files() -> dict[str, str]:
    """The TVM headers the kernels include, copied from the installed wheels."""
    import importlib
    out = {}
    for pkg, rel in HEADERS:
        base = Path(importlib.import_module(pkg).__file__).resolve().parent / "include"
        p = base / rel
        if not p.is_file():
            raise EdgecError(f"{pkg} has no {rel} (is apache-tvm {TVM_VERSION} installed completely?)")
        out[rel] = p.read_text()
    return out


def _dl_dtype(dt: str) -> tuple[int, int]:
    """(DLDataTypeCode, bits)."""
    if dt == "bool":
        return 6, 8
    if dt.startswith("float"):
        return 2, int(dt[5:])
    if dt.startswith("uint"):
        return 1, int(dt[4:])
    if dt.startswith("int"):
        return 0, int(dt[3:])
    raise UnsupportedError([f"TVM tensor dtype {dt}"])


class TvmBackend:
    """Apache TVM's kernels behind the backend contract: TVM imports the model file
    itself (the bytes the pipeline read), edgec plans the arena and writes the bundle."""
    name = "tvm"

    def generate(self, graph: Graph, options: BackendOptions) -> BackendResult:
        if options.quantized or graph.meta.quantization is not None:
            raise EdgecError("the tvm backend compiles the model file as it is: "
                             "--quantize needs --backend native")
        src = options.source
        if src is None or src.data is None:
            raise EdgecError("the tvm backend imports the model file with TVM's own frontend: "
                             "give it a model file, not a graph")
        res = generate(graph, src, options.prefix, {
            "target": options.target,
            **{k: v for k, v in (("tvm_schedule", options.tvm_schedule),
                                 ("tvm_codegen", options.tvm_codegen)) if v is not None}})
        return BackendResult(files={f"{options.prefix}.c": res.model_c,
                                    f"{options.prefix}.h": res.model_h, **dict(sorted(res.files.items()))},
                             arena_size=res.arena_size, arena_lower_bound=res.lower_bound,
                             weights_bytes=res.weights_bytes, layers=res.layers,
                             info=res.info, objects=res.objects)


def generate(g: Graph, source: ModelSource, prefix: str, options: dict | None = None) -> TvmResult:
    options = dict(options or {})
    require_tvm()
    with Fd2Capture():   # TVM's C++ logs warnings on stderr; edgec reports errors itself
        return _generate(g, source, prefix, options)


def _generate(g: Graph, source: ModelSource, prefix: str, options: dict) -> TvmResult:
    """The TVM backend's steps, in order: lower the model with TVM, build its kernels,
    plan the arena, lay out the driver's kernel calls, render the C sources, and
    assemble the bundle's files and report parts."""
    low = _lower(g, source, options)
    kernels = _build(low, prefix, options)
    arena = _plan_arena(low.prog, kernels.ws)
    refs = _TensorRefs(low.prog, arena, prefix)
    driver = _driver_calls(low, kernels, arena, refs)
    copies = _output_copies(low.prog, arena, refs)
    model_c, model_h = _render_sources(g, prefix, kernels, arena, refs, driver, copies)
    files, objects = _bundle_files(prefix, kernels)
    return TvmResult(model_c, model_h, files, arena.arena_size, arena.lower_bound + arena.ws_peak,
                     driver.layers, driver.weights_bytes, driver.macs, _info(low, kernels, arena),
                     objects)


@dataclass
class Lowered:
    """The model as TVM lowered it."""
    mod: object              # IRModule: ``main`` as static allocations and kernel calls
    tvm_target: object       # TVM's ``c`` target (the C kernels are built in any case)
    prog: Program            # ``main``, walked
    schedule: str            # the schedule applied (``tvm_schedule``)
    scheduled: dict          # kernel name -> what the schedule did


def _lower(g: Graph, source: ModelSource, options: dict) -> Lowered:
    """Import the model file with TVM's frontend, run the Relax passes, schedule the
    kernels and walk ``main``; its inputs and outputs must be edgec's."""
    tvm = require_tvm()
    from tvm.target import Target
    mod = import_model(source, g)
    tvm_target = Target({"kind": "c"})
    try:
        mod = lower(mod, tvm_target)
    except tvm.error.OpNotImplemented as e:
        raise UnsupportedError([f"TVM: {_first_line(e)}"]) from None
    except Exception as e:  # noqa: BLE001
        raise EdgecError(f"TVM could not lower the model: {_first_line(e)}") from None
    how = str(options.get("tvm_schedule", "local"))
    mod, scheduled = schedule_kernels(mod, how)
    prog = analyze(mod)
    _check_io(g, prog)
    return Lowered(mod, tvm_target, prog, how, scheduled)


@dataclass
class Kernels:
    """The called TIR kernels, built: C source in any case (the workspace is sized
    from it) and, with the LLVM codegen, an object file the driver calls instead."""
    codegen: str
    src: str                         # C source of the kernels
    symbols: dict[str, str]          # TIR name -> C symbol
    entries: dict[str, str]          # TIR name -> the symbol the driver calls
    ws: dict[str, Workspace]         # C symbol -> its workspace
    obj: bytes | None = None         # LLVM codegen: the kernels' object file
    pointers: list[str] = field(default_factory=list)    # runtime pointers the object uses
    undefined: list[str] = field(default_factory=list)   # its undefined symbols
    triple: str = ""                 # LLVM target of the object


def _build(low: Lowered, prefix: str, options: dict) -> Kernels:
    """Build the kernels with TVM (C, and an object with ``tvm_codegen`` llvm)."""
    codegen = str(options.get("tvm_codegen", "c"))
    if codegen not in CODEGENS:
        raise EdgecError(f"unknown tvm codegen {codegen!r} (one of: {', '.join(CODEGENS)})")
    src, symbols = build_kernels(low.mod, low.prog, low.tvm_target, prefix)
    obj = None
    entries = dict(symbols)
    pointers: list[str] = []
    undefined: list[str] = []
    triple = ""
    if codegen == "llvm":
        ltarget, triple = llvm_target(options["target"])
        obj, entries, pointers, undefined = build_object(low.mod, low.prog, ltarget, prefix)
    return Kernels(codegen, src, symbols, entries, _workspaces(src, symbols), obj, pointers,
                   undefined, triple)


def _workspaces(src: str, symbols: dict[str, str]) -> dict[str, Workspace]:
    """Each kernel's workspace, from its C source; refuses kernels that call TVM's
    runtime beyond what the driver defines."""
    extra = runtime_calls(src) - set(PLATFORM_FUNCS)
    if extra:
        raise UnsupportedError([f"TVM kernels call the TVM runtime ({', '.join(sorted(extra))})"])
    bodies = function_bodies(src)
    missing = set(symbols.values()) - set(bodies)
    if missing:
        raise EdgecError(f"TVM's C output has an unexpected shape (no body for {sorted(missing)[0]})")
    return {sym: workspace_of(bodies[sym], sym) for sym in symbols.values()}


@dataclass
class ArenaPlan:
    """Where the intermediate tensors and the kernels' workspace live in the arena."""
    buffers: list[memory.Buffer]     # the planned tensors with their lifetimes
    out_root: dict[int, int]         # tensor key -> output index: outputs kernels write in place
    offsets: dict[int, int]          # tensor key -> byte offset
    planned: int                     # bytes of the tensors
    plan_used: str                   # which plan won
    lower_bound: int                 # edgec's planner: the tensors' lower bound
    tvm_plan_bytes: int              # TVM's StaticPlanBlockMemory plan, storages and own tensors
    ws_offset: int                   # the workspace: after the tensors
    ws_peak: int
    arena_size: int


def _plan_arena(prog: Program, ws: dict[str, Workspace]) -> ArenaPlan:
    """Plan the intermediate tensors with edgec's planner (:mod:`edgec.backends.memory`),
    or TVM's storage plan when that is smaller; the workspace goes on top."""
    T = prog.tensors
    arena_keys = [t.key for t in T if t.kind in ("storage", "own")]
    out_root = _outputs_in_place(prog)
    arena_keys = [k for k in arena_keys if k not in out_root]
    buffers = [memory.Buffer(k, T[k].nbytes, T[k].first, T[k].last) for k in arena_keys]
    plan = memory.plan(buffers, ALIGN)
    memory.check_plan(buffers, plan.offsets)
    offsets = dict(plan.offsets)
    planned = plan.size
    tvm_offsets, tvm_plan_bytes = _tvm_storage_plan(prog, arena_keys)
    if tvm_plan_bytes < planned:
        offsets, planned, plan_used = tvm_offsets, tvm_plan_bytes, "tvm StaticPlanBlockMemory"
    else:
        plan_used = f"edgec.memory ({plan.order})"  # the planner's name in TVM bundles
    ws_peak = max((w.peak for w in ws.values()), default=0)
    ws_offset = memory.align_up(planned, WS_ALIGN) if ws_peak else planned
    return ArenaPlan(buffers, out_root, offsets, planned, plan_used, plan.lower_bound,
                     tvm_plan_bytes, ws_offset, ws_peak, ws_offset + ws_peak)


def _outputs_in_place(prog: Program) -> dict[int, int]:
    """Outputs a kernel writes directly (tensors TVM allocates on their own):
    tensor key -> the first output index it is."""
    out_root = {}
    for j, k in enumerate(prog.outputs):
        t = prog.tensors[k]
        if t.kind == "own" and t.key not in out_root:
            out_root[t.key] = j
    return out_root


def _tvm_storage_plan(prog: Program, keys: list[int]) -> tuple[dict[int, int], int]:
    """TVM's own plan: its storages one after another, then the tensors it allocates
    on their own; returns (tensor key -> offset, bytes)."""
    T = prog.tensors
    sto_off, pos = [], 0
    for size in prog.storages:
        sto_off.append(pos)
        pos = memory.align_up(pos + size, ALIGN)
    offsets = {}
    for k in keys:
        if T[k].kind == "storage":
            offsets[k] = sto_off[T[k].storage] + T[k].offset
        else:
            offsets[k] = pos
            pos = memory.align_up(pos + T[k].nbytes, ALIGN)
    return offsets, pos


class _TensorRefs:
    """Where every tensor lives, as a C expression, and the DLTensor descriptors the
    kernels are called with: constant ones (arena, weights) in flash, I/O ones on the
    stack.  A constant joins the pool when a call first needs it."""

    def __init__(self, prog: Program, arena: ArenaPlan, prefix: str):
        self.T = prog.tensors
        self.arena = arena
        self.prefix = prefix
        self.pool = ConstPool()
        self.layer_of_const: dict[int, int] = {}     # constant -> the first call that reads it
        for i, c in enumerate(prog.calls):
            for k in c.args:
                if self.T[k].kind == "const":
                    self.layer_of_const.setdefault(k, i)
        self.const_sym: dict[int, str] = {}
        self.desc_index: dict[int, tuple[str, int]] = {}
        self.const_descs: list[dict] = []
        self.io_descs: list[dict] = []
        self.shapes: list[tuple] = []
        self.shape_index: dict[tuple, int] = {}

    def root(self, k: int) -> int:
        """The tensor a view aliases (the tensor itself otherwise)."""
        while self.T[k].kind == "view":
            k = self.T[k].root
        return k

    def data(self, k: int) -> tuple[str, bool]:
        """(C pointer expression, is it known at compile time)"""
        r = self.root(k)
        t = self.T[r]
        if t.kind == "input":
            return f"(void*)in{t.index}", False
        if t.kind == "const":
            if r not in self.const_sym:
                self.const_sym[r] = self.pool.add(t.data, t.dtype, "c", self.layer_of_const.get(r, -1))
            return f"(void*){self.const_sym[r]}", True
        if r in self.arena.out_root:
            return f"(void*)out{self.arena.out_root[r]}", False
        return f"(void*)(EDGEC_ARENA + {self.arena.offsets[r]}u)", True

    def desc(self, k: int) -> str:
        """A C pointer to the tensor's DLTensor descriptor (made on first use)."""
        if k in self.desc_index:
            kind, i = self.desc_index[k]
            return f"&{self.prefix}_tvm_tensors[{i}]" if kind == "c" else f"&io[{i}]"
        t = self.T[k]
        shp = tuple(t.shape) or (1,)
        if shp not in self.shape_index:
            self.shape_index[shp] = len(self.shapes)
            self.shapes.append(shp)
        code, bits = _dl_dtype(t.dtype)
        expr, static = self.data(k)
        d = dict(data=expr, ndim=len(t.shape), code=code, bits=bits, shape=self.shape_index[shp],
                 comment=cgen.comment_text(f"{t.dtype} {list(t.shape)} {t.name}", 80))
        if static:
            self.desc_index[k] = ("c", len(self.const_descs))
            self.const_descs.append(d)
        else:
            self.desc_index[k] = ("io", len(self.io_descs))
            self.io_descs.append(d)
        return self.desc(k)


@dataclass
class DriverCalls:
    """The driver's kernel calls (for ``tvm/model.c.j2``) and the report's layers."""
    calls: list[dict]
    layers: list[dict]
    weights_bytes: int
    macs: int


def _driver_calls(low: Lowered, kernels: Kernels, arena: ArenaPlan, refs: _TensorRefs) -> DriverCalls:
    """One driver call and one report layer per kernel call of ``main``, in order;
    a constant's bytes count for the first layer that reads it."""
    from tvm import tirx
    T = low.prog.tensors
    prim = {gv.name_hint: f for gv, f in low.mod.functions.items() if isinstance(f, tirx.PrimFunc)}
    macs_cache: dict[str, int] = {}
    call_ctx, report_layers = [], []
    for i, c in enumerate(low.prog.calls):
        sym = kernels.entries[c.func]
        args = [refs.desc(k) for k in c.args]
        outs = []
        for k in c.outputs:
            expr, _ = refs.data(k)
            outs.append(dict(ptr=expr.replace("(void*)", "(const void*)", 1), bytes=T[k].nbytes))
        if c.func not in macs_cache:
            macs_cache[c.func] = count_macs(prim[c.func])
        consts = sorted({refs.root(k) for k in c.args if T[refs.root(k)].kind == "const"})
        wb = sum(T[k].nbytes for k in consts if refs.layer_of_const.get(k) == i)
        comment = cgen.comment_text(
            f"layer {i}: {c.func} " + ", ".join(str(list(T[k].shape)) for k in c.args
                                                   if k not in c.outputs and T[refs.root(k)].kind != "const")
            + " -> " + ", ".join(str(list(T[k].shape)) for k in c.outputs), 200)
        call_ctx.append(dict(index=i, func=sym, args=args, outs=outs, comment=comment))
        report_layers.append(_report_layer(i, c, T, kernels, arena, refs, int(macs_cache[c.func]), wb))
    return DriverCalls(call_ctx, report_layers, sum(L["weights_bytes"] for L in report_layers),
                       sum(L["macs"] for L in report_layers))


def _report_layer(i: int, c: Call, T: list[TTensor], kernels: Kernels, arena: ArenaPlan,
                  refs: _TensorRefs, macs: int, wb: int) -> dict:
    """The report's entry for kernel call ``i``."""
    ws = kernels.ws[kernels.symbols[c.func]]
    return {
        "index": i,
        "op": c.func,
        "name": c.func,
        "function": kernels.symbols[c.func],
        # TVM's tensors have no counterpart in edgec's graph: nothing for --layers to compare
        "outputs": [],
        "output_shapes": [list(T[k].shape) for k in c.outputs],
        "output_dtypes": [T[k].dtype for k in c.outputs],
        "output_bytes": [T[k].nbytes for k in c.outputs],
        "arena": [{"offset": arena.offsets[refs.root(k)], "bytes": T[k].nbytes}
                  for k in c.outputs if refs.root(k) in arena.offsets],
        "macs": macs,
        "weights_bytes": wb,
        "workspace_bytes": ws.peak,
        "workspace_blocks": ws.blocks,
        "stack_array_bytes": ws.stack_arrays,
        "arena_live_bytes": sum(b.size for b in arena.buffers if b.first <= c.step <= b.last),
    }


def _output_copies(prog: Program, arena: ArenaPlan, refs: _TensorRefs) -> list[dict]:
    """Outputs that no kernel writes in place: copied at the end of the run."""
    copies = []
    for j, k in enumerate(prog.outputs):
        r = refs.root(k)
        if arena.out_root.get(r) == j:
            continue
        expr, _ = refs.data(k)
        copies.append(dict(index=j, src=expr.replace("(void*)", "(const void*)", 1),
                           bytes=prog.tensors[k].nbytes))
    return copies


def _render_sources(g: Graph, prefix: str, kernels: Kernels, arena: ArenaPlan, refs: _TensorRefs,
                    driver: DriverCalls, copies: list[dict]) -> tuple[str, str]:
    """The bundle's model.c (driver, constants, C kernels) and model.h (the header
    every backend shares), every symbol carrying the prefix; returns (c, h)."""
    ins = [g.tensors[i] for i in g.inputs]
    outs = [g.tensors[o] for o in g.outputs]
    io = {"inputs": [_io_desc(t, i) for i, t in enumerate(ins)],
          "outputs": [_io_desc(t, j) for j, t in enumerate(outs)]}
    weights_bytes = driver.weights_bytes
    const_total = sum(max(int(d.size), 1) * dtypes.itemsize(dt) for _, dt, d, _ in refs.pool.arrays)
    assert const_total == weights_bytes or not refs.pool.arrays, (const_total, weights_bytes)
    common = dict(prefix=prefix, PREFIX=prefix.upper(), io=io, arena_size=arena.arena_size,
                  weights_bytes=weights_bytes, macs=driver.macs, num_layers=len(driver.calls),
                  model_name=cgen.comment_text(g.name),
                  meta=g.meta, with_arena=False)
    model_h = render("model.h.j2", **common)
    max_args = max((len(c["args"]) for c in driver.calls), default=1)
    ws_max_depth = max((w.depth for w in kernels.ws.values()), default=0)
    obj = kernels.obj
    model_c = render(
        "tvm/model.c.j2", **common,
        tvm_version=TVM_VERSION,
        consts=refs.pool.render(),
        kernels=kernels.src.rstrip("\n") + "\n" if obj is None else "",
        object_name=f"{prefix}_kernels.o" if obj is not None else "",
        object_target=kernels.triple,
        object_entries=sorted(set(kernels.entries.values())),
        object_pointers=[(p, OBJECT_POINTERS[p]) for p in kernels.pointers],
        ehabi_stub="__aeabi_unwind_cpp_pr0" in kernels.undefined,
        calls=driver.calls,
        copies=copies,
        const_descs=refs.const_descs,
        io_descs=refs.io_descs,
        shapes=refs.shapes,
        max_args=max_args,
        ws_offset=arena.ws_offset,
        ws_size=arena.ws_peak,
        ws_depth=ws_max_depth,
        planned_bytes=arena.planned,
        plan_used=arena.plan_used,
        arena_used=arena.arena_size > 0,
        uses_error=("TVMFFIErrorSetRaisedFromCStr" in runtime_calls(kernels.src)),
    )
    # every symbol carries the bundle's prefix (the constants' edgec_l<N>_c -> <prefix>_l<N>_c)
    return cgen.prefix_symbols(model_c, prefix), cgen.prefix_symbols(model_h, prefix)


def _bundle_files(prefix: str, kernels: Kernels) -> tuple[dict, list[str]]:
    """The bundle's files besides model.c/.h: TVM's headers and, with the LLVM
    codegen, the kernels' object; returns (files, objects to link)."""
    files: dict = {f"{rel}": text for rel, text in header_files().items()}
    objects = []
    if kernels.obj is not None:
        files[f"{prefix}_kernels.o"] = kernels.obj
        objects.append(f"{prefix}_kernels.o")
    return files, objects


def _info(low: Lowered, kernels: Kernels, arena: ArenaPlan) -> dict:
    """What the report says about TVM's part of the build."""
    ws = kernels.ws
    return {
        "tvm_version": TVM_VERSION,
        "codegen": kernels.codegen,
        **({"llvm_target": kernels.triple} if kernels.triple else {}),
        "relax_passes": list(RELAX_PASSES),
        "schedule": low.schedule,
        "scheduled_kernels": len([c for c in kernels.symbols if c in low.scheduled]),
        "kernels": len(kernels.symbols),
        "kernel_calls": len(low.prog.calls),
        "tensor_plan": arena.plan_used,
        "tensor_bytes": arena.planned,
        "tensor_lower_bound": arena.lower_bound,
        "tvm_storage_plan_bytes": arena.tvm_plan_bytes,
        "workspace_offset": arena.ws_offset,
        "workspace_bytes": arena.ws_peak,
        "kernel_stack_array_bytes": max((w.stack_arrays for w in ws.values()), default=0),
        "headers": [rel for _, rel in HEADERS],
    }


def _check_io(g: Graph, prog: Program) -> None:
    """TVM's main must take and return what edgec's graph says (order, shape, dtype)."""
    def same(a, b) -> bool:
        return int(np.prod(a.shape, dtype=np.int64)) == int(np.prod(b.shape, dtype=np.int64)) \
            and a.dtype == b.dtype
    if len(prog.inputs) != len(g.inputs) or len(prog.outputs) != len(g.outputs):
        raise EdgecError(f"TVM's import has {len(prog.inputs)} inputs / {len(prog.outputs)} outputs, "
                         f"edgec's {len(g.inputs)} / {len(g.outputs)}")
    for what, ks, names in (("input", prog.inputs, g.inputs), ("output", prog.outputs, g.outputs)):
        for j, (k, n) in enumerate(zip(ks, names)):
            t, e = prog.tensors[k], g.tensors[n]
            if not same(t, e):
                raise EdgecError(f"TVM's {what} {j} is {t.dtype} {list(t.shape)}, edgec's "
                                 f"{e.dtype} {list(e.shape)}")
