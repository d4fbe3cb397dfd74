"""``edgec explore``: flash, RAM, instructions and accuracy of a model under each compression
technique (:mod:`edgec.commands.explore`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .options import input_shape_opt
from .program import console, handle_errors, main


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
    con = console()
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
