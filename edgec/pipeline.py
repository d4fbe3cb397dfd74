"""The library API: model file -> Graph -> optimized Graph -> Bundle.

    import edgec
    bundle = edgec.compile("kws.tflite", target="cortex-m4")
    bundle.write("out/kws")
    # or in one step
    edgec.build("kws.tflite", "out/kws", target="cortex-m4")
"""
from __future__ import annotations

import hashlib
from dataclasses import InitVar, dataclass, fields
from pathlib import Path

import numpy as np

from . import data, frontends, passes
from .backends.base import BackendOptions, BackendResult
from .backends.native import NativeBackend
from .backends.tflm import TflmBackend
from .backends.tvm import TvmBackend
from .exporters import tflite as tfl_export
from .ir import cgen
from .ir.bundle import Bundle
from .ir.errors import EdgecError
from .ir.graph import Graph, ModelSource
from .ir.templating import render
from .ir.version import __version__
from .ops import interp
from .passes import accuracy as accm, compress, layout, quantize as qz
from .target import emulator, firmware, targets

BACKENDS = ("native", "tflm", "tvm")
OPT_LEVELS = ("0", "1", "2", "3", "s", "z", "fast")
OPTIMIZE = ("speed", "size")


# Options' per-backend and per-pass settings (None when not given), by name
FLAGS = ("kernels", "sparse", "trees", "tree_features", "tree_calibration", "tree_quantized_input",
         "tvm_schedule", "tvm_codegen", "tflm_check")


@dataclass
class Options:
    target: str = targets.DEFAULT_TARGET
    backend: str = "native"
    name: str = "model"
    input_shapes: dict | list | tuple | None = None
    opt_level: str = "s"
    lto: bool = False
    # kernels specialized per layer (speed) or one shared kernel per operator type
    # with run-time parameters (size)
    optimize: str = "speed"
    firmware: bool = False
    # test vectors for the firmware harness: list of input arrays per sample, or a sample file
    # (edgec.data); without them, test_samples random samples (seed 0); raw_inputs: the
    # file holds the integer levels of integer inputs (no quantization of float values)
    test_inputs: list | str | None = None
    test_samples: int = 2
    raw_inputs: bool = False
    # post-training quantization (edgec.passes.quantize.QuantConfig) and, with it,
    # an accuracy evaluation on this data (path or edgec.data.Dataset)
    quantize: object | None = None
    eval_data: object | None = None
    # compression beyond int8 (edgec.passes.compress.CompressConfig: low-rank, prune, binarize),
    # applied to the lowered float graph before quantization
    compress: object | None = None
    # refuse a model whose constants or arena + I/O buffers alone exceed the target's
    # declared flash / RAM (--no-fit-check builds it anyway)
    fit_check: bool = True
    # Settings of one backend or pass; None: not given (its default applies, and the
    # report's options leave it out). Named as on the command line and in the report.
    # native kernels: auto (the target's DSP/MVE kernels where they pay), plain, dsp, mve
    kernels: str | None = None
    # native weights storage: auto (sparse where it saves), dense, csr, ... (backends.sparse)
    sparse: str | None = None
    # tree-ensemble code layout: auto, code, table, ... (--trees; ops._trees_c)
    trees: str | None = None
    # tree features as int8/int16 levels (--tree-features; float: none), the calibration
    # data their grid comes from (path or edgec.data.Dataset), and whether the model's
    # input takes the levels themselves (--quantized-input)  (passes.trees)
    tree_features: str | None = None
    tree_calibration: object | None = None
    tree_quantized_input: bool | None = None
    # the tvm backend: how its kernels are scheduled (local, ...) and made (c or llvm)
    tvm_schedule: str | None = None
    tvm_codegen: str | None = None
    # the tflm backend: check the bundled flatbuffer with the TFLite Micro interpreter (default on)
    tflm_check: bool | None = None
    # settings as a dict {name: value} (the library API, tests and benchmarks give the ones
    # above, sometimes optimize, so): mapped onto the fields of those names here, a name
    # that is no field refused
    extra: InitVar[dict | None] = None

    def __post_init__(self, extra: dict | None) -> None:
        if not extra:
            return
        known = [f.name for f in fields(self)]
        unknown = sorted(str(k) for k in extra if k not in known)
        if unknown:
            raise EdgecError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             f"(known: {', '.join(known)})")
        for k, v in extra.items():
            setattr(self, k, v)

    def flags(self) -> dict:
        """The settings of :data:`FLAGS` that were given, by name (the report's options)."""
        return {k: getattr(self, k) for k in FLAGS if getattr(self, k) is not None}

    def check(self) -> None:
        if self.backend not in BACKENDS:
            raise EdgecError(f"unknown backend {self.backend!r} (one of: {', '.join(BACKENDS)})")
        if self.optimize not in OPTIMIZE:
            raise EdgecError(f"unknown --optimize {self.optimize!r} (speed or size)")
        if str(self.opt_level) not in OPT_LEVELS:
            raise EdgecError(f"unknown --opt-level {self.opt_level!r} (one of: {', '.join(OPT_LEVELS)})")

    def optflags(self) -> list[str]:
        flags = [f"-O{self.opt_level}", "-ffunction-sections", "-fdata-sections"]
        if self.lto:
            flags.append("-flto")
        return flags


