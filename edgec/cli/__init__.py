"""The ``edgec`` command line: thin Click commands over the library.

Bad input exits 2 with one line on stderr; a failed check exits 1; tracebacks
only with ``--debug``.
"""
from __future__ import annotations

import functools
import gc
import json
import sys
import traceback

import click

from .. import __version__
from ..ir import interrupt, limits, progress
from ..ir.errors import EXIT_INTERNAL, EdgecError, ToolchainError

_DEBUG = {"on": False}


def _printable(text: str) -> str:
    """Text for the terminal: control characters (line breaks, escape sequences) and
    Unicode format characters (bidi overrides) that a model's names may carry are shown
    as escapes instead of acting on the terminal."""
    import unicodedata
    return "".join(ch if ch.isprintable() and unicodedata.category(ch) != "Cf"
                   else ascii(ch)[1:-1] for ch in text)


def _fail(msg: str, code: int) -> None:
    click.echo(f"edgec: error: {_printable(msg)}", err=True)
    sys.exit(code)


def handle_errors(fn):
    """Turn library errors into one clear line and an exit code."""
    @click.option("--debug", is_flag=True, hidden=False, help="Show tracebacks of errors.")
    @click.option("--limit", "limit_items", multiple=True, metavar="NAME=N",
                  help="Raise (or lower) a budget on what a model or data file may cost, e.g. "
                       "nodes=200000 or constant_bytes=128M (names: " + ", ".join(limits.names()) +
                       "; docs/TRUST.md).")
    @functools.wraps(fn)
    def wrapper(*args, debug=False, limit_items=(), **kwargs):
        if debug:
            _DEBUG["on"] = True
        try:
            show = sys.stderr.isatty() and not kwargs.get("as_json")
            with limits.using(limits.parse(limit_items)), progress.shown(show):
                return fn(*args, **kwargs)
        except EdgecError as e:
            if _DEBUG["on"]:
                traceback.print_exc()
            if isinstance(e, ToolchainError):   # a tool's own output follows, line by line
                lines = [_printable(x) for x in str(e).splitlines()] or [type(e).__name__]
            else:   # one line, whatever names from the model it quotes
                lines = [_printable(str(e)) or type(e).__name__]
            click.echo(f"edgec: error: {lines[0]}", err=True)
            for extra in lines[1:]:
                click.echo(f"  {extra}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("edgec: interrupted", err=True)
            sys.exit(130)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except SystemExit:
            raise
        except RecursionError:
            if _DEBUG["on"]:
                traceback.print_exc()
            _fail("the model is too deeply nested to process", 2)
        except MemoryError:
            _fail("out of memory while processing the model", 2)
        except Exception as e:  # noqa: BLE001 - anything else is an edgec bug
            if _DEBUG["on"]:
                traceback.print_exc()
            msg = str(e).splitlines()[0][:300] if str(e) else ""
            _fail(f"internal error ({type(e).__name__}: {msg}); rerun with --debug "
                  "and report it", EXIT_INTERNAL)
    return wrapper


def _console():
    from rich.console import Console
    return Console(highlight=False, soft_wrap=False,
                   width=None if sys.stdout.isatty() else 200)


class _Program(click.Group):
    """The ``edgec`` program: run as a program (click's standalone mode, what the
    console script and ``python -m edgec`` do), it installs edgec's signal handling
    first (:mod:`edgec.ir.interrupt`: SIGINT / SIGTERM end it within a second, exit 130 /
    143, nothing half-written left)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if standalone_mode:
            interrupt.install()
        return super().main(*args, standalone_mode=standalone_mode, **kwargs)


@click.group(cls=_Program, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgec")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def main(debug):
    """edgec: compile ML models (ONNX, TFLite, Keras) into small, static C for microcontrollers."""
    _DEBUG["on"] = debug
    # A build keeps a few objects per layer alive until it ends (nodes, tensors, kernel
    # contexts, report entries).  With CPython's default thresholds (a young collection
    # every 700 allocations) a full collection runs each time the heap has grown by a
    # quarter, walking all of them again: a quarter of a 50,000-layer build.  Rarer young
    # collections (as mypy does) leave that to the occasional full collection.
    gc.set_threshold(50_000, 20, 20)


input_shape_opt = click.option(
    "--input-shape", "input_shapes", multiple=True, metavar="NAME:DxDx...",
    help="Static shape for an input with dynamic dimensions (repeatable; NAME optional "
         "for a single-input model).")


def tvm_schedule_opt(fn):
    fn = click.option(
        "--tvm-codegen", default=None, type=click.Choice(["c", "llvm"]),
        help="With --backend tvm: kernels as C (default) or as an object file by TVM's LLVM for "
             "the target CPU.")(fn)
    return click.option(
        "--tvm-schedule", default=None, type=click.Choice(["local", "inline", "none"]),
        help="With --backend tvm: how TVM's kernels are scheduled (default local: epilogues and "
             "paddings computed where used; inline: everything inlined, least RAM; none: TVM's TIR "
             "as is).")(fn)


def _backend_options(backend: str, tvm_schedule, tvm_codegen=None) -> dict:
    opts = {k: v for k, v in (("tvm_schedule", tvm_schedule), ("tvm_codegen", tvm_codegen))
            if v is not None}
    if opts and backend != "tvm":
        from ..ir.errors import EdgecError
        raise EdgecError("--tvm-schedule / --tvm-codegen need --backend tvm")
    return opts


def quant_options(default_mode=None):
    """Options of post-training quantization, shared by ``build`` and ``quantize``."""
    def deco(fn):
        opts = [
            click.option("--quantize", "quant_mode", default=default_mode,
                         type=click.Choice(["int8", "weights-int8"]),
                         show_default=default_mode is not None,
                         help="Post-training quantization of a float model: int8 (full integer, TFLite "
                              "int8 spec) or weights-int8 (int8 weights, float activations; FPU targets)."),
            click.option("--calibration", default=None, metavar="DATA",
                         help="Calibration inputs: an .npz (one array per input, [N, ...]) or a directory "
                              "of .npy files; 'random' for random inputs (not a calibration)."),
            click.option("--calibration-method", default="minmax", show_default=True,
                         type=click.Choice(["minmax", "percentile", "mse", "entropy"]),
                         help="How activation ranges are chosen from the calibration run."),
            click.option("--percentile", default=99.99, show_default=True, type=float,
                         help="Percentile kept by --calibration-method percentile."),
            click.option("--calibration-samples", default=500, show_default=True,
                         type=click.IntRange(1, 1_000_000), help="Use at most this many calibration samples."),
            click.option("--keep-float", "keep_float", multiple=True, metavar="LAYER",
                         help="Keep this layer float (node name, output tensor or op type; repeatable), "
                              "with Quantize/Dequantize around it."),
            click.option("--float-io", is_flag=True,
                         help="int8: keep float model inputs/outputs (quantize/dequantize inside the model)."),
            click.option("--per-tensor", is_flag=True,
                         help="Per-tensor instead of per-channel conv weight scales."),
            click.option("--eval", "eval_data", default=None, metavar="DATA",
                         help="Accuracy report on this .npz (inputs, and labels 'y' or reference outputs): "
                              "float vs quantized top-1, argmax agreement, errors, SQNR per output and layer."),
        ]
        for o in reversed(opts):
            fn = o(fn)
        return fn
    return deco


def tree_options(fn):
    """Options of tree-ensemble code generation, shared by build, verify and bench."""
    opts = [
        click.option("--trees", "trees_layout", default="auto", show_default=True,
                     type=click.Choice(["auto", "data", "code"]),
                     help="Tree ensembles as node arrays in flash (data), as nested ifs (code), or "
                          "whichever is estimated smaller (auto)."),
        click.option("--tree-features", default="float", show_default=True,
                     type=click.Choice(["float", "int16", "int8"]),
                     help="Compare tree features as 16- or 8-bit integers against integer thresholds "
                          "(per-feature grid; decisions kept on --tree-calibration rows)."),
        click.option("--tree-calibration", default=None, metavar="DATA",
                     help="Training rows for --tree-features (.npz of inputs, or .csv rows whose first "
                          "columns are the features): integer thresholds chosen to keep every decision "
                          "on them, checked exhaustively and reported."),
        click.option("--quantized-input", is_flag=True,
                     help="With --tree-features: the model takes the integer feature levels (uint8/uint16) "
                          "as its input; the grid is in the header (INPUT0_LEVEL_LO/INV_SCALE)."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _tree_extra(trees_layout, tree_features, tree_calibration, quantized_input) -> dict:
    if (tree_calibration or quantized_input) and tree_features == "float":
        from ..ir.errors import EdgecError
        raise EdgecError("--tree-calibration / --quantized-input need --tree-features int8 or int16")
    extra = {}
    if trees_layout != "auto":
        extra["trees"] = trees_layout
    if tree_features != "float":
        extra["tree_features"] = tree_features
    if tree_calibration:
        extra["tree_calibration"] = tree_calibration
    if quantized_input:
        extra["tree_quantized_input"] = True
    return extra


def _quant_config(quant_mode, calibration, calibration_method, percentile, calibration_samples,
                  keep_float, float_io, per_tensor, eval_data):
    if quant_mode is None:
        given = [n for n, v in (("--calibration", calibration), ("--keep-float", keep_float),
                                ("--float-io", float_io), ("--per-tensor", per_tensor)) if v]
        if given:
            from ..ir.errors import EdgecError
            raise EdgecError(f"{given[0]} needs --quantize int8 (or weights-int8)")
        return None
    from ..passes.quantize import QuantConfig
    cfg = QuantConfig(mode=quant_mode, calibration=calibration, method=calibration_method,
                      percentile=percentile, max_samples=calibration_samples,
                      keep_float=tuple(keep_float), io="float" if float_io else "int8",
                      per_channel=not per_tensor)
    cfg.check()
    return cfg


def compress_options(fn):
    """Options of compression beyond int8, shared by build, verify and explore."""
    opts = [
        click.option("--low-rank", "low_rank", multiple=True, metavar="SPEC",
                     help="Low-rank factorization (SVD) of FullyConnected / 1x1 Conv weights into two thinner "
                          "layers: 0.9 (energy kept per layer), rank:R, or LAYER=R / LAYER=0.8 (repeatable)."),
        click.option("--prune", "prune", multiple=True, metavar="SPEC",
                     help="Magnitude pruning of Conv / FullyConnected weights: 0.5 (every layer 50% zeros), "
                          "global:0.5 (one threshold over all layers), or LAYER=0.7 (repeatable)."),
        click.option("--binarize", "binarize", multiple=True, metavar="LAYERS",
                     help="Binarize these layers of a float model (1-bit weights, XNOR/popcount): names, "
                          "'hidden' (all but the first and last) or 'all'; comma-separated or repeated. "
                          "Without retraining this loses accuracy: measure it with --eval."),
        click.option("--binarize-mode", default="xnor", show_default=True, type=click.Choice(["xnor", "weights"]),
                     help="xnor: inputs and weights binary (input centers and scales from --calibration); "
                          "weights: binary weights, float inputs."),
        click.option("--sparse", "sparse", default=None, type=click.Choice(["auto", "off", "always"]),
                     help="Sparse storage of weights with zeros: auto (per layer, when it saves flash; the "
                          "default), off, always.  [default: auto]"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _compress_config(low_rank, prune, binarize, binarize_mode, calibration):
    from ..passes.compress import CompressConfig
    from ..passes.binarize import BinarizeConfig
    from ..passes.lowrank import LowRankConfig
    from ..passes.prune import PruneConfig
    cfg = CompressConfig(
        low_rank=LowRankConfig.parse(low_rank) if low_rank else None,
        prune=PruneConfig.parse(prune) if prune else None,
        binarize=BinarizeConfig(layers=tuple(x.strip() for b in binarize for x in b.split(",") if x.strip()),
                                mode=binarize_mode, calibration=calibration) if binarize else None)
    if cfg.binarize is not None:
        cfg.binarize.check()
    return cfg if cfg.any() else None


raw_inputs_opt = click.option(
    "--raw-inputs", is_flag=True,
    help="The inputs file holds the integer levels of integer (int8) inputs themselves: taken as "
         "they are, non-integer, non-finite or out-of-range values refused. Without it, float "
         "values for an int8 input are quantized with the input's scale and zero point.")


def _sparse_options(sparse) -> dict:
    return {} if sparse is None else {"sparse": sparse}


def fit_options(fn):
    """--flash / --ram (the part's memory, for the fit check and the firmware's linker
    script) and --no-fit-check."""
    fn = click.option("--no-fit-check", "no_fit_check", is_flag=True,
                      help="Build even when the model's constants or arena exceed the target's declared "
                           "flash / RAM (the firmware link then fails, as it would for the board).")(fn)
    fn = click.option("--ram", "part_ram", default=None, metavar="SIZE",
                      help="RAM of your part (e.g. 128K), instead of the target's typical size.")(fn)
    return click.option("--flash", "part_flash", default=None, metavar="SIZE",
                        help="Flash of your part (e.g. 512K, 2M), instead of the target's typical size.")(fn)


def _part_target(target, part_flash, part_ram):
    """The target (name or file), with the part's memory when --flash / --ram are given."""
    if part_flash is None and part_ram is None:
        return target
    from ..target import targets
    return targets.load(target).with_memory(
        None if part_flash is None else targets.parse_size(part_flash, "--flash"),
        None if part_ram is None else targets.parse_size(part_ram, "--ram"))


config_opt = click.option(
    "--config", "config_path", default=None, type=click.Path(),
    help="Project config file (default: ./edgec.toml, or [tool.edgec] in ./pyproject.toml).")


@main.command()
@click.argument("model", type=click.Path(), required=False)
@click.option("-t", "--target", default=None, help="Target name (see `edgec targets`) or a .toml file. Default cortex-m4.")
@click.option("-o", "--output", "out_dir", default=None, type=click.Path(), help="Bundle directory (default: ./<name>_bundle).")
@click.option("-n", "--name", default=None, help="Bundle name: file names and C symbol prefix.  [default: model]")
@click.option("--force", is_flag=True,
              help="Write the bundle even where the output directory holds files edgec did not write "
                   "(they are kept; edgec's own files are replaced, changes to them lost).")
@click.option("--backend", default=None, type=click.Choice(["native", "tflm", "tvm"]), help="[default: native]")
@click.option("--opt-level", default=None, help="C optimization level of the bundle's build (0,1,2,3,s,z).  [default: s]")
@click.option("--lto/--no-lto", default=None, help="Link-time optimization in the bundle's build flags.")
@click.option("--optimize", default=None, type=click.Choice(["speed", "size"]),
              help="speed: kernels specialized per layer (shapes, constants, unrolling); size: one "
                   "shared kernel per operator type, parameters passed at run time.  [default: speed]")
@click.option("--kernels", default="auto", show_default=True, type=click.Choice(["auto", "plain"]),
              help="auto: SIMD kernels where the target has them (Arm DSP, Helium); plain: the "
                   "portable C kernels everywhere (for comparison).")
@click.option("--firmware/--no-firmware", default=None, help="Also write a firmware harness (MCU targets): "
              "`make firmware` links it, `make run` runs it in QEMU.")
@click.option("--test-inputs", default=None, type=click.Path(),
              help="With --firmware: test inputs to embed (.npz / .npy / .csv, as verify --inputs).")
@raw_inputs_opt
@click.option("--test-samples", default=None, type=click.IntRange(1, 1000),
              help="With --firmware: random test inputs to embed (when no --test-inputs).  [default: 2]")
@tvm_schedule_opt
@input_shape_opt
@quant_options()
@compress_options
@config_opt
@tree_options
@fit_options
@handle_errors
def build(model, target, out_dir, name, force, backend, opt_level, lto, optimize, kernels, firmware,
          test_inputs, raw_inputs, test_samples, part_flash, part_ram, no_fit_check,
          tvm_schedule, tvm_codegen, input_shapes, quant_mode, calibration, calibration_method, percentile,
          calibration_samples,
          keep_float, float_io, per_tensor, eval_data, config_path, trees_layout, tree_features,
          tree_calibration, quantized_input, low_rank, prune, binarize, binarize_mode, sparse):
    """Compile MODEL into a C bundle for TARGET.

    Without MODEL, the model and options come from edgec.toml (or [tool.edgec] in
    pyproject.toml); options given here override the file's."""
    from ..pipeline import Options, compile_with
    cfg = _config(config_path)
    if model is None:
        if cfg is None or cfg.model is None:
            raise click.UsageError("give MODEL, or name it in edgec.toml (model = \"...\")")
        model = str(cfg.model)

    def pick(cli, key, default):
        if cli is not None:
            return cli
        v = getattr(cfg, key, None) if cfg is not None else None
        return default if v is None else v
    firmware = pick(firmware, "firmware", False)
    test_samples_v = pick(test_samples, "test_samples", 2)
    if (test_inputs or test_samples is not None) and not firmware:
        raise click.UsageError("--test-inputs / --test-samples need --firmware")
    if raw_inputs and not test_inputs:
        from ..ir.errors import EdgecError
        raise EdgecError("--raw-inputs describes a --test-inputs file: give one")
    ccfg = _compress_config(low_rank, prune, binarize, binarize_mode, calibration)
    qcfg = _quant_config(quant_mode, None if (quant_mode is None and binarize) else calibration,
                         calibration_method, percentile,
                         calibration_samples, keep_float, float_io, per_tensor, eval_data)
    if eval_data and ccfg is None and (qcfg is None or qcfg.mode != "int8"):
        from ..ir.errors import EdgecError
        raise EdgecError("--eval compares the float model with its int8 or compressed version: it needs "
                         "--quantize int8, --prune, --low-rank or --binarize")
    shapes = list(input_shapes) or (cfg.input_shapes if cfg else []) or None
    opts = Options(target=_part_target(pick(target, "target", "cortex-m4"), part_flash, part_ram),
                   backend=pick(backend, "backend", "native"), fit_check=not no_fit_check,
                   name=pick(name, "name", "model"), input_shapes=shapes,
                   opt_level=pick(opt_level, "opt_level", "s"), lto=pick(lto, "lto", False),
                   optimize=pick(optimize, "optimize", "speed"), firmware=firmware,
                   test_inputs=test_inputs, test_samples=test_samples_v, raw_inputs=raw_inputs,
                   quantize=qcfg, eval_data=eval_data, compress=ccfg)
    opts.extra.update(_backend_options(opts.backend, tvm_schedule, tvm_codegen))
    opts.extra.update(_tree_extra(trees_layout, tree_features, tree_calibration, quantized_input))
    opts.extra.update(_sparse_options(sparse))
    if kernels != "auto":
        opts.extra["kernels"] = kernels
    bundle = compile_with(model, opts)
    out = out_dir or (str(cfg.output) if cfg is not None and cfg.output else None)
    path = bundle.write(out or f"{bundle.name}_bundle", force=force)
    _print_build(bundle.report, path)
    _print_compression(bundle.report)
    _print_quant(bundle.report.get("quantization"),
                 None if bundle.report.get("compression") else bundle.report.get("accuracy"))
    if bundle.report.get("compression") and bundle.report.get("accuracy"):
        from ..passes.accuracy import format_table
        click.echo(format_table(bundle.report["accuracy"]))


def _config(path):
    from ..commands import config
    cfg = config.find(path)
    if cfg is not None:
        click.echo(f"edgec: using {cfg.label}", err=True)
    return cfg


def _export(g, out) -> None:
    from ..ir.errors import EdgecError
    if out.suffix.lower() == ".onnx":
        from ..exporters.onnx_qdq import write
        write(g, out)
        return
    from ..exporters import tflite as tfl_export
    tfl_export.save(g, out)


def _print_compression(r: dict) -> None:
    c = r.get("compression")
    sp = r.get("sparse")
    if not c and not (sp and sp["layers"]):
        return
    con = _console()
    if c:
        lr = c.get("low_rank")
        if lr:
            con.print(f"low-rank: {len(lr['layers'])} layers factorized "
                      + ", ".join(f"{L['name']} {L['shape'][0]}x{L['shape'][1]} -> rank {L['rank']} "
                                  f"({100 * L['energy_kept']:.1f}% energy)" for L in lr["layers"][:8]))
        pr = c.get("prune")
        if pr:
            con.print(f"pruned: {pr['zeros']:,} of {pr['weights']:,} weights zero "
                      f"({100 * pr['sparsity']:.1f}%) in {len(pr['layers'])} layers")
        bz = c.get("binarize")
        if bz:
            con.print(f"binarized ({bz['mode']}): {', '.join(L['name'] for L in bz['layers']) or 'no layers'}"
                      + (f"; skipped {', '.join(L['name'] + ' (' + L['reason'] + ')' for L in bz['skipped'])}"
                         if bz.get("skipped") else ""))
        b, a = c["parameters_before"], c["parameters_after"]
        con.print(f"parameters: {b['weights']:,} -> {a['weights']:,} weights "
                  f"({100 * c['weights_cut']:.1f}% fewer), {b['weight_bits'] // 8:,} -> "
                  f"{a['weight_bits'] // 8:,} bytes as stored in the graph")
    if sp and sp["layers"]:
        con.print(f"sparse storage: {sp['layers']} layers, weights of layers with zeros "
                  f"{sp['dense_bytes']:,} B dense -> {sp['stored_bytes']:,} B stored")


def _print_quant(info, acc) -> None:
    if not info:
        return
    con = _console()
    if info["mode"] == "int8":
        cal = info["calibration"]
        con.print(f"quantized int8: {info['int8_layers']} int8 layers, {len(info['float_layers'])} float "
                  f"({', '.join(L['name'] + ': ' + L['reason'] for L in info['float_layers']) or 'none'}); "
                  f"{cal['method']} calibration on {cal['samples']} samples from {cal['source']}; "
                  f"I/O {info['io']}")
        for note in cal.get("notes", []):
            con.print(f"[yellow]note: {note}[/yellow]")
    else:
        con.print(f"quantized weights to int8 in {info['int8_weight_layers']} layers (activations float)")
    if acc:
        from ..passes.accuracy import format_table
        click.echo(format_table(acc))


@main.command()
@click.argument("model", type=click.Path())
@click.option("-o", "--output", "out_path", required=True, type=click.Path(),
              help="The quantized model: .onnx (QDQ) or .tflite.")
@click.option("--report", "report_path", default=None, type=click.Path(),
              help="Also write the quantization (and accuracy) report as JSON here.")
@input_shape_opt
@quant_options(default_mode="int8")
@handle_errors
def quantize(model, out_path, report_path, input_shapes, quant_mode, calibration, calibration_method,
             percentile, calibration_samples, keep_float, float_io, per_tensor, eval_data):
    """Quantize the float MODEL with edgec and write it as ONNX (QDQ) or TFLite."""
    from pathlib import Path

    from ..pipeline import load, lower, quantize_graph
    from ..ir.errors import EdgecError
    qcfg = _quant_config(quant_mode, calibration, calibration_method, percentile,
                         calibration_samples, keep_float, float_io, per_tensor, eval_data)
    out = Path(out_path)
    if out.suffix.lower() not in (".onnx", ".tflite"):
        raise EdgecError(f"-o {out_path}: the output must end in .onnx (QDQ) or .tflite")
    g = lower(load(model, list(input_shapes) or None))
    if out.suffix.lower() == ".tflite":
        from ..passes import layout
        if layout.needs_nhwc(g):  # ONNX models: TFLite knows only NHWC
            g = layout.to_nhwc(g)
    gq, info, acc = quantize_graph(g, qcfg, eval_data)
    _export(gq, out)
    click.echo(f"wrote {out} ({out.stat().st_size:,} bytes)")
    _print_quant(info, acc)
    if report_path:
        doc = {"schema": "edgec-quantize/1", "model": str(model), "output": str(out),
               "options": {"quantize": qcfg.to_json(), **({"eval": str(eval_data)} if eval_data else {})},
               "transformations": list(gq.meta.get("passes", [])) + list(gq.meta.get("transforms", [])),
               "quantization": info}
        if acc is not None:
            doc["accuracy"] = acc
        from ..ir.bundle import write_file
        write_file(report_path, json.dumps(doc, indent=2, sort_keys=True) + "\n")


# layers listed by `edgec build` before the table is cut (report.json lists them all)
BUILD_TABLE_ROWS = 60


def _print_build(r: dict, path) -> None:
    from rich.table import Table
    con = _console()
    t = Table(title=f"{r['model']['source']} -> {path} (target {r['target']}, backend {r['backend']})",
              title_justify="left")
    t.add_column("#", justify="right")
    t.add_column("layer")
    t.add_column("output", justify="left")
    t.add_column("weights B", justify="right")
    t.add_column("MACs", justify="right")
    layers = r["layers"]
    shown = layers if len(layers) <= BUILD_TABLE_ROWS else \
        layers[:BUILD_TABLE_ROWS - 10] + [None] + layers[-10:]
    for L in shown:
        if L is None:
            rest = layers[BUILD_TABLE_ROWS - 10:-10]
            t.add_row("...", f"{len(rest):,} more layers (all in report.json)", "",
                      f"{sum(x['weights_bytes'] for x in rest):,}", f"{sum(x['macs'] for x in rest):,}")
            continue
        t.add_row(str(L["index"]), L["op"], "x".join(map(str, L["output_shapes"][0])) + " " +
                  L["output_dtypes"][0], f"{L['weights_bytes']:,}", f"{L['macs']:,}")
    con.print(t)
    est = r["estimate"]
    con.print(f"weights (flash): {r['weights_bytes']:,} B   arena (RAM): {r['arena_bytes']:,} B "
              f"(lifetime lower bound {r['arena_lower_bound']:,} B)   I/O buffers: {r['io_bytes']:,} B   "
              f"MACs: {r['macs']:,}")
    fit = r.get("fit")
    if fit:
        con.print(f"target {r['target']} declares {fit['target_flash']:,} B flash, {fit['target_ram']:,} B RAM: "
                  f"headroom {fit['flash_headroom']:,} B flash, {fit['ram_headroom']:,} B RAM before code, "
                  "stack and C library")
    con.print(f"[dim]estimate before linking: flash >= {est['flash_constants_bytes']:,} B (the model's "
              f"constants; code not counted), RAM >= {est['ram_bytes']:,} B (arena + I/O buffers; stack and "
              f"C library not counted). `edgec size` on the linked firmware gives the real figures.[/dim]")
    for L in r["layers"]:
        tr = L.get("trees")
        if tr:
            fe = tr.get("feature_quantization")
            con.print(f"layer {L['index']}: {tr['trees']} trees, {tr['internal_nodes']:,} internal nodes, "
                      f"{tr['leaves']:,} leaves ({tr['distinct_leaves']:,} stored, {tr['leaf_form']}), "
                      f"trees as {tr['layout']} (estimated {tr['estimate_bytes']['data']:,} B as data, "
                      f"{tr['estimate_bytes']['code']:,} B as code), "
                      + (f"{fe['bits']}-bit features ({fe['input']})" if fe else f"{tr['threshold_type']} features"))
    for note in r.get("notes", []) + (r.get("test_inputs") or {}).get("notes", []):
        con.print(f"[yellow]note: {note}[/yellow]")
    from ..ops.conv import HYBRID_NOTE
    for tr in r.get("transformations", []):
        if "tree ensemble" in tr or "ZipMap" in tr or tr.startswith(HYBRID_NOTE):
            con.print(f"[yellow]note: {tr}[/yellow]")


@main.command()
@click.argument("model", type=click.Path())
@input_shape_opt
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def inspect(model, input_shapes, as_json):
    """Inputs, outputs, operators, parameters and MACs of MODEL; what edgec cannot compile."""
    from ..commands.inspect import inspect as do_inspect
    info = do_inspect(model, list(input_shapes) or None)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        con = _console()
        con.print(f"[bold]{info['model']}[/bold] ({info['format']})")
        for key in ("inputs", "outputs"):
            for t in info.get(key, []):
                q = f" scale {t['scale']:.6g} zero point {t['zero_point']}" if "scale" in t else ""
                con.print(f"  {key[:-1]:<6} {t['name']}: {t['dtype']} {t['shape']}{q}")
        con.print("  operators: " + ", ".join(f"{k} x{v}" for k, v in info["source_ops"].items()))
        if "parameters" in info:
            con.print(f"  parameters: {info['parameters']:,} ({info['parameter_bytes']:,} bytes)   "
                      f"MACs: {info['macs']:,}")
        for t in info.get("trees", []):
            con.print(f"  tree ensemble ({t['kind']}): {t['trees']} trees, {t['internal_nodes']:,} "
                      f"internal nodes, {t['leaves']:,} leaves, depth <= {t['max_depth']}, "
                      f"{t['outputs']} {'classes' if t['kind'] == 'classifier' else 'targets'}, "
                      f"{t['threshold_type']} thresholds, {t['aggregate']}, post transform {t['post_transform']}")
        if info.get("unsupported"):
            con.print("  [red]unsupported:[/red] " + ", ".join(info["unsupported"]))
        else:
            con.print("  [green]edgec can compile this model[/green]")
    if info.get("unsupported"):
        sys.exit(2)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def targets(as_json):
    """List the targets edgec knows, with their compilers, features, memory and emulator."""
    from ..target import targets as tg
    all_t = tg.all_targets()
    if as_json:
        click.echo(json.dumps([t.summary() for t in all_t], indent=2))
        return
    from rich.table import Table
    tab = Table()
    for c in ("target", "compiler / flags", "features", "flash", "RAM", "QEMU machine"):
        tab.add_column(c)
    for t in all_t:
        tab.add_row(t.name, f"{t.cc} {' '.join(t.cflags)}", ", ".join(t.features) or "-",
                    _kb(t.flash), _kb(t.ram), t.qemu.machine if t.qemu else "-")
    _console().print(tab)


def _kb(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):g} G"
    if n >= 1 << 20:
        return f"{n / (1 << 20):g} M"
    return f"{n / 1024:g} K"


