"""``edgec conformance``: the ONNX backend node tests compiled by edgec
(:mod:`edgec.commands.conformance`)."""
from __future__ import annotations

import json
import sys

import click

from ..ir.errors import EdgecError
from .program import handle_errors, main


@main.command()
@click.option("-k", "--filter", "patterns", multiple=True, metavar="PATTERN",
              help="Only tests whose name matches (regular expression or glob; repeatable).")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out matching tests (repeatable).")
@click.option("-j", "--jobs", default=None, type=click.IntRange(1, 64),
              help="Parallel workers (default: up to 2).")
@click.option("--opt-level", default="1", show_default=True, help="gcc -O level of the compiled cases.")
@click.option("--sanitize", is_flag=True, help="Build the cases with AddressSanitizer and UBSan.")
@click.option("--also-target", "cross", multiple=True, metavar="TARGET",
              help="Also compile every case with this target's compiler and flags, warnings as "
                   "errors (e.g. cortex-m4; repeatable).")
@click.option("--bind/--no-bind", default=True, show_default=True,
              help="Bind graph inputs that edgec needs as compile-time constants (shapes, axes, "
                   "weights) to the test's values; --no-bind skips those tests instead.")
@click.option("-v", "--verbose", is_flag=True, help="List every test with its outcome.")
@click.option("--failures/--no-failures", default=True, show_default=True, help="List failing tests.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every test, outcome and reason).")
@click.option("--write-skips", is_flag=True,
              help="Rewrite tests/conformance_skips.txt (expected skips with reasons) from this run.")
@handle_errors
def conformance(patterns, exclude, jobs, opt_level, sanitize, cross, bind, verbose, failures,
                as_json, write_skips):
    """Run the ONNX backend node tests (onnx.backend.test) compiled by edgec for the host.

    Every test is imported, compiled with -Wall -Wextra -Werror, run on its shipped
    inputs and compared with its shipped outputs.  Exit 0 when nothing fails, 1 otherwise.
    """
    from ..commands import conformance as conf
    rep = conf.run(patterns, exclude, jobs=jobs, opt_level=opt_level, sanitize=sanitize,
                   bind=bind, cross=cross)
    if write_skips:
        if patterns or exclude or not bind:
            raise EdgecError("--write-skips needs a full run (no --filter/--exclude/--no-bind)")
        conf.write_expected_skips(rep)
    if as_json:
        click.echo(json.dumps(rep.to_json(), indent=2))
    else:
        expected = conf.load_expected_skips()
        for r in rep.results:
            if verbose or (failures and r.status == "fail"):
                click.echo(f"{r.status.upper():<5} {r.name}" + (f": {r.reason}" if r.reason else "")
                           + (f" [bound: {', '.join(r.bound)}]" if r.bound else ""))
        new_skips = [r.name for r in rep.results if r.status == "skip" and r.name not in expected]
        if new_skips:
            click.echo(f"{len(new_skips)} skipped tests are not in {conf.SKIPS_FILE.name}: "
                       + ", ".join(new_skips[:20]) + (" ..." if len(new_skips) > 20 else ""))
        click.echo(rep.summary())
    sys.exit(1 if rep.failed else 0)
