"""``edgec verify``: run the compiled model and compare it with the reference runtime
(:mod:`edgec.commands.verify`)."""
from __future__ import annotations

import json
import sys

import click

from ..ir.errors import EdgecError
from .options import (compress_options, fit_options, input_shape_opt, quant_options, raw_inputs_opt,
                      tree_options, tvm_schedule_opt)
from .program import console, handle_errors, main


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
    from ..commands import options as co
    from ..commands.verify import verify as do_verify
    ccfg = co.compress_config(low_rank, prune, binarize, binarize_mode, calibration)
    qcfg = co.quant_config(quant_mode, None if (quant_mode is None and binarize) else calibration,
                           calibration_method, percentile,
                           calibration_samples, keep_float, float_io, per_tensor, eval_data)
    if eval_data:
        raise EdgecError("--eval belongs to build, quantize and explore, not verify")
    res = do_verify(model, target=co.part_target(target, part_flash, part_ram), n=samples, seed=seed,
                    inputs_file=inputs_file, fit_check=not no_fit_check,
                    layers=layers, rtol=rtol, input_shapes=list(input_shapes) or None,
                    sanitize=sanitize, quantize=qcfg, backend=backend, compress=ccfg, optimize=optimize,
                    raw_inputs=raw_inputs,
                    options=co.flags(backend, kernels, tvm_schedule, tvm_codegen, trees_layout, tree_features,
                                     tree_calibration, quantized_input, sparse))
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=2))
    else:
        con = console()
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