# The stages, in order (compile_full runs them; each is a function of this module):
#   load       the model file into edgec's graph (frontends); the file is read once (g.source)
#   transform  lower (passes.optimize) -> compress -> quantize -> lower again
#   backend    native C, TVM or TFLM behind one contract (backends.base) -> BackendResult
#   assemble   the bundle, the firmware harness when asked, the report (edgec-build/1)
#   fit        the estimate against the target's declared flash and RAM
# The graph's invariants (Graph.validate) are checked where it enters and leaves transform.
# The tflm backend bundles a TFLite flatbuffer instead of a graph: the model file as it is,
# or edgec's graph exported by edgec.exporters.tflite (tflite_for_tflm).
BACKEND_CLASSES = {"native": NativeBackend, "tvm": TvmBackend, "tflm": TflmBackend}


def load(model, input_shapes=None) -> Graph:
    """Import a model file (ONNX, TFLite, Keras/SavedModel) into edgec's IR; the file as it
    was read rides along as ``g.source`` (a :class:`ModelSource`)."""
    g = frontends.load(model, input_shapes)
    src = read_source(model)
    src.format = g.meta.format
    g.source = src
    return g


def read_source(model) -> ModelSource:
    """The model file's name, bytes and digest (a directory: no bytes, a digest of its files)."""
    p = Path(model)
    try:
        data = p.read_bytes() if p.is_file() else None
        digest = hashlib.sha256(data).hexdigest() if data is not None else file_digest(p)
    except OSError as e:
        raise EdgecError(f"cannot read: {e.strerror}", str(p)) from None
    return ModelSource(p.name, "", p.resolve(), data, digest)


def graph_source(g: Graph) -> ModelSource:
    """What a build from a graph (not a file) says about its source: the file it came from,
    when it was read by :func:`load`, without a digest (the graph may have changed)."""
    src = g.source
    return ModelSource(g.meta.source or g.name, g.meta.format or "ir",
                       src.path if src else None, src.data if src else None)


def check_graph(g: Graph) -> Graph:
    """The graph's invariants (every tensor read is computed first, written once, ...)."""
    g.validate()
    return g


def lower(g: Graph, options: Options | None = None) -> Graph:
    """Run the graph passes (folding, fusion, ...)."""
    o = options or Options()
    return passes.optimize(g, tree_features=o.tree_features, tree_calibration=o.tree_calibration,
                           tree_quantized_input=bool(o.tree_quantized_input))


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        h.update(q.read_bytes())
    return h.hexdigest()


def compile(model, target: str | None = None, backend: str = "native", name: str = "model",
            **kw) -> Bundle:  # noqa: A001 - the public name
    """Compile a model file (or a Graph) into a :class:`Bundle` (not yet written)."""
    opts = Options(target=target or targets.DEFAULT_TARGET, backend=backend, name=name, **kw)
    return compile_with(model, opts)


def compile_with(model, opts: Options) -> Bundle:
    return compile_full(model, opts)[0]


@dataclass
class Transformed:
    """What the graph stages did, for the report."""
    compression: dict | None = None
    quantization: dict | None = None
    accuracy: dict | None = None


