"""``edgec verify``: run the compiled model and compare it with the reference runtime.

int8 models must match TFLite Micro bit for bit; float models within
``max|err| <= rtol * max|reference|`` per tensor (rtol 1e-4 by default).  With
``layers=True`` every intermediate tensor the reference exposes is compared
too, so a check cannot pass only because a saturated output hides a wrong
layer.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import data, ops
from ..ir import dtypes
from ..ir.bundle import Bundle
from ..ir.errors import CheckFailed, EdgecError
from ..ir.graph import Graph
from ..ops import interp
from ..ops.conv import HYBRID_NOTE
from ..pipeline import Options, compile_full, compress_graph, load, lower, quantize_graph
from ..target import elfsize, firmware
from ..target.emulator import HostProgram, io_specs, read_outputs, write_samples
from ..target.targets import load as load_target
from ..target.tflm import tflm_install
from . import reference
from .run import run_on_target


@dataclass
class Comparison:
    what: str            # "output 0" or "layer 3 (Conv) out 0"
    tensor: str
    exact: bool
    max_abs: float
    ref_max: float
    mismatches: int
    elements: int
    ok: bool

    def line(self) -> str:
        if self.exact:
            return (f"{self.what:<40} {'bit-exact' if self.ok else 'MISMATCH':<10} "
                    f"max |diff| {self.max_abs:g} LSB, {self.mismatches}/{self.elements} differ")
        rel = self.max_abs / self.ref_max if self.ref_max else self.max_abs
        return (f"{self.what:<40} {'ok' if self.ok else 'MISMATCH':<10} "
                f"max |err| {self.max_abs:.3g} ({rel:.2e} of max |ref| {self.ref_max:.3g})")


@dataclass
class VerifyResult:
    model: str
    target: str
    reference: str
    samples: int
    outputs: list[Comparison] = field(default_factory=list)
    layers: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.outputs) and all(c.ok for c in self.layers)

    def to_json(self) -> dict:
        def c(x: Comparison):
            return {"what": x.what, "tensor": x.tensor, "exact": x.exact, "max_abs": x.max_abs,
                    "ref_max": x.ref_max, "mismatches": x.mismatches, "elements": x.elements,
                    "ok": x.ok}
        return {"model": self.model, "target": self.target, "reference": self.reference,
                "samples": self.samples, "ok": self.ok,
                "outputs": [c(x) for x in self.outputs], "layers": [c(x) for x in self.layers],
                "notes": self.notes, **self.extra}


def compare(what: str, tensor: str, got: np.ndarray, ref: np.ndarray, rtol: float) -> Comparison:
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.size != ref.size:
        return Comparison(what, tensor, True, float("inf"), 0.0, max(got.size, ref.size),
                          max(got.size, ref.size), False)
    g = got.reshape(-1)
    r = ref.reshape(-1)
    exact = not (np.issubdtype(r.dtype, np.floating) or np.issubdtype(g.dtype, np.floating))
    if exact:
        d = np.abs(g.astype(np.int64) - r.astype(np.int64))
        mism = int(np.count_nonzero(d))
        return Comparison(what, tensor, True, float(d.max(initial=0)), float(np.abs(r).max(initial=0)),
                          mism, int(r.size), mism == 0)
    gf = g.astype(np.float64)
    rf = r.astype(np.float64)
    both_nan = np.isnan(gf) & np.isnan(rf)
    same_inf = np.isinf(gf) & np.isinf(rf) & (np.sign(gf) == np.sign(rf))
    diff = np.where(both_nan | same_inf, 0.0, np.abs(gf - rf))
    diff = np.where(np.isnan(diff), np.inf, diff)
    finite_ref = rf[np.isfinite(rf)]
    ref_max = float(np.abs(finite_ref).max(initial=0.0))
    tol = rtol * max(ref_max, 1e-30)
    mism = int(np.count_nonzero(diff > tol))
    return Comparison(what, tensor, False, float(diff.max(initial=0.0)), ref_max, mism,
                      int(r.size), mism == 0)


def label_indices(g: Graph, name: str, ref: np.ndarray) -> np.ndarray:
    """String labels of the reference -> the indices edgec outputs (label table of
    the output in ``g.meta.labels``)."""
    if ref.dtype.kind not in "OUS" or g is None:
        return ref
    labels = g.meta.labels
    t = g.tensors[name]
    table = labels.get(name) or labels.get(str(t.origin))
    if not table:
        raise EdgecError(f"output {name!r}: the reference gives strings and edgec has no label table")
    index = {v: i for i, v in enumerate(table)}
    flat = [index.get(v.decode() if isinstance(v, bytes) else str(v), -1) for v in ref.reshape(-1)]
    return np.asarray(flat, np.int64).reshape(ref.shape)


def views_of(g: Graph) -> dict[str, list[str]]:
    """tensor -> tensors that are views (Reshape) of it, transitively."""
    out: dict[str, list[str]] = {}
    root_of: dict[str, str] = {}  # view -> its root (a dict, not a scan of out per view)
    for n in g.nodes:
        if ops.get(n.op).view:
            src = n.inputs[0]
            root = root_of.get(src, src)
            out.setdefault(root, []).append(n.outputs[0])
            root_of[n.outputs[0]] = root
    return out


REFERENCE_NAMES = {"tflm": "TFLite Micro interpreter", "litert": "ai-edge-litert (BUILTIN_REF)",
                   "onnxruntime": "onnxruntime", "tensorflow": "TensorFlow (the model itself)",
                   "edgec": "edgec transformed-graph reference (edgec.ops.interp)"}


def run_reference(kind: str, model: Path, g: Graph, samples, intermediates: bool):
    """The reference runtime's outputs (and intermediate tensors).  A runtime that
    cannot load or run the model (an operator or version it lacks) is a clear error:
    there is nothing to compare with."""
    try:
        return _run_reference(kind, model, g, samples, intermediates)
    except EdgecError:
        raise
    except Exception as e:  # noqa: BLE001 - the runtime's own exceptions, any type
        msg = " ".join(str(e).split())[:300]
        raise EdgecError(f"the {REFERENCE_NAMES.get(kind, kind)} cannot run this model, so there is "
                         f"nothing to verify against ({type(e).__name__}: {msg})") from None


def _run_reference(kind: str, model: Path, g: Graph, samples, intermediates: bool):
    if kind == "tflm":
        # in a child process: the interpreter can crash on a malformed model
        return reference.isolated(reference.run_tflm, model, samples, intermediates)
    if kind == "litert":
        return reference.run_litert(model, samples, intermediates)
    if kind == "tensorflow":
        # the model itself in TensorFlow; intermediate tensors from ai-edge-litert running
        # the converted file (edgec's graph is its import: the same tensors)
        outs = reference.run_tensorflow(model, g.meta.format, g, samples)
        inter = reference.run_litert(g.meta.tflite_flatbuffer, samples, True)[1] if intermediates else None
        return outs, inter
    if kind == "onnxruntime":
        names = [str(g.tensors[i].origin) for i in g.inputs]
        inter = None
        if intermediates:
            labels = g.meta.labels     # string labels in the model: not comparable
            inter = {str(t.origin): t.dtype for name, t in g.tensors.items()
                     if t.origin is not None and not t.is_const and isinstance(t.origin, str)
                     and name not in labels}
        return reference.run_onnxruntime(model, samples, names, inter)
    raise EdgecError(f"no reference runtime for this model ({kind})")


def run_edgec_reference(g: Graph, samples, intermediates: bool):
    """edgec's own graph interpreter as the reference (quantized graphs): outputs per
    sample and intermediate tensors keyed like the other runtimes, by origin."""
    outs, inters = [], []
    for s in samples:
        env = interp.run(g, s, keep_all=True)
        outs.append([env[o] for o in g.outputs])
        if intermediates:
            inters.append({t.origin: env[nm] for nm, t in g.tensors.items()
                           if t.origin is not None and not t.is_const and nm in env})
    return outs, (inters if intermediates else None)


def verify(model, target: str = "host", n: int = 10, seed: int = 0, inputs_file: str | None = None,
           layers: bool = False, rtol: float = 1e-4, input_shapes=None, sanitize: bool = False,
           work_dir: str | None = None, options: dict | None = None,
           compare_litert: bool = True, quantize=None, backend: str = "native",
           compress=None, optimize: str = "speed", raw_inputs: bool = False,
           fit_check: bool = True) -> VerifyResult:
    """``quantize`` (a QuantConfig): quantize the float model with edgec first and
    check the compiled int8 model bit for bit against edgec's quantized-graph reference.
    ``compress`` (an edgec.passes.compress.CompressConfig): likewise with the low-rank /
    pruned / binarized graph as the reference.  ``backend="tflm"``: see :func:`verify_tflm`.
    ``inputs_file``: samples read by :func:`edgec.data.load` (float values for an int8
    input are quantized with its scale and zero point, and a note says so);
    ``raw_inputs``: the file holds the integer levels of integer inputs themselves.

    The steps: the graph and its reference runtime, the samples, the reference's
    results, the pipeline and the toolchain (a host program, or firmware in the
    target's emulator), then the comparisons."""
    model = Path(model)
    opts = Options(target=target, backend=backend, name="model", input_shapes=None, optimize=optimize,
                   extra=options, fit_check=fit_check)
    if raw_inputs and opts.tree_quantized_input:
        raise EdgecError("--raw-inputs with --quantized-input: the reference runtime takes the "
                         "model's float features; give those (edgec encodes them as levels)")
    if backend == "tflm":
        if compress is not None and compress.any():
            raise EdgecError("--prune, --low-rank and --binarize need --backend native")
        if layers:
            raise EdgecError("--layers compares edgec's own layers; with --backend tflm only "
                             "the outputs are compared")
        graph = None
        if quantize is not None:
            graph, _, _ = quantize_graph(lower(load(model, input_shapes)), quantize)
        return verify_tflm(model, target, n, seed, inputs_file, rtol, input_shapes, work_dir,
                           graph=graph, raw_inputs=raw_inputs)
    g0, kind, hybrid = _graph_and_reference(model, input_shapes, quantize, compress)
    notes: list[str] = []
    samples = data.input_samples(g0, n, seed, inputs_file, raw=raw_inputs, notes=notes)
    if not samples:
        raise EdgecError("no input samples to verify with")
    with _work_dir(work_dir) as work:
        res = VerifyResult(str(model), target, REFERENCE_NAMES.get(kind, kind), len(samples),
                           notes=notes)
        if kind == "edgec":
            ref_outs, ref_inter = run_edgec_reference(g0, samples, layers)
        else:
            ref_outs, ref_inter = run_reference(kind, model, g0, samples, layers)
        ran = _compile_and_run(g0, opts, target, samples, work, layers, sanitize, res)
        _compare_outputs(res, ran.g, ran.outs, ref_outs, rtol)
        if layers:
            _compare_layers(res, ran.g, ran.bundle.report, ran.trace, ref_inter, len(samples), rtol)
            if backend != "native" and not res.layers:
                res.notes.append(f"the {backend} backend's fused kernels have no counterpart in the "
                                 "reference's tensors: only the outputs were compared")
        if kind == "tensorflow":
            _compare_converted(res, g0, ran.g, ran.outs, samples, rtol)
        if kind == "tflm" and compare_litert:
            _note_litert(res, model, ran.g, ran.outs, samples, rtol)
        if hybrid and kind != "edgec":
            res.notes.append(hybrid[0] + " (a difference from the reference is expected there)")
        return res


def _graph_and_reference(model: Path, input_shapes, quantize, compress) -> tuple[Graph, str, list[str]]:
    """The graph to compile and the kind of reference that runs it: the model's own
    runtime, or edgec's interpreter on the graph edgec compressed or quantized;
    also the notes of float kernels with int8 (hybrid) weights.  Returns
    (graph, reference kind, hybrid notes)."""
    g0 = load(model, input_shapes)
    kind = reference.kind_for(model, g0)
    hybrid = [t for t in g0.meta.transforms if t.startswith(HYBRID_NOTE)]
    if quantize is not None or (compress is not None and compress.any()):
        gf = lower(g0)
        g0 = gf
        if compress is not None and compress.any():
            g0, _ = compress_graph(gf, compress, quantize)
        if quantize is not None:
            g0, _, _ = quantize_graph(g0, quantize)
        kind = "edgec"
    return g0, kind, hybrid


@contextmanager
def _work_dir(work_dir: str | None):
    """Where the bundle is built and run: ``work_dir``, or a temporary directory
    removed afterwards."""
    tmp = tempfile.TemporaryDirectory(prefix="edgec-verify-") if work_dir is None else None
    try:
        yield Path(work_dir or tmp.name)
    finally:
        if tmp is not None:
            tmp.cleanup()


@dataclass
class _Ran:
    """The compiled model's run on every sample."""
    outs: list               # per sample, the outputs
    trace: dict | None       # per (sample, layer, output) the raw tensor (``layers``)
    bundle: Bundle
    g: Graph                 # the graph as the pipeline compiled it


def _compile_and_run(g0: Graph, opts: Options, target: str, samples, work: Path, layers: bool,
                     sanitize: bool, res: VerifyResult) -> _Ran:
    """The pipeline compiles ``g0``, the toolchain builds the bundle, and it runs every
    sample: as a host program, or as firmware in the target's emulator (its figures
    in ``res.extra["firmware"]``)."""
    tgt = load_target(target)
    if tgt.is_host:
        bundle, g = compile_full(g0, opts)
        bdir = bundle.write(work / "bundle")
        prog = HostProgram(bdir, bundle.report, work / "host", trace=layers, sanitize=sanitize)
        outs, trace = prog.run(data.encode(g, samples, notes=res.notes), trace=layers)
    else:
        outs, trace, bundle, g, fw_info = run_on_target(g0, opts, samples, work, layers,
                                                        notes=res.notes)
        res.extra["firmware"] = fw_info
    return _Ran(outs, trace, bundle, g)


def _compare_outputs(res: VerifyResult, g: Graph, outs, ref_outs, rtol: float) -> None:
    """Every output of every sample against the reference's."""
    for j, name in enumerate(g.outputs):
        got = np.stack([o[j] for o in outs])
        ref = np.stack([np.asarray(r[j]).reshape(got.shape[1:]) for r in ref_outs])
        ref = label_indices(g, name, ref)
        res.outputs.append(compare(f"output {j}", str(g.tensors[name].origin), got, ref, rtol))


def _compare_converted(res: VerifyResult, g0: Graph, g: Graph, outs, samples, rtol: float) -> None:
    """A TensorFlow model: the outputs against the converted file in ai-edge-litert
    too (an import mistake shows here, a converter mistake against TensorFlow)."""
    lit_outs, _ = run_reference("litert", g0.meta.tflite_flatbuffer, g0, samples, False)
    for j, name in enumerate(g.outputs):
        got = np.stack([o[j] for o in outs])
        lit = np.stack([np.asarray(r[j]).reshape(got.shape[1:]) for r in lit_outs])
        res.outputs.append(compare(f"output {j} vs ai-edge-litert (converted .tflite)",
                                   str(g.tensors[name].origin), got, lit, rtol))


def _note_litert(res: VerifyResult, model: Path, g: Graph, outs, samples, rtol: float) -> None:
    """An int8 TFLite model: how far ai-edge-litert is from the outputs (a note only:
    its int8 rounding differs from TFLite Micro's)."""
    try:
        lit_outs, _ = reference.run_litert(model, samples)
        for j in range(len(g.outputs)):
            got = np.stack([o[j] for o in outs])
            lit = np.stack([np.asarray(r[j]).reshape(got.shape[1:]) for r in lit_outs])
            c = compare(f"output {j}", "", got, lit, rtol)
            res.notes.append(f"vs ai-edge-litert (BUILTIN_REF) output {j}: max |diff| "
                             f"{c.max_abs:g} LSB, {c.mismatches}/{c.elements} elements differ "
                             "(its int8 rounding differs from TFLite Micro's)")
    except Exception as e:  # noqa: BLE001 - an informational comparison
        res.notes.append(f"ai-edge-litert comparison skipped: {e}")


def _compare_layers(res: VerifyResult, g: Graph, report: dict, trace: dict, ref_inter,
                    nsamples: int, rtol: float) -> None:
    views = views_of(g)
    for L in report["layers"]:
        for k, name in enumerate(L["outputs"]):
            t = g.tensors[name]
            cands = [name] + views.get(name, [])
            origin = None
            for c in cands:
                o = g.tensors[c].origin
                if o is not None and o in ref_inter[0]:
                    origin = o
                    break
            if origin is None:
                continue
            got, ref = [], []
            for s in range(nsamples):
                raw = trace.get((s, L["index"], k))
                if raw is None:
                    break
                got.append(np.frombuffer(raw, dtype=dtypes.np_dtype(t.dtype)))
                ref.append(np.asarray(ref_inter[s][origin]).reshape(-1))
            if len(got) != nsamples:
                continue
            c = compare(f"layer {L['index']} {L['op']} out {k}", str(origin),
                        np.stack(got), np.stack(ref), rtol)
            res.layers.append(c)


def verify_tflm(model: Path, target: str = "host", n: int = 10, seed: int = 0,
                inputs_file: str | None = None, rtol: float = 1e-4, input_shapes=None,
                work_dir: str | None = None, graph=None, raw_inputs: bool = False) -> VerifyResult:
    """``--backend tflm``: on the host, the bundled model array runs in the
    tflite-micro Python interpreter with the arena the bundle declares, and its
    outputs are compared with edgec's native backend (both follow TFLite Micro's
    int8 semantics: bit for bit); on an MCU target, the TFLM firmware runs in QEMU
    and is compared with the reference runtime, as for the native backend."""
    tgt = load_target(target)
    try:
        g0 = graph if graph is not None else load(model, input_shapes)
    except EdgecError as e:
        raise EdgecError(f"edgec cannot import this model, so there is nothing to compare the "
                         f"TFLM bundle with ({e})") from None
    notes: list[str] = []
    samples = data.input_samples(g0, n, seed, inputs_file, raw=raw_inputs, notes=notes)
    if not samples:
        raise EdgecError("no input samples to verify with")
    with _work_dir(work_dir) as work:
        if not tgt.is_host:
            res = _verify_tflm_firmware(model, graph, tgt, samples, work, rtol)
            res.notes[:0] = notes
            return res
        bundle, _ = compile_full(graph if graph is not None else model,
                                 Options(target="host", backend="tflm", name="model",
                                         tflm_check=False))
        flat = bundle.tflm_model
        arena = bundle.report["arena_bytes"]
        res = VerifyResult(str(model), target, "edgec native backend (host build)", len(samples),
                           notes=notes)
        try:
            ok, used = reference.tflm_try_allocate_isolated(flat, arena)
        except ImportError:
            raise EdgecError("verify --backend tflm --target host needs the tflite-micro package "
                             "(pip install --pre tflite-micro)") from None
        info = {"declared": arena, "allocates": ok, "interpreter_used": used}
        if used:
            info["above_used_percent"] = round(100.0 * (arena - used) / used, 2)
        res.extra["tflm_arena"] = info
        if not ok:
            res.notes.append(f"the TFLite Micro interpreter cannot allocate the model in the "
                             f"declared arena of {arena:,} B")
            res.outputs.append(Comparison("arena", "", True, float("inf"), 0.0, 1, 1, False))
            return res
        res.notes.append(f"TFLM arena: declared {arena:,} B, the interpreter reports {used:,} B "
                         f"used ({info['above_used_percent']:+.1f}%)")
        tflm_outs, _ = reference.run_tflm(flat, samples, arena_size=arena)
        nbundle, g = compile_full(g0, Options(target="host", name="model"))
        bdir = nbundle.write(work / "native")
        prog = HostProgram(bdir, nbundle.report, work / "host")
        native_outs, _ = prog.run(samples)
        for j, name in enumerate(g.outputs):
            ref = np.stack([o[j] for o in native_outs])
            got = np.stack([np.asarray(r[j]).reshape(ref.shape[1:]) for r in tflm_outs])
            res.outputs.append(compare(f"output {j}", str(g.tensors[name].origin), got, ref, rtol))
        res.extra["resolver"] = [e["op"] for e in bundle.report["tflm"]["resolver"]]
        return res


def _verify_tflm_firmware(model: Path, graph, tgt, samples, work: Path, rtol: float) -> VerifyResult:
    """The TFLM bundle linked with the user's TFLM (TFLM_DIR, TFLM_LIB) into edgec's
    firmware harness, run in QEMU on every sample, compared with the tflite-micro
    interpreter running the same flatbuffer."""
    if tgt.qemu is None:
        raise EdgecError(f"target {tgt.name} has no emulator to verify on (no [qemu] section)")
    inst = tflm_install(target_name=tgt.name)
    bundle, _ = compile_full(graph if graph is not None else model,
                             Options(target=tgt, backend="tflm", name="model",
                                     tflm_check=False))
    bdir = bundle.write(work / "bundle")
    fw = firmware.build(bdir, bundle.report, tgt, work / "firmware", hostio=True)
    ins, outs_spec = io_specs(bundle.report)
    write_samples(fw.dir / "edgec_in.bin", samples, ins)
    (fw.dir / "edgec_out.bin").unlink(missing_ok=True)
    run = fw.run(timeout=firmware.run_timeout(bundle.report, len(samples)))
    if not run.ok:
        raise CheckFailed(f"{tgt.name} (QEMU {tgt.qemu.machine}): {run.describe()}")
    outs = read_outputs((fw.dir / "edgec_out.bin").read_bytes(), outs_spec, len(samples))
    try:
        ref_outs, _ = reference.run_tflm(bundle.tflm_model, samples)
    except ImportError:
        raise EdgecError("verify --backend tflm needs the tflite-micro package for the reference "
                         "(pip install --pre tflite-micro)") from None
    kernels = "CMSIS-NN" if inst.cmsis_nn else "reference"
    res = VerifyResult(str(model), tgt.name, "TFLite Micro interpreter (the bundled flatbuffer)",
                       len(samples))
    for j, spec in enumerate(outs_spec):
        got = np.stack([o[j] for o in outs])
        ref = np.stack([np.asarray(r[j]).reshape(got.shape[1:]) for r in ref_outs])
        res.outputs.append(compare(f"output {j}", bundle.report["outputs"][j]["name"], got, ref,
                                   rtol))
    declared = bundle.report["arena_bytes"]
    used = run.fields("ARENA").get("used")
    arena = {"declared": declared, "kernels": kernels}
    if used is not None:
        arena["mcu_used"] = int(used)
        arena["above_used_percent"] = round(100.0 * (declared - int(used)) / int(used), 2)
        res.notes.append(f"TFLM on {tgt.name} ({kernels} kernels): arena declared {declared:,} B, "
                         f"arena_used_bytes() {int(used):,} B ({arena['above_used_percent']:+.1f}%)")
    res.extra["tflm_arena"] = arena
    sizes = elfsize.breakdown(elfsize.read(fw.elf), fw.prefix)
    st = run.fields("STACK")
    res.extra["firmware"] = {
        "target": tgt.name, "machine": tgt.qemu.machine, "status": run.status,
        "seconds": round(run.seconds, 3), "command": " ".join(run.command),
        "flash_bytes": sizes["flash"]["total"], "ram_bytes": sizes["ram"]["total"],
        "stack_used": int(st.get("used", 0)), "tflm_lib": str(inst.lib), "kernels": kernels,
    }
    return res
