"""``edgec bench``: instructions per inference and per layer in QEMU, flash and RAM of the
firmware (:mod:`edgec.commands.bench`)."""
from __future__ import annotations

import json
import sys

import click

from .options import (compress_options, fit_options, input_shape_opt, raw_inputs_opt, tree_options,
                      tvm_schedule_opt)
from .program import console, handle_errors, main


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
    from ..commands import options as co
    from ..commands.bench import bench as do_bench
    r = do_bench(model, target=co.part_target(target, part_flash, part_ram), n=samples, seed=seed,
                 inputs_file=inputs_file, raw_inputs=raw_inputs, fit_check=not no_fit_check,
                 opt_level=opt_level, lto=lto, layers=not no_layers, runs=runs,
                 input_shapes=list(input_shapes) or None, backend=backend, optimize=optimize,
                 compress=co.compress_config(low_rank, prune, binarize, binarize_mode, calibration),
                 options=co.flags(backend, kernels, tvm_schedule, tvm_codegen, trees_layout, tree_features,
                                  tree_calibration, quantized_input, sparse))
    if as_json:
        click.echo(json.dumps(r.to_json(), indent=2))
    else:
        print_bench(r)
    if not r.repeatable:
        click.echo("edgec: error: instruction counts differ between runs", err=True)
        sys.exit(1)


def print_bench(r) -> None:
    from rich.table import Table
    con = console()
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