@main.command()
@click.argument("model", type=click.Path())
@click.option("-t", "--target", default="host", show_default=True, help="host, or an MCU target with an emulator.")
@click.option("-n", "--samples", default=10, show_default=True, type=click.IntRange(1, 100000), help="Random input samples.")
@click.option("--inputs", "inputs_file", default=None, type=click.Path(),
              help="Samples instead of random ones: .npz (arrays named after the inputs, input0..., "
                   "arr_0..., or x; labels y ignored), .npy, a directory of .npy files, or .csv.")
@raw_inputs_opt
@click.option("--layers", is_flag=True, help="Compare every intermediate tensor too.")
@click.option("--seed", default=0, show_default=True)
@click.option("--rtol", default=1e-4, show_default=True, help="Float tolerance relative to the largest reference value.")
@click.option("--sanitize", is_flag=True, help="Host: build with AddressSanitizer and UBSan.")
@click.option("--optimize", default="speed", show_default=True, type=click.Choice(["speed", "size"]),
              help="Kernels specialized per layer (speed) or shared across layers (size).")
@click.option("--kernels", default="auto", show_default=True, type=click.Choice(["auto", "plain"]),
              help="plain: the portable C kernels even where SIMD ones exist.")
@click.option("--backend", default="native", show_default=True,
              type=click.Choice(["native", "tvm", "tflm"]),
              help="Code generator to verify (tvm: the tvm extra; tflm: the TensorFlow Lite Micro "
                   "bundle, on the host in the tflite-micro interpreter with the declared arena "
                   "against the native backend, on an MCU as firmware in QEMU with TFLM_DIR and "
                   "TFLM_LIB).")
