"""``edgec build``: compile a model into a C bundle (:mod:`edgec.commands.build`) and
print what it holds."""
from __future__ import annotations

import click

from ..ir.errors import EdgecError
from .options import (compress_options, config_opt, fit_options, input_shape_opt, project_config,
                      quant_options, raw_inputs_opt, tree_options, tvm_schedule_opt)
from .program import console, handle_errors, main
from .quantize import print_quant


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
    from ..commands import build as cmd
    from ..commands import options as co
    from ..commands.quantize import accuracy_table
    cfg = project_config(config_path)
    if model is None:
        if cfg is None or cfg.model is None:
            raise click.UsageError("give MODEL, or name it in edgec.toml (model = \"...\")")
        model = str(cfg.model)
    firmware = cmd.setting(cfg, "firmware", firmware, False)
    if (test_inputs or test_samples is not None) and not firmware:
        raise click.UsageError("--test-inputs / --test-samples need --firmware")
    if raw_inputs and not test_inputs:
        raise EdgecError("--raw-inputs describes a --test-inputs file: give one")
    ccfg = co.compress_config(low_rank, prune, binarize, binarize_mode, calibration)
    qcfg = co.quant_config(quant_mode, None if (quant_mode is None and binarize) else calibration,
                           calibration_method, percentile,
                           calibration_samples, keep_float, float_io, per_tensor, eval_data)
    bundle, path = cmd.build(
        model, cfg, out_dir=out_dir, force=force, target=target, name=name, backend=backend,
        opt_level=opt_level, lto=lto, optimize=optimize, kernels=kernels, firmware=firmware,
        test_inputs=test_inputs, raw_inputs=raw_inputs, test_samples=test_samples,
        part_flash=part_flash, part_ram=part_ram, fit_check=not no_fit_check, input_shapes=input_shapes,
        quantize=qcfg, eval_data=eval_data, compress=ccfg, tvm_schedule=tvm_schedule,
        tvm_codegen=tvm_codegen, trees_layout=trees_layout, tree_features=tree_features,
        tree_calibration=tree_calibration, quantized_input=quantized_input, sparse=sparse)
    print_build(bundle.report, path, cmd.notes(bundle.report))
    print_compression(bundle.report)
    print_quant(bundle.report.get("quantization"),
                None if bundle.report.get("compression") else bundle.report.get("accuracy"))
    if bundle.report.get("compression") and bundle.report.get("accuracy"):
        click.echo(accuracy_table(bundle.report["accuracy"]))


# layers listed by `edgec build` before the table is cut (report.json lists them all)
BUILD_TABLE_ROWS = 60


def print_build(r: dict, path, notes=()) -> None:
    from rich.table import Table
    con = console()
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
    for note in notes:
        con.print(f"[yellow]note: {note}[/yellow]")


def print_compression(r: dict) -> None:
    c = r.get("compression")
    sp = r.get("sparse")
    if not c and not (sp and sp["layers"]):
        return
    con = console()
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