def compile_full(model, opts: Options) -> tuple[Bundle, Graph]:
    """Compile (load -> transform -> backend -> assemble -> fit); returns the bundle and the
    lowered graph it was generated from (for tflm: edgec's graph of the model, or None when
    edgec cannot import it)."""
    opts.check()
    tgt = targets.load(opts.target)
    prefix = cgen.c_identifier(opts.name)
    if opts.backend != "native" and opts.compress is not None and opts.compress.any():
        raise EdgecError(f"--prune, --low-rank and --binarize need --backend native "
                         f"(the {opts.backend} backend compiles the model file as it is)")
    flat = None
    done = Transformed()
    if opts.backend == "tflm":
        flat, g, source = tflite_for_tflm(model, opts)
    else:
        if isinstance(model, Graph):
            g, source = model, graph_source(model)
        else:
            g = load(model, opts.input_shapes)
            source = g.source
        g, done = transform(check_graph(g), opts)
        check_graph(g)
    backend = BACKEND_CLASSES[opts.backend]()
    res = backend.generate(g, BackendOptions(
        target=tgt, prefix=prefix, optimize=opts.optimize, quantized=opts.quantize is not None,
        source=source, tflite=flat, kernels=opts.kernels, sparse=opts.sparse, trees=opts.trees,
        tvm_schedule=opts.tvm_schedule, tvm_codegen=opts.tvm_codegen,
        tflm_check=True if opts.tflm_check is None else opts.tflm_check))
    b = assemble(g, res, opts, tgt, prefix, source, done)
    fit_to_target(b.report, tgt, opts.fit_check)
    return b, g


def transform(g: Graph, opts: Options) -> tuple[Graph, Transformed]:
    """lower -> compress -> quantize -> lower again, as the options ask."""
    g = lower(g, opts)
    g_ref = g
    done = Transformed()
    compressing = opts.compress is not None and opts.compress.any()
    if compressing:
        g, done.compression = compress_graph(g, opts.compress, opts.quantize)
    if opts.quantize is not None:
        g, done.quantization, done.accuracy = quantize_graph(
            g, opts.quantize, None if compressing else opts.eval_data)
        g = lower(g, opts)
    elif opts.eval_data is not None and not compressing:
        raise EdgecError("--eval compares the float model with its quantized or compressed version: "
                         "it needs --quantize int8, --prune, --low-rank or --binarize")
    if compressing and opts.eval_data is not None:
        done.accuracy = evaluate_transformed(g_ref, g, opts.eval_data)
    return g, done


def tflite_for_tflm(model, opts: Options) -> tuple[bytes, Graph | None, ModelSource]:
    """The TFLite flatbuffer to bundle, edgec's graph of it when it can import
    it (for MACs), and its source.  A TFLite file is bundled as it is; anything else
    (ONNX, Keras, a Graph, or a TFLite model to quantize with ``--quantize``) goes through
    edgec's passes, its quantizer when asked, and :mod:`edgec.exporters.tflite`, like
    ``edgec quantize -o x.tflite``."""
    quant = opts.quantize
    if isinstance(model, Graph):
        g = model
        flat = g.meta.tflite_flatbuffer if quant is None else None
        if flat is None:
            flat = export_tflite(g, quant)
        return flat, g, graph_source(g)
    p = Path(model)
    try:
        head = p.read_bytes()[:8] if p.is_file() else b""
    except OSError as e:
        raise EdgecError(f"cannot read: {e.strerror}", str(p)) from None
    if head[4:8] == b"TFL3" and quant is None:
        source = read_source(p)
        source.format = "tflite"
        try:
            g = load(p, opts.input_shapes)
        except EdgecError:
            g = None  # TFLM may have kernels edgec's importer lacks: MACs stay unknown
        return source.data, g, source
    g = load(p, opts.input_shapes)
    return export_tflite(lower(g, opts), quant), g, g.source


def export_tflite(g: Graph, quant=None) -> bytes:
    """edgec's graph as a TFLite flatbuffer (NHWC; quantized first when asked)."""
    if layout.needs_nhwc(g):  # ONNX models: TFLite knows only NHWC
        g = layout.to_nhwc(g)
    if quant is not None:
        g, _, _ = quantize_graph(g, quant)
    return tfl_export.to_bytes(g)


def expected_outputs(g: Graph, samples) -> list[list[np.ndarray]]:
    """Outputs of the lowered graph for each sample by edgec's interpreter (bit-exact
    with TFLite Micro on int8 graphs): the firmware's embedded expected outputs."""
    res = []
    for s in samples:
        out = interp.run(g, list(s))
        res.append([out[o] for o in g.outputs])
    return res