@tvm_schedule_opt
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@input_shape_opt
@quant_options()
@tree_options
@compress_options
@fit_options
@handle_errors
def verify(model, target, samples, inputs_file, raw_inputs, layers, seed, rtol, sanitize, optimize, kernels,
           backend, part_flash, part_ram, no_fit_check, tvm_schedule,
           tvm_codegen, as_json, input_shapes,
           quant_mode, calibration, calibration_method, percentile, calibration_samples,
           keep_float, float_io, per_tensor, eval_data, trees_layout, tree_features, tree_calibration,
           quantized_input, low_rank, prune, binarize, binarize_mode, sparse):
    """Run the compiled MODEL and compare it with the reference runtime.

    With --quantize, --prune, --low-rank or --binarize: transform the MODEL with edgec,
    then compare the compiled model with edgec's reference interpreter running the
    transformed graph (bit for bit for int8 and binary layers).  With --backend tflm:
    the TensorFlow Lite Micro bundle instead of edgec's own C."""
    from ..commands.verify import verify as do_verify
    ccfg = _compress_config(low_rank, prune, binarize, binarize_mode, calibration)
    qcfg = _quant_config(quant_mode, None if (quant_mode is None and binarize) else calibration,
                         calibration_method, percentile,
                         calibration_samples, keep_float, float_io, per_tensor, eval_data)
    if eval_data:
        from ..ir.errors import EdgecError
        raise EdgecError("--eval belongs to build, quantize and explore, not verify")
    res = do_verify(model, target=_part_target(target, part_flash, part_ram), n=samples, seed=seed,
                    inputs_file=inputs_file, fit_check=not no_fit_check,
                    layers=layers, rtol=rtol, input_shapes=list(input_shapes) or None,
                    sanitize=sanitize, quantize=qcfg, backend=backend, compress=ccfg, optimize=optimize,
                    raw_inputs=raw_inputs,
                    options={**_backend_options(backend, tvm_schedule, tvm_codegen),
                             **({} if kernels == "auto" else {"kernels": kernels}),
                             **_tree_extra(trees_layout, tree_features, tree_calibration, quantized_input),
                             **_sparse_options(sparse)})
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=2))
    else:
        con = _console()
        what = " (TFLM bundle)" if backend == "tflm" else ""
        con.print(f"{res.model}{what} on {res.target} vs {res.reference}, {res.samples} samples")
        for c in res.outputs:
            con.print("  " + c.line())
        if layers:
            bad = [c for c in res.layers if not c.ok]
            con.print(f"  intermediate tensors compared: {len(res.layers)}, mismatching: {len(bad)}")
            for c in (bad or res.layers)[:50]:
                con.print("    " + c.line())
        for n in res.notes:
            con.print(f"  [dim]{n}[/dim]")
        fw = res.extra.get("firmware")
        if fw:
            con.print(f"  [dim]firmware: QEMU {fw['machine']}, flash {fw['flash_bytes']:,} B, "
                      f"RAM {fw['ram_bytes']:,} B (stack used {fw['stack_used']:,} B), "
                      f"{res.samples} samples in one run of {fw['seconds']:.2f} s[/dim]")
        con.print("[green]PASS[/green]" if res.ok else "[red]FAIL[/red]")
    sys.exit(0 if res.ok else 1)


