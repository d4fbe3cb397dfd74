"""``edgec check``: hold a linked firmware against its flash / RAM budgets and a
baseline (:mod:`edgec.report.measure`); exit 1 when it is over."""
from __future__ import annotations

import sys

import click

from .options import project_config
from .program import handle_errors, main
from .size import emit, size_inputs


@main.command()
@size_inputs
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
    from ..report import measure
    cfg = project_config(config_path)
    rep, chk = measure.check(elf_or_bundle, bundle, report_path, name, cfg, baseline,
                         flash_budget, ram_budget, max_growth, target)
    emit(rep, chk, as_json, as_markdown, as_html, outputs, symbols)
    if not chk.ok:
        for f in chk.failures:
            click.echo(f"edgec: check failed: {f}", err=True)
        sys.exit(1)