def assemble(g: Graph | None, res: BackendResult, opts: Options, tgt, prefix: str,
             source: ModelSource, done: Transformed) -> Bundle:
    """The bundle (the backend's files, the firmware harness when asked, the build files)
    and its report, ``edgec-build/1``, for every backend."""
    b = Bundle(prefix, products=("*.o", f"lib{prefix}.a", *res.products, "firmware.elf",
                                 "firmware.map"))
    for rel, text in res.files.items():
        b.add(rel, text)
    ar = "arm-none-eabi-ar" if tgt.arch == "arm" else (
        "riscv64-unknown-elf-ar" if tgt.arch == "riscv" else "ar")
    ctx = dict(name=prefix, NAME=prefix.upper(), target=tgt, optflags=opts.optflags(),
               objects=res.objects, arena_size=res.arena_size, weights_bytes=res.weights_bytes,
               firmware=opts.firmware, ar=ar, qemu_cmd=emulator.qemu_command_line(tgt),
               products=b.products, **res.build_vars)
    inputs = res.inputs if res.inputs is not None else _io(g, g.inputs)
    outputs = res.outputs if res.outputs is not None else _io(g, g.outputs)
    test_inputs = None
    if opts.firmware:
        if g is None:
            raise EdgecError(f"--firmware with --backend {opts.backend} needs a model edgec can "
                             "import (its test vectors and expected outputs come from edgec's graph)")
        notes: list[str] = []
        samples = firmware.test_samples_for(g, opts, notes)
        expected = expected_outputs(g, samples) if samples else None
        test_inputs = firmware.add_to_bundle(b, prefix, tgt, opts, _io(g, g.inputs),
                                             _io(g, g.outputs), samples, expected, notes)
        ctx["firmware"] = True
        for rel, text in res.firmware_files.items():
            b.add(rel, text)
    b.add("edgec.mk", render(f"{res.template_dir}edgec.mk.j2", **ctx))
    b.add("Makefile", render(f"{res.template_dir}Makefile.j2", **ctx))
    b.add("CMakeLists.txt", render(f"{res.template_dir}CMakeLists.txt.j2", **ctx))

    if res.io_bytes is not None:
        io_bytes = res.io_bytes
    else:
        io_bytes = sum(t.nbytes for t in (g.tensors[i] for i in g.inputs)) + \
            sum(t.nbytes for t in (g.tensors[o] for o in g.outputs))
    layers = res.layers
    macs = res.macs if res.macs is not None else sum(L["macs"] for L in layers)
    shapes = opts.input_shapes or {}
    if not isinstance(shapes, dict):
        shapes = frontends.parse_input_shapes(shapes)
    options = {"opt_level": opts.opt_level, "lto": opts.lto,
               "input_shapes": {k: list(v) for k, v in sorted(shapes.items())}}
    if res.from_graph:
        compressing = opts.compress is not None and opts.compress.any()
        options.update({
            "optimize": opts.optimize,
            **({"quantize": opts.quantize.to_json()} if opts.quantize is not None else {}),
            **(opts.compress.to_json() if compressing else {}),
            **({"eval": _source_name(opts.eval_data)} if opts.eval_data is not None else {}),
            **{k: v for k, v in sorted(opts.flags().items()) if _jsonable(v)},
        })
    b.report = {
        "schema": "edgec-build/1",
        "edgec_version": __version__,
        "model": source.to_json(),
        "name": prefix,
        "target": tgt.name,
        "backend": opts.backend,
        "options": options,
        "transformations": [],
        "inputs": inputs,
        "outputs": outputs,
        "arena_bytes": res.arena_size,
        "arena_lower_bound": res.arena_lower_bound,
        "weights_bytes": res.weights_bytes,
        "io_bytes": io_bytes,
        "macs": macs,
        "layers": layers,
        "estimate": {
            "note": res.estimate_note,
            "flash_constants_bytes": res.weights_bytes,
            "ram_bytes": res.arena_size + io_bytes,
        },
    }
    if res.from_graph:
        b.report["transformations"] = list(g.meta.passes) + list(g.meta.transforms)
        # what the user should know about how the model was read (defaults taken for them)
        b.report["notes"] = list(g.meta.notes)
        _sparse_report(b.report, layers, opts)
    if test_inputs is not None:
        b.report["test_inputs"] = test_inputs
    if done.compression is not None:
        b.report["compression"] = done.compression
    if done.quantization is not None:
        b.report["quantization"] = done.quantization
    if done.accuracy is not None:
        b.report["accuracy"] = done.accuracy
    if res.info is not None:
        b.report[opts.backend] = res.info
    if res.objects:
        # prebuilt objects of the bundle that every build of it links (--tvm-codegen llvm)
        b.report["link_objects"] = list(res.objects)
    if res.tflite is not None:
        b.tflm_model = res.tflite
    return b