@main.command()
@click.option("-k", "--filter", "patterns", multiple=True, metavar="PATTERN",
              help="Only tests whose name matches (regular expression or glob; repeatable).")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out matching tests (repeatable).")
@click.option("-j", "--jobs", default=None, type=click.IntRange(1, 64),
              help="Parallel workers (default: up to 2).")
@click.option("--opt-level", default="1", show_default=True, help="gcc -O level of the compiled cases.")
@click.option("--sanitize", is_flag=True, help="Build the cases with AddressSanitizer and UBSan.")
@click.option("--also-target", "cross", multiple=True, metavar="TARGET",
              help="Also compile every case with this target's compiler and flags, warnings as "
                   "errors (e.g. cortex-m4; repeatable).")
@click.option("--bind/--no-bind", default=True, show_default=True,
              help="Bind graph inputs that edgec needs as compile-time constants (shapes, axes, "
                   "weights) to the test's values; --no-bind skips those tests instead.")
@click.option("-v", "--verbose", is_flag=True, help="List every test with its outcome.")
@click.option("--failures/--no-failures", default=True, show_default=True, help="List failing tests.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every test, outcome and reason).")
@click.option("--write-skips", is_flag=True,
              help="Rewrite tests/conformance_skips.txt (expected skips with reasons) from this run.")
