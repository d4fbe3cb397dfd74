"""``edgec build``: the command line's settings and the project file (edgec.toml)
merged into pipeline :class:`~edgec.pipeline.Options`, the model compiled and the
bundle written."""
from __future__ import annotations

from pathlib import Path

from ..ir.errors import EdgecError
from ..ops.conv import HYBRID_NOTE
from ..ir.bundle import Bundle
from ..pipeline import Options, compile_with
from . import options as co


def setting(cfg, key: str, given, default):
    """A setting given on the command line, else the project file's, else the default."""
    if given is not None:
        return given
    v = getattr(cfg, key, None) if cfg is not None else None
    return default if v is None else v


def build(model, cfg=None, *, out_dir=None, force=False, target=None, name=None, backend=None,
          opt_level=None, lto=None, optimize=None, kernels="auto", firmware=None, test_inputs=None,
          raw_inputs=False, test_samples=None, part_flash=None, part_ram=None, fit_check=True,
          input_shapes=(), quantize=None, eval_data=None, compress=None,
          tvm_schedule=None, tvm_codegen=None, trees_layout="auto", tree_features="float",
          tree_calibration=None, quantized_input=False, sparse=None) -> tuple[Bundle, Path]:
    """Compile ``model`` and write its bundle (to ``out_dir``, else the project file's
    ``output``, else ``./<name>_bundle``); returns the bundle and where it went.

    Settings left None come from ``cfg`` (:mod:`edgec.commands.config`), else edgec's
    defaults.  ``quantize`` and ``compress`` are the configurations of
    :mod:`edgec.commands.options`."""
    if eval_data and compress is None and (quantize is None or quantize.mode != "int8"):
        raise EdgecError("--eval compares the float model with its int8 or compressed version: it needs "
                         "--quantize int8, --prune, --low-rank or --binarize")
    shapes = list(input_shapes) or (cfg.input_shapes if cfg else []) or None
    be = setting(cfg, "backend", backend, "native")
    opts = Options(target=co.part_target(setting(cfg, "target", target, "cortex-m4"), part_flash, part_ram),
                   backend=be, fit_check=fit_check,
                   name=setting(cfg, "name", name, "model"), input_shapes=shapes,
                   opt_level=setting(cfg, "opt_level", opt_level, "s"), lto=setting(cfg, "lto", lto, False),
                   optimize=setting(cfg, "optimize", optimize, "speed"),
                   firmware=setting(cfg, "firmware", firmware, False),
                   test_inputs=test_inputs, test_samples=setting(cfg, "test_samples", test_samples, 2),
                   raw_inputs=raw_inputs, quantize=quantize, eval_data=eval_data, compress=compress,
                   **co.flags(be, kernels, tvm_schedule, tvm_codegen, trees_layout, tree_features,
                              tree_calibration, quantized_input, sparse))
    bundle = compile_with(model, opts)
    out = out_dir or (str(cfg.output) if cfg is not None and cfg.output else None)
    path = bundle.write(out or f"{bundle.name}_bundle", force=force)
    return bundle, path


def notes(report: dict) -> list[str]:
    """What a build's report asks the user to notice: its notes, the test inputs' notes,
    and the transformations that change what the model computes or how (tree
    ensembles, ZipMap, a hybrid TFLite model's dequantized weights)."""
    out = list(report.get("notes", [])) + list((report.get("test_inputs") or {}).get("notes", []))
    out += [tr for tr in report.get("transformations", [])
            if "tree ensemble" in tr or "ZipMap" in tr or tr.startswith(HYBRID_NOTE)]
    return out
