"""The ``edgec`` program: the click group, the global ``--debug``, and the error
handling every command shares (bad input exits 2 with one line on stderr, an
interrupt 130, an edgec bug 3 with a hint; tracebacks only with ``--debug``).

The command modules import what they need from the layers below inside their
functions: the supervisor process (:mod:`edgec.ir.interrupt`) forks when little
more than click is loaded, and ``edgec --help`` stays quick.
"""
from __future__ import annotations

import functools
import gc
import sys
import traceback

import click

from .. import __version__
from ..ir import interrupt, limits, progress
from ..ir.errors import EXIT_INTERNAL, EdgecError, ToolchainError

_DEBUG = {"on": False}


def _printable(text: str) -> str:
    """Text for the terminal: control characters (line breaks, escape sequences) and
    Unicode format characters (bidi overrides) that a model's names may carry are shown
    as escapes instead of acting on the terminal."""
    import unicodedata
    return "".join(ch if ch.isprintable() and unicodedata.category(ch) != "Cf"
                   else ascii(ch)[1:-1] for ch in text)


def _fail(msg: str, code: int) -> None:
    click.echo(f"edgec: error: {_printable(msg)}", err=True)
    sys.exit(code)


def handle_errors(fn):
    """Turn library errors into one clear line and an exit code."""
    @click.option("--debug", is_flag=True, hidden=False, help="Show tracebacks of errors.")
    @click.option("--limit", "limit_items", multiple=True, metavar="NAME=N",
                  help="Raise (or lower) a budget on what a model or data file may cost, e.g. "
                       "nodes=200000 or constant_bytes=128M (names: " + ", ".join(limits.names()) +
                       "; docs/TRUST.md).")
    @functools.wraps(fn)
    def wrapper(*args, debug=False, limit_items=(), **kwargs):
        if debug:
            _DEBUG["on"] = True
        try:
            show = sys.stderr.isatty() and not kwargs.get("as_json")
            with limits.using(limits.parse(limit_items)), progress.shown(show):
                return fn(*args, **kwargs)
        except EdgecError as e:
            if _DEBUG["on"]:
                traceback.print_exc()
            if isinstance(e, ToolchainError):   # a tool's own output follows, line by line
                lines = [_printable(x) for x in str(e).splitlines()] or [type(e).__name__]
            else:   # one line, whatever names from the model it quotes
                lines = [_printable(str(e)) or type(e).__name__]
            click.echo(f"edgec: error: {lines[0]}", err=True)
            for extra in lines[1:]:
                click.echo(f"  {extra}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("edgec: interrupted", err=True)
            sys.exit(130)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except SystemExit:
            raise
        except RecursionError:
            if _DEBUG["on"]:
                traceback.print_exc()
            _fail("the model is too deeply nested to process", 2)
        except MemoryError:
            _fail("out of memory while processing the model", 2)
        except Exception as e:  # noqa: BLE001 - anything else is an edgec bug
            if _DEBUG["on"]:
                traceback.print_exc()
            msg = str(e).splitlines()[0][:300] if str(e) else ""
            _fail(f"internal error ({type(e).__name__}: {msg}); rerun with --debug "
                  "and report it", EXIT_INTERNAL)
    return wrapper


def console():
    from rich.console import Console
    return Console(highlight=False, soft_wrap=False,
                   width=None if sys.stdout.isatty() else 200)


class _Program(click.Group):
    """The ``edgec`` program: run as a program (click's standalone mode, what the
    console script and ``python -m edgec`` do), it installs edgec's signal handling
    first (:mod:`edgec.ir.interrupt`: SIGINT / SIGTERM end it within a second, exit 130 /
    143, nothing half-written left)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if standalone_mode:
            interrupt.install()
        return super().main(*args, standalone_mode=standalone_mode, **kwargs)


@click.group(cls=_Program, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgec")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def main(debug):
    """edgec: compile ML models (ONNX, TFLite, Keras) into small, static C for microcontrollers."""
    _DEBUG["on"] = debug
    # A build keeps a few objects per layer alive until it ends (nodes, tensors, kernel
    # contexts, report entries).  With CPython's default thresholds (a young collection
    # every 700 allocations) a full collection runs each time the heap has grown by a
    # quarter, walking all of them again: a quarter of a 50,000-layer build.  Rarer young
    # collections (as mypy does) leave that to the occasional full collection.
    gc.set_threshold(50_000, 20, 20)