@handle_errors
def conformance(patterns, exclude, jobs, opt_level, sanitize, cross, bind, verbose, failures,
                as_json, write_skips):
    """Run the ONNX backend node tests (onnx.backend.test) compiled by edgec for the host.

    Every test is imported, compiled with -Wall -Wextra -Werror, run on its shipped
    inputs and compared with its shipped outputs.  Exit 0 when nothing fails, 1 otherwise.
    """
    from ..commands import conformance as conf
    rep = conf.run(patterns, exclude, jobs=jobs, opt_level=opt_level, sanitize=sanitize,
                   bind=bind, cross=cross)
    if write_skips:
        if patterns or exclude or not bind:
            raise EdgecError("--write-skips needs a full run (no --filter/--exclude/--no-bind)")
        conf.write_expected_skips(rep)
    if as_json:
        click.echo(json.dumps(rep.to_json(), indent=2))
    else:
        expected = conf.load_expected_skips()
        for r in rep.results:
            if verbose or (failures and r.status == "fail"):
                click.echo(f"{r.status.upper():<5} {r.name}" + (f": {r.reason}" if r.reason else "")
                           + (f" [bound: {', '.join(r.bound)}]" if r.bound else ""))
        new_skips = [r.name for r in rep.results if r.status == "skip" and r.name not in expected]
        if new_skips:
            click.echo(f"{len(new_skips)} skipped tests are not in {conf.SKIPS_FILE.name}: "
                       + ", ".join(new_skips[:20]) + (" ..." if len(new_skips) > 20 else ""))
        click.echo(rep.summary())
    sys.exit(1 if rep.failed else 0)


