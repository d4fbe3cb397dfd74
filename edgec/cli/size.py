"""``edgec size``: flash and RAM of a linked firmware per section, symbol and model layer
(:mod:`edgec.report.measure`, :mod:`edgec.report.size`), and the options and output that
``edgec check`` shares."""
from __future__ import annotations

from pathlib import Path

import click

from ..ir.errors import EdgecError
from .options import config_opt, project_config
from .program import console, handle_errors, main


def size_inputs(fn):
    """The firmware to measure and how to report it: the options of size and check."""
    for dec in reversed([
        click.argument("elf_or_bundle", required=False, type=click.Path()),
        click.option("--bundle", multiple=True, type=click.Path(file_okay=False),
                     help="The bundle the ELF was linked from (its report.json names the layers). "
                          "Default: the ELF's directory, when it is a bundle. Repeat it for a firmware "
                          "with several models: each model's flash and RAM is attributed separately."),
        click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
                     help="The bundle's report.json, when it is not next to the ELF."),
        click.option("--name", multiple=True,
                     help="The bundle's name (symbol prefix) when there is no report.json (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (schema edgec-size/1, docs/SIZE_REPORT.md)."),
        click.option("--markdown", "as_markdown", is_flag=True, help="Print Markdown (CI job summary, PR comment)."),
        click.option("--html", "as_html", is_flag=True, help="Print one self-contained HTML page."),
        click.option("-o", "--output", "outputs", multiple=True, type=click.Path(dir_okay=False),
                     help="Also write the report to FILE, format by extension: .json, .md, .html "
                          "(repeatable)."),
        click.option("--symbols", default=15, show_default=True, type=click.IntRange(0, 100000),
                     help="Largest symbols listed in the table / Markdown / HTML."),
        click.option("--baseline", default=None, type=click.Path(dir_okay=False),
                     help="A previous size report (JSON) to compare with: growth per section and layer."),
        config_opt,
    ]):
        fn = dec(fn)
    return fn


_EXT = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def emit(rep, chk, as_json, as_markdown, as_html, outputs, symbols):
    """Print the report (table, or --json / --markdown / --html) and write the -o files."""
    from ..report import render as rf
    fmts = [f for f, on in (("json", as_json), ("markdown", as_markdown), ("html", as_html)) if on]
    if len(fmts) > 1:
        raise EdgecError("choose one of --json, --markdown, --html (use -o FILE for more)")
    for o in outputs:
        ext = Path(o).suffix.lower()
        if ext not in _EXT:
            raise EdgecError(f"-o {o}: unknown extension (.json, .md or .html)")
    for o in outputs:
        rf.write(o, rf.render(_EXT[Path(o).suffix.lower()], rep, chk, symbols))
    if fmts:
        click.echo(rf.render(fmts[0], rep, chk, symbols), nl=False)
    else:
        rf.print_table(console(), rep, chk, symbols)


@main.command()
@size_inputs
@handle_errors
def size(elf_or_bundle, bundle, report_path, name, as_json, as_markdown, as_html, outputs, symbols,
         baseline, config_path):
    """Flash and RAM of a linked firmware: per section, symbol and model layer.

    ELF_OR_BUNDLE is a firmware ELF (its bundle's report.json next to it or given
    with --bundle), or a bundle directory (its firmware.elf, else the bundle linked
    with edgec's harness to measure it). Everything is read from the ELF. A firmware
    with several models: one --bundle per model (each model's code, weights and arena
    apart)."""
    from ..report import measure
    cfg = project_config(config_path)
    rep, chk = measure.size(elf_or_bundle, bundle, report_path, name, cfg, baseline)
    emit(rep, chk, as_json, as_markdown, as_html, outputs, symbols)
