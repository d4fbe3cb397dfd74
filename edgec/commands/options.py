"""Command-line settings as the pipeline's configurations: the quantization,
compression, tree and backend options that build, quantize, verify and bench share,
checked together (one error naming the options that do not go together) and turned
into :class:`edgec.passes.quantize.QuantConfig`, :class:`edgec.passes.compress.CompressConfig`
and the settings of :class:`edgec.pipeline.Options` (its fields by name, given only
when they differ from the defaults)."""
from __future__ import annotations

from ..ir.errors import EdgecError
from ..passes.binarize import BinarizeConfig
from ..passes.compress import CompressConfig
from ..passes.lowrank import LowRankConfig
from ..passes.prune import PruneConfig
from ..passes.quantize import QuantConfig
from ..target import targets


def backend_options(backend: str, tvm_schedule, tvm_codegen=None) -> dict:
    """``Options`` fields of the TVM backend (--tvm-schedule, --tvm-codegen)."""
    opts = {k: v for k, v in (("tvm_schedule", tvm_schedule), ("tvm_codegen", tvm_codegen))
            if v is not None}
    if opts and backend != "tvm":
        raise EdgecError("--tvm-schedule / --tvm-codegen need --backend tvm")
    return opts


def tree_options(trees_layout, tree_features, tree_calibration, quantized_input) -> dict:
    """``Options`` fields of tree-ensemble code generation (the options that differ from the defaults)."""
    if (tree_calibration or quantized_input) and tree_features == "float":
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


def quant_config(quant_mode, calibration, calibration_method, percentile, calibration_samples,
                 keep_float, float_io, per_tensor, eval_data):
    """The post-training quantization asked for, or None (then no option that needs it may be given)."""
    if quant_mode is None:
        given = [n for n, v in (("--calibration", calibration), ("--keep-float", keep_float),
                                ("--float-io", float_io), ("--per-tensor", per_tensor)) if v]
        if given:
            raise EdgecError(f"{given[0]} needs --quantize int8 (or weights-int8)")
        return None
    cfg = QuantConfig(mode=quant_mode, calibration=calibration, method=calibration_method,
                      percentile=percentile, max_samples=calibration_samples,
                      keep_float=tuple(keep_float), io="float" if float_io else "int8",
                      per_channel=not per_tensor)
    cfg.check()
    return cfg


def compress_config(low_rank, prune, binarize, binarize_mode, calibration):
    """Low-rank, pruning and binarization asked for, or None."""
    cfg = CompressConfig(
        low_rank=LowRankConfig.parse(low_rank) if low_rank else None,
        prune=PruneConfig.parse(prune) if prune else None,
        binarize=BinarizeConfig(layers=tuple(x.strip() for b in binarize for x in b.split(",") if x.strip()),
                                mode=binarize_mode, calibration=calibration) if binarize else None)
    if cfg.binarize is not None:
        cfg.binarize.check()
    return cfg if cfg.any() else None


def sparse_options(sparse) -> dict:
    """``Options`` field of --sparse (auto when not given)."""
    return {} if sparse is None else {"sparse": sparse}


def kernel_options(kernels) -> dict:
    """``Options`` field of --kernels (auto when not given)."""
    return {} if kernels in (None, "auto") else {"kernels": kernels}


def flags(backend: str, kernels, tvm_schedule, tvm_codegen, trees_layout, tree_features,
          tree_calibration, quantized_input, sparse) -> dict:
    """The command line's backend and tree settings as ``Options`` fields (keyword arguments)."""
    return {**backend_options(backend, tvm_schedule, tvm_codegen), **kernel_options(kernels),
            **tree_options(trees_layout, tree_features, tree_calibration, quantized_input),
            **sparse_options(sparse)}


def part_target(target, part_flash, part_ram):
    """The target (name or file), with the part's memory when --flash / --ram are given."""
    if part_flash is None and part_ram is None:
        return target
    return targets.load(target).with_memory(
        None if part_flash is None else targets.parse_size(part_flash, "--flash"),
        None if part_ram is None else targets.parse_size(part_ram, "--ram"))