@main.command()
@click.argument("model", type=click.Path())
@click.option("-t", "--target", default="cortex-m4", show_default=True, help="An MCU target with an emulator.")
@click.option("-n", "--samples", default=1, show_default=True, type=click.IntRange(1, 1000), help="Random input samples (sample 0 is the one reported).")
@click.option("--inputs", "inputs_file", default=None, type=click.Path(),
              help="Samples instead of random ones (as verify --inputs).")
@raw_inputs_opt
@click.option("--seed", default=0, show_default=True)
@click.option("--opt-level", default="s", show_default=True, help="C optimization level (0,1,2,3,s,z,fast).")
@click.option("--lto", is_flag=True, help="Link-time optimization.")
@click.option("--runs", default=2, show_default=True, type=click.IntRange(1, 20), help="QEMU runs whose counts must be identical.")
@click.option("--optimize", default="speed", show_default=True, type=click.Choice(["speed", "size"]),
              help="Kernels specialized per layer (speed) or shared across layers (size).")
@click.option("--kernels", default="auto", show_default=True, type=click.Choice(["auto", "plain"]),
              help="plain: the portable C kernels even where SIMD ones exist (the baseline).")
@click.option("--no-layers", is_flag=True, help="Skip the per-layer profile build.")
@click.option("--backend", default="native", show_default=True,
              type=click.Choice(["native", "tvm", "tflm"]),
              help="Code generator to benchmark (tvm: the tvm extra; tflm: the TensorFlow Lite "
                   "Micro bundle linked with TFLM_LIB, needs TFLM_DIR).")
@tvm_schedule_opt
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@input_shape_opt
@tree_options
@compress_options
@click.option("--calibration", default=None, metavar="DATA",
              help="With --binarize (xnor mode): data measuring each binarized layer's input.")
@fit_options
@handle_errors
def bench(model, target, samples, inputs_file, raw_inputs, seed, opt_level, lto, runs, optimize, kernels,
          no_layers, backend, part_flash, part_ram, no_fit_check,
          tvm_schedule, tvm_codegen, as_json, input_shapes, trees_layout, tree_features, tree_calibration,
          quantized_input, low_rank, prune, binarize, binarize_mode, sparse, calibration):
    """Instructions per inference and per layer (QEMU -icount shift=0), flash and RAM of the firmware.

    With --prune, --low-rank or --binarize: of the transformed model."""
    from ..commands.bench import bench as do_bench
    r = do_bench(model, target=_part_target(target, part_flash, part_ram), n=samples, seed=seed,
                 inputs_file=inputs_file, raw_inputs=raw_inputs, fit_check=not no_fit_check,
                 opt_level=opt_level, lto=lto, layers=not no_layers, runs=runs,
                 input_shapes=list(input_shapes) or None, backend=backend, optimize=optimize,
                 compress=_compress_config(low_rank, prune, binarize, binarize_mode, calibration),
                 options={**_backend_options(backend, tvm_schedule, tvm_codegen),
                          **({} if kernels == "auto" else {"kernels": kernels}),
                          **_tree_extra(trees_layout, tree_features, tree_calibration, quantized_input),
                          **_sparse_options(sparse)})
    if as_json:
        click.echo(json.dumps(r.to_json(), indent=2))
    else:
        _print_bench(r)
    if not r.repeatable:
        click.echo("edgec: error: instruction counts differ between runs", err=True)
        sys.exit(1)