def _sparse_report(report: dict, layers: list[dict], opts: Options) -> None:
    sparse_layers = [L for L in layers if L.get("weights_format", {}).get("format", "dense") != "dense"]
    if any("weights_format" in L for L in layers):
        wf = [L["weights_format"] for L in layers if "weights_format" in L]
        report["sparse"] = {
            "mode": "auto" if opts.sparse is None else opts.sparse,
            "layers": len(sparse_layers),
            "dense_bytes": sum(f["dense_bytes"] for f in wf),
            "stored_bytes": sum(f["dense_bytes"] if f["format"] == "dense" else f[f["format"] + "_bytes"]
                                for f in wf),
        }
        if sparse_layers:
            sp = report["sparse"]
            report["transformations"].append(
                f"sparse_storage ({len(sparse_layers)} layers store only their non-zero weights: "
                f"{', '.join(str(L['index']) + ':' + L['weights_format']['format'] for L in sparse_layers[:12])}"
                f"; {sp['dense_bytes']:,} -> {sp['stored_bytes']:,} weight bytes in layers with zeros)")


def fit_to_target(report: dict, tgt, check: bool = True) -> None:
    """Compare the build's estimate (constants in flash; arena and I/O buffers in RAM;
    code, stack and the C library come on top) with the target's declared memory: the
    headroom goes into the report; a model that cannot fit even so is refused, unless
    ``check`` is off (``--no-fit-check``: then the firmware link fails as on the board)."""
    est = report["estimate"]
    flash, ram = est["flash_constants_bytes"], est["ram_bytes"]
    report["fit"] = {"target_flash": tgt.flash, "target_ram": tgt.ram,
                     "flash_headroom": tgt.flash - flash, "ram_headroom": tgt.ram - ram,
                     "note": "headroom before code, stack and C library (estimate before linking)"}
    over = []
    if flash > tgt.flash:
        over.append(f"its constants take {flash:,} B of flash, {flash - tgt.flash:,} B more than the "
                    f"{tgt.flash:,} B it declares")
    if ram > tgt.ram:
        over.append(f"its arena and I/O buffers take {ram:,} B of RAM, {ram - tgt.ram:,} B more than the "
                    f"{tgt.ram:,} B it declares")
    if over and check:
        raise EdgecError(f"the model does not fit target {tgt.name}: {'; '.join(over)} "
                         "(--flash/--ram give your part's memory; --no-fit-check builds it anyway)")


def quantize_graph(g: Graph, cfg, eval_data=None):
    """Quantize a lowered float graph; with ``eval_data``, also measure what it cost.
    Returns (graph, quantization info, accuracy report or None)."""
    res = qz.quantize(g, cfg)
    acc = None
    if eval_data is not None:
        if cfg.mode != "int8":
            raise EdgecError("--eval measures full-integer quantization (--quantize int8)")
        acc = accm.evaluate(g, res.graph, data.load(g, eval_data, "eval", targets=True,
                                                    allow_nan=False))
    return res.graph, res.info, acc


def compress_graph(g: Graph, cfg, quant_cfg=None):
    """Low-rank / prune / binarize a lowered graph (edgec.passes.compress); binarization
    without its own calibration data uses the quantization's."""
    if cfg.binarize is not None and cfg.binarize.calibration is None and quant_cfg is not None \
            and getattr(quant_cfg, "calibration", None) is not None:
        cfg.binarize.calibration = quant_cfg.calibration
    return compress.apply(g, cfg)


def evaluate_transformed(g_ref: Graph, g: Graph, eval_data) -> dict:
    """Accuracy of the transformed model ``g`` against the model as loaded."""
    ds = data.load(g_ref, eval_data, "eval", targets=True, allow_nan=False)
    res = accm.evaluate(g_ref, g, ds, labels=("original", "compressed"))
    res["compared"] = ("the model as loaded (lowered) against the compiled graph "
                       "(after low-rank, pruning, binarization and quantization, as given)")
    return res


def _source_name(v) -> str:
    if isinstance(v, data.Dataset):
        return v.source
    return str(v) if isinstance(v, (str, Path)) else "arrays"


def _jsonable(v) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))


def _io(g: Graph, names) -> list[dict]:
    out = []
    for n in names:
        t = g.tensors[n]
        d = {"name": cgen.comment_text(t.name), "shape": list(t.shape), "dtype": t.dtype}
        if t.quant is not None:
            d["quant"] = t.quant.to_json()
        labels = g.meta.labels
        table = labels.get(t.name) or labels.get(str(t.origin))
        if table:
            d["labels"] = list(table)
        enc = g.meta.input_encoding.get(n)
        if enc:
            d["levels"] = dict(enc)
        out.append(d)
    return out


def build(model, out_dir, target: str | None = None, force: bool = False, **kw) -> tuple[Path, Bundle]:
    """Compile and write the bundle directory (atomically; ``force``: see Bundle.write)."""
    b = compile(model, target=target, **kw)
    return b.write(out_dir, force=force), b
