"""``edgec inspect``: what a model holds and what edgec cannot compile of it
(:mod:`edgec.commands.inspect`)."""
from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from .options import input_shape_opt
from .program import console, handle_errors, main


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
        con = console()
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
            # escaped: a variant's "[int8]" is not a style tag
            con.print("  [red]unsupported:[/red] " + escape(", ".join(info["unsupported"])))
        else:
            con.print("  [green]edgec can compile this model[/green]")
    if info.get("unsupported"):
        sys.exit(2)