def _print_bench(r) -> None:
    from rich.table import Table
    con = _console()
    con.print(f"[bold]{r.model}[/bold] ({r.options.get('backend', 'native')} backend) on {r.target} "
              f"(QEMU {r.machine}, -icount shift=0: "
              f"1 tick = {r.tick_instructions:g} instruction{'' if r.tick_instructions == 1 else 's'})")
    same = "identical" if r.repeatable else "[red]DIFFERENT[/red]"
    con.print(f"  instructions / inference {r.instructions:>14,}   " + (f"({r.runs} runs: {same})" if r.runs > 1 else "(1 run)"))
    if r.samples > 1:
        con.print(f"  over {r.samples} samples                {r.instructions_min:,} .. {r.instructions_max:,}")
    con.print(f"  MACs                     {r.macs:>14,}   MACs / instruction {r.macs_per_instruction:.3f}")
    for note in r.notes:
        con.print(f"  [yellow]note: {note}[/yellow]")
    f, m = r.flash, r.ram
    con.print(f"  flash {f['firmware']:>9,} B   code {f['code']:,} (model kernels {f['model_code']:,}, "
              f"rest harness + libc)   weights {f['weights']:,}   [dim](+ test vectors {f['test_data']:,})[/dim]")
    con.print(f"  RAM   {m['used']:>9,} B   arena {m['arena']:,}   other {m['other']:,} "
              f"(static {m['static_other']:,} + stack used {m['stack_used']:,}; "
              f"{m['stack_reserved']:,} reserved)")
    if r.layers:
        t = Table(title="per layer (profiling build)", title_justify="left")
        for c, j in (("#", "right"), ("layer", "left"), ("output", "left"), ("MACs", "right"),
                     ("instructions", "right"), ("%", "right"), ("MACs/instr", "right"),
                     ("code B", "right"), ("weights B", "right")):
            t.add_column(c, justify=j)
        total = sum(L["instructions"] or 0 for L in r.layers) or 1
        for L in r.layers:
            ins = L["instructions"]
            t.add_row(str(L["index"]), L["op"], "x".join(map(str, L["output_shape"])),
                      f"{L['macs']:,}", f"{ins:,}" if ins is not None else "-",
                      f"{100 * (ins or 0) / total:.1f}",
                      f"{L['macs_per_instruction']:.3f}" if L["macs_per_instruction"] else "-",
                      f"{L['code_bytes']:,}", f"{L['weights_bytes']:,}")
        con.print(t)
        con.print(f"  [dim]sum of layers {total:,} instructions (each rounded to whole ticks; "
                  "the hooks add a few per layer)[/dim]")


@main.command()
@click.argument("model", type=click.Path())
@click.option("--eval", "eval_data", required=True, metavar="DATA",
              help=".npz of inputs with labels 'y' (top-1) or without (output SQNR against the original model).")
@click.option("-t", "--target", default="cortex-m4", show_default=True,
              help="Target to size the firmware for; with an emulator, instructions per inference too "
                   "(host: compiler estimates only).")
@click.option("--calibration", default=None, metavar="DATA",
              help="Calibration data for int8 and --binarize xnor (default: the --eval data, optimistic).")
@click.option("--techniques", default=",".join(("int8", "prune", "low-rank", "binarize")), show_default=True,
              help="Comma-separated subset of int8, prune, low-rank, binarize.")
@click.option("--no-bench", is_flag=True, help="Sizes only: do not run the firmware in QEMU.")
@click.option("--eval-samples", default=300, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Use at most this many evaluation samples.")
@click.option("-o", "--output", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Write explore.json and explore.html (table and size/accuracy plot) here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema edgec-explore/1).")
@input_shape_opt
@handle_errors
def explore(model, eval_data, target, calibration, techniques, no_bench, eval_samples, out_dir, as_json,
            input_shapes):
    """Flash, RAM, instructions and accuracy of MODEL under each compression technique and strength.

    Techniques: int8 quantization, magnitude pruning (0.5/0.7/0.9, with sparse storage), low-rank
    factorization (0.95/0.9/0.8 of the energy), binarization of the hidden layers, and their
    combinations with int8.  Prints a table; -o writes JSON and an HTML page with the plot."""
    from pathlib import Path

    from ..commands import explore as ex
    res = ex.explore(model, eval_data, target=target, calibration=calibration,
                     techniques=[t.strip() for t in techniques.split(",") if t.strip()],
                     bench=not no_bench, eval_samples=eval_samples,
                     input_shapes=list(input_shapes) or None)
    if out_dir:
        from ..ir.bundle import write_file
        out = Path(out_dir)
        write_file(out / "explore.json", json.dumps(res, indent=2) + "\n")
        write_file(out / "explore.html", ex.render_html(res))
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    from rich.table import Table
    con = _console()
    t = Table(title=f"{res['model']} on {res['target']}: {res['metric']} on {res['eval']['samples']} samples "
                    f"vs the original model", title_justify="left")
    for c in ex.COLUMNS:
        t.add_column(c, justify="left" if c in ("configuration", "") else "right")
    for r in ex.table_rows(res):
        t.add_row(*r)
    con.print(t)
    for n in res["notes"]:
        con.print(f"[yellow]note: {n}[/yellow]")
    if any(p["sizes_are_estimates"] for p in res["points"] if p["ok"]):
        con.print("[dim]* estimate before linking (host target): constants only[/dim]")
    if out_dir:
        con.print(f"wrote {Path(out_dir) / 'explore.json'} and {Path(out_dir) / 'explore.html'}")


# ---------------------------------------------------------------- size and check

def _size_inputs(fn):
    for dec in reversed([
        click.argument("elf_or_bundle", required=False, type=click.Path()),
        click.option("--bundle", multiple=True, type=click.Path(file_okay=False),
                     help="The bundle the ELF was linked from (its report.json names the layers). "
                          "Default: the ELF's directory, when it is a bundle. Repeat it for a firmware "
                          "with several models: each model's flash and RAM is attributed separately."),
        click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
                     help="The bundle's report.json, when it is not next to the ELF."),
        click.option("--name", multiple=True,
                     help="The bundle's name (symbol prefix) when there is no report.json (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (schema edgec-size/1, docs/SIZE_REPORT.md)."),
        click.option("--markdown", "as_markdown", is_flag=True, help="Print Markdown (CI job summary, PR comment)."),
        click.option("--html", "as_html", is_flag=True, help="Print one self-contained HTML page."),
        click.option("-o", "--output", "outputs", multiple=True, type=click.Path(dir_okay=False),
                     help="Also write the report to FILE, format by extension: .json, .md, .html "
                          "(repeatable)."),
        click.option("--symbols", default=15, show_default=True, type=click.IntRange(0, 100000),
                     help="Largest symbols listed in the table / Markdown / HTML."),
        click.option("--baseline", default=None, type=click.Path(dir_okay=False),
                     help="A previous size report (JSON) to compare with: growth per section and layer."),
        config_opt,
    ]):
        fn = dec(fn)
    return fn


