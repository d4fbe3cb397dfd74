"""``edgec targets``: the targets edgec knows (:mod:`edgec.target.targets`)."""
from __future__ import annotations

import json

import click

from .program import console, handle_errors, main


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def targets(as_json):
    """List the targets edgec knows, with their compilers, features, memory and emulator."""
    from ..target import targets as tg
    all_t = tg.all_targets()
    if as_json:
        click.echo(json.dumps([t.summary() for t in all_t], indent=2))
        return
    from rich.table import Table
    tab = Table()
    for c in ("target", "compiler / flags", "features", "flash", "RAM", "QEMU machine"):
        tab.add_column(c)
    for t in all_t:
        tab.add_row(t.name, f"{t.cc} {' '.join(t.cflags)}", ", ".join(t.features) or "-",
                    _kb(t.flash), _kb(t.ram), t.qemu.machine if t.qemu else "-")
    console().print(tab)


def _kb(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):g} G"
    if n >= 1 << 20:
        return f"{n / (1 << 20):g} M"
    return f"{n / 1024:g} K"
