"""``edgec quantize``: quantize a float model with edgec and write it as ONNX (QDQ) or
TFLite (:mod:`edgec.commands.quantize`)."""
from __future__ import annotations

import click

from .options import input_shape_opt, quant_options
from .program import console, handle_errors, main


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
    from ..commands import quantize as cmd
    from ..commands.options import quant_config
    qcfg = quant_config(quant_mode, calibration, calibration_method, percentile,
                        calibration_samples, keep_float, float_io, per_tensor, eval_data)
    q = cmd.quantize(model, out_path, qcfg, eval_data, list(input_shapes) or None)
    click.echo(f"wrote {q.output} ({q.output.stat().st_size:,} bytes)")
    print_quant(q.info, q.accuracy)
    if report_path:
        cmd.write_report(report_path, model, q, qcfg, eval_data)


def print_quant(info, acc) -> None:
    if not info:
        return
    con = console()
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
        from ..commands.quantize import accuracy_table
        click.echo(accuracy_table(acc))