_EXT = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def _measure(elf_or_bundle, bundles, report_path, names, cfg):
    from ..report import size as rp
    bundles, names = list(bundles), list(names)
    if len(bundles) > 1 or len(names) > 1:
        # several models in one firmware (one --bundle with one --name: the name is the bundle's)
        if elf_or_bundle is None and cfg is not None and cfg.elf is not None:
            elf_or_bundle = cfg.elf
        if elf_or_bundle is None:
            raise EdgecError("give the firmware ELF that links the bundles")
        if report_path is not None:
            raise EdgecError("--report goes with one bundle: with several, each --bundle's "
                             "report.json is read")
        loc, models = rp.locate_models(elf_or_bundle, bundles, names)
        return loc, rp.size_report(loc.elf, note=loc.note, models=models)
    bundle = bundles[0] if bundles else None
    name = names[0] if names else None
    if elf_or_bundle is None:
        if cfg is not None and cfg.elf is not None:
            elf_or_bundle = cfg.elf
            if bundle is None and report_path is None and cfg.output is not None:
                bundle = cfg.output
        elif cfg is not None and cfg.output is not None:
            elf_or_bundle = cfg.output
        else:
            raise EdgecError("give a firmware ELF or a bundle directory, or name them in "
                                   "edgec.toml (elf = \"...\", output = \"...\")")
    loc = rp.locate(elf_or_bundle, bundle=bundle, report=report_path)
    rep = rp.size_report(loc.elf, loc.build_report, name=name, note=loc.note)
    return loc, rep


def _emit(rep, chk, as_json, as_markdown, as_html, outputs, symbols):
    from ..report import render as rf
    fmts = [f for f, on in (("json", as_json), ("markdown", as_markdown), ("html", as_html)) if on]
    if len(fmts) > 1:
        raise EdgecError("choose one of --json, --markdown, --html (use -o FILE for more)")
    for o in outputs:
        from pathlib import Path
        ext = Path(o).suffix.lower()
        if ext not in _EXT:
            raise EdgecError(f"-o {o}: unknown extension (.json, .md or .html)")
    for o in outputs:
        from pathlib import Path
        rf.write(o, rf.render(_EXT[Path(o).suffix.lower()], rep, chk, symbols))
    if fmts:
        click.echo(rf.render(fmts[0], rep, chk, symbols), nl=False)
    else:
        rf.print_table(_console(), rep, chk, symbols)


@main.command()
@_size_inputs
@handle_errors
def size(elf_or_bundle, bundle, report_path, name, as_json, as_markdown, as_html, outputs, symbols,
         baseline, config_path):
    """Flash and RAM of a linked firmware: per section, symbol and model layer.

    ELF_OR_BUNDLE is a firmware ELF (its bundle's report.json next to it or given
    with --bundle), or a bundle directory (its firmware.elf, else the bundle linked
    with edgec's harness to measure it). Everything is read from the ELF. A firmware
    with several models: one --bundle per model (each model's code, weights and arena
    apart)."""
    from ..report import size as rp
    cfg = _config(config_path)
    loc, rep = _measure(elf_or_bundle, bundle, report_path, name, cfg)
    chk = None
    if baseline is not None:
        chk = rp.check(rep, rp.Budgets(), rp.load_size_report(baseline))
    _emit(rep, chk, as_json, as_markdown, as_html, outputs, symbols)


@main.command()
@_size_inputs
@click.option("--flash", "flash_budget", default=None, metavar="SIZE", help="Flash budget, e.g. 256K, 1M, 65536.")
@click.option("--ram", "ram_budget", default=None, metavar="SIZE", help="RAM budget, e.g. 64K.")
@click.option("--max-growth", default=None, metavar="LIMIT",
              help="With --baseline: fail when flash or RAM grew by more, e.g. 2% or 1K.")
@click.option("-t", "--target", default=None,
              help="Without budgets: use this target's typical memory (see `edgec targets`).")
@handle_errors
def check(elf_or_bundle, bundle, report_path, name, as_json, as_markdown, as_html, outputs, symbols,
          baseline, config_path, flash_budget, ram_budget, max_growth, target):
    """Fail (exit 1) when the firmware exceeds its flash / RAM budget or grew too much.

    Budgets come from --flash/--ram, else edgec.toml's [budget] (or [tool.edgec.budget]
    in pyproject.toml), else the target's typical memory. Exit 0 within budget, 1 over
    (the table says which budget and by how much), 2 on bad input."""
    from ..report import size as rp
    from ..target.targets import parse_size
    cfg = _config(config_path)
    b = rp.Budgets()
    src = []
    if flash_budget is not None:
        b.flash = parse_size(flash_budget, "--flash budget")
    if ram_budget is not None:
        b.ram = parse_size(ram_budget, "--ram budget")
    if b.flash is not None or b.ram is not None:
        src.append("command line")
    if cfg is not None:
        used = False
        if b.flash is None and cfg.flash is not None:
            b.flash, used = cfg.flash, True
        if b.ram is None and cfg.ram is not None:
            b.ram, used = cfg.ram, True
        if used:
            src.append(cfg.label)
    mg = max_growth if max_growth is not None else (cfg.max_growth if cfg else None)
    if mg is not None:
        b.max_growth = rp.parse_growth(mg)
        b.max_growth_text = str(mg)
    base_path = baseline or (cfg.baseline if cfg is not None else None)
    if b.max_growth is not None and base_path is None:
        raise EdgecError("--max-growth needs --baseline (a previous size report)")
    base = rp.load_size_report(base_path) if base_path is not None else None
    loc, rep = _measure(elf_or_bundle, bundle, report_path, name, cfg)
    if b.flash is None and b.ram is None and base is None:
        tb = rp.budgets_from_target(target or (cfg.target if cfg else None) or rep.get("target"))
        if tb is None:
            raise EdgecError("no budget: give --flash / --ram, a [budget] in edgec.toml, "
                                   "or --target")
        b.flash, b.ram, src = tb.flash, tb.ram, [tb.source]
    b.source = " + ".join(src)
    chk = rp.check(rep, b, base)
    _emit(rep, chk, as_json, as_markdown, as_html, outputs, symbols)
    if not chk.ok:
        for f in chk.failures:
            click.echo(f"edgec: check failed: {f}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
