"""Options that several commands share, as click decorators (their help texts are
what ``edgec COMMAND --help`` prints), and the project file every command may read."""
from __future__ import annotations

import click

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


raw_inputs_opt = click.option(
    "--raw-inputs", is_flag=True,
    help="The inputs file holds the integer levels of integer (int8) inputs themselves: taken as "
         "they are, non-integer, non-finite or out-of-range values refused. Without it, float "
         "values for an int8 input are quantized with the input's scale and zero point.")


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


config_opt = click.option(
    "--config", "config_path", default=None, type=click.Path(),
    help="Project config file (default: ./edgec.toml, or [tool.edgec] in ./pyproject.toml).")


def project_config(path):
    """The project file (edgec.toml, or [tool.edgec] in pyproject.toml): the one
    given, else the one found; it is named on stderr when used."""
    from ..commands import config
    cfg = config.find(path)
    if cfg is not None:
        click.echo(f"edgec: using {cfg.label}", err=True)
    return cfg
