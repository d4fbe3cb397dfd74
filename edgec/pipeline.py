"""The library API: model file -> Graph -> optimized Graph -> Bundle.

    import edgec
    bundle = edgec.compile("kws.tflite", target="cortex-m4")
    bundle.write("out/kws")
    # or in one step
    edgec.build("kws.tflite", "out/kws", target="cortex-m4")
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, data, frontends, passes
from .ir import cgen
from .target import emulator, targets
from .ir.bundle import Bundle
from .ir.errors import EdgecError
from .ir.graph import Graph
from .ir.templating import render

BACKENDS = ("native", "tflm", "tvm")
OPT_LEVELS = ("0", "1", "2", "3", "s", "z", "fast")
OPTIMIZE = ("speed", "size")


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
    extra: dict = field(default_factory=dict)

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


def load(model, input_shapes=None) -> Graph:
    """Import a model file (ONNX, TFLite, Keras/SavedModel) into edgec's IR."""
    return frontends.load(model, input_shapes)


def lower(g: Graph, options: Options | None = None) -> Graph:
    """Run the graph passes (folding, fusion, ...)."""
    return passes.optimize(g, (options or Options()).extra)


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


def compile_full(model, opts: Options) -> tuple[Bundle, Graph]:
    """Compile; returns the bundle and the lowered graph it was generated from."""
    opts.check()
    tgt = targets.load(opts.target)
    prefix = cgen.c_identifier(opts.name)
    if opts.backend != "native" and opts.compress is not None and opts.compress.any():
        raise EdgecError(f"--prune, --low-rank and --binarize need --backend native "
                         f"(the {opts.backend} backend compiles the model file as it is)")
    if opts.backend == "tflm":
        from .backends import tflm
        b, g = tflm.compile_bundle(model, opts, tgt, prefix)
        fit_to_target(b.report, tgt, opts.fit_check)
        return b, g
    if isinstance(model, Graph):
        g = model
        source = {"source": g.meta.get("source", g.name), "format": g.meta.get("format", "ir")}
    else:
        g = load(model, opts.input_shapes)
        source = {"source": Path(model).name, "format": g.meta.get("format"),
                  "sha256": file_digest(Path(model))}
    g = lower(g, opts)
    g_ref = g
    comp_info = None
    compressing = opts.compress is not None and opts.compress.any()
    if compressing:
        g, comp_info = compress_graph(g, opts.compress, opts.quantize)
    quant_info = accuracy = None
    if opts.quantize is not None:
        g, quant_info, accuracy = quantize_graph(g, opts.quantize,
                                                 None if compressing else opts.eval_data)
        g = lower(g, opts)
    elif opts.eval_data is not None and not compressing:
        raise EdgecError("--eval compares the float model with its quantized or compressed version: "
                         "it needs --quantize int8, --prune, --low-rank or --binarize")
    if compressing and opts.eval_data is not None:
        accuracy = evaluate_transformed(g_ref, g, opts.eval_data)

    if opts.backend == "native":
        from .backends import native
        res = native.generate(g, prefix, {"target": tgt, "optimize": opts.optimize, **opts.extra})
        model_c, model_h = res.model_c, res.model_h
        arena, lower_bound, layers, weights = res.arena_size, res.lower_bound, res.layers, res.weights_bytes
        extra_files, backend_info, objects = {}, None, []
    elif opts.backend == "tvm":
        from .backends import tvm as tvm_backend
        path = g.meta.get("path")
        if opts.quantize is not None or "quantization" in g.meta:
            raise EdgecError("the tvm backend compiles the model file as it is: "
                             "--quantize needs --backend native")
        if not path or not Path(path).is_file():
            raise EdgecError("the tvm backend imports the model file with TVM's own frontend: "
                             "give it a model file, not a graph")
        res = tvm_backend.generate(g, path, prefix, {"target": tgt, **opts.extra})
        model_c, model_h = res.model_c, res.model_h
        arena, lower_bound, layers, weights = res.arena_size, res.lower_bound, res.layers, res.weights_bytes
        extra_files, backend_info, objects = res.files, res.info, res.objects
    else:
        raise EdgecError(f"the {opts.backend} backend is not available in this build of edgec")

    b = Bundle(prefix, products=("*.o", f"lib{prefix}.a", "firmware.elf", "firmware.map"))
    b.add(f"{prefix}.c", model_c)
    b.add(f"{prefix}.h", model_h)
    for rel, text in sorted(extra_files.items()):
        b.add(rel, text)
    ctx = dict(name=prefix, NAME=prefix.upper(), target=tgt, optflags=opts.optflags(), objects=objects,
               arena_size=arena, weights_bytes=weights, firmware=opts.firmware,
               ar="arm-none-eabi-ar" if tgt.arch == "arm" else (
                   "riscv64-unknown-elf-ar" if tgt.arch == "riscv" else "ar"),
               qemu_cmd=emulator.qemu_command_line(tgt), products=b.products)
    test_inputs = None
    if opts.firmware:
        from .target import firmware
        test_inputs = firmware.add_to_bundle(b, g, prefix, tgt, opts, ctx)
    b.add("edgec.mk", render("edgec.mk.j2", **ctx))
    b.add("Makefile", render("Makefile.j2", **ctx))
    b.add("CMakeLists.txt", render("CMakeLists.txt.j2", **ctx))

    io_bytes = sum(t.nbytes for t in (g.tensors[i] for i in g.inputs)) + \
        sum(t.nbytes for t in (g.tensors[o] for o in g.outputs))
    macs = sum(L["macs"] for L in layers)
    b.report = {
        "schema": "edgec-build/1",
        "edgec_version": __version__,
        "model": source,
        "name": prefix,
        "target": tgt.name,
        "backend": opts.backend,
        "options": {
            "opt_level": opts.opt_level, "lto": opts.lto, "optimize": opts.optimize,
            "input_shapes": {k: list(v) for k, v in sorted(
                frontends.parse_input_shapes(opts.input_shapes).items())}
            if opts.input_shapes and not isinstance(opts.input_shapes, dict)
            else {k: list(v) for k, v in sorted((opts.input_shapes or {}).items())},
            **({"quantize": opts.quantize.to_json()} if opts.quantize is not None else {}),
            **(opts.compress.to_json() if compressing else {}),
            **({"eval": _source_name(opts.eval_data)} if opts.eval_data is not None else {}),
            **{k: v for k, v in sorted(opts.extra.items()) if _jsonable(v)},
        },
        "transformations": list(g.meta.get("passes", [])) + list(g.meta.get("transforms", [])),
        # what the user should know about how the model was read (defaults taken for them)
        "notes": list(g.meta.get("notes", [])),
        "inputs": _io(g, g.inputs),
        "outputs": _io(g, g.outputs),
        "arena_bytes": arena,
        "arena_lower_bound": lower_bound,
        "weights_bytes": weights,
        "io_bytes": io_bytes,
        "macs": macs,
        "layers": layers,
        "estimate": {
            "note": "estimate before linking: constants plus arena and I/O buffers; "
                    "code size is known only after linking (edgec size)",
            "flash_constants_bytes": weights,
            "ram_bytes": arena + io_bytes,
        },
    }
    sparse_layers = [L for L in layers if L.get("weights_format", {}).get("format", "dense") != "dense"]
    if any("weights_format" in L for L in layers):
        wf = [L["weights_format"] for L in layers if "weights_format" in L]
        b.report["sparse"] = {
            "mode": opts.extra.get("sparse", "auto"),
            "layers": len(sparse_layers),
            "dense_bytes": sum(f["dense_bytes"] for f in wf),
            "stored_bytes": sum(f["dense_bytes"] if f["format"] == "dense" else f[f["format"] + "_bytes"]
                                for f in wf),
        }
        if sparse_layers:
            sp = b.report["sparse"]
            b.report["transformations"].append(
                f"sparse_storage ({len(sparse_layers)} layers store only their non-zero weights: "
                f"{', '.join(str(L['index']) + ':' + L['weights_format']['format'] for L in sparse_layers[:12])}"
                f"; {sp['dense_bytes']:,} -> {sp['stored_bytes']:,} weight bytes in layers with zeros)")
    if test_inputs is not None:
        b.report["test_inputs"] = test_inputs
    if comp_info is not None:
        b.report["compression"] = comp_info
    if quant_info is not None:
        b.report["quantization"] = quant_info
    if accuracy is not None:
        b.report["accuracy"] = accuracy
    if backend_info is not None:
        b.report[opts.backend] = backend_info
    if objects:
        # prebuilt objects of the bundle that every build of it links (--tvm-codegen llvm)
        b.report["link_objects"] = list(objects)
    fit_to_target(b.report, tgt, opts.fit_check)
    return b, g


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
    from .passes import quantize as qz
    res = qz.quantize(g, cfg)
    acc = None
    if eval_data is not None:
        if cfg.mode != "int8":
            raise EdgecError("--eval measures full-integer quantization (--quantize int8)")
        from .passes import accuracy as accm
        acc = accm.evaluate(g, res.graph, data.load(g, eval_data, "eval", targets=True,
                                                    allow_nan=False))
    return res.graph, res.info, acc


def compress_graph(g: Graph, cfg, quant_cfg=None):
    """Low-rank / prune / binarize a lowered graph (edgec.passes.compress); binarization
    without its own calibration data uses the quantization's."""
    from .passes import compress
    if cfg.binarize is not None and cfg.binarize.calibration is None and quant_cfg is not None \
            and getattr(quant_cfg, "calibration", None) is not None:
        cfg.binarize.calibration = quant_cfg.calibration
    return compress.apply(g, cfg)


def evaluate_transformed(g_ref: Graph, g: Graph, eval_data) -> dict:
    """Accuracy of the transformed model ``g`` against the model as loaded."""
    from .passes import accuracy as accm
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
        labels = (g.meta.get("labels") or {})
        table = labels.get(t.name) or labels.get(str(t.origin))
        if table:
            d["labels"] = list(table)
        enc = (g.meta.get("input_encoding") or {}).get(n)
        if enc:
            d["levels"] = dict(enc)
        out.append(d)
    return out


def build(model, out_dir, target: str | None = None, force: bool = False, **kw) -> tuple[Path, Bundle]:
    """Compile and write the bundle directory (atomically; ``force``: see Bundle.write)."""
    b = compile(model, target=target, **kw)
    return b.write(out_dir, force=force), b
