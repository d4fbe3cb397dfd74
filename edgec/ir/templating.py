"""The Jinja environment over the project's templates/ directory."""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2

_PKG = Path(__file__).resolve().parent.parent   # the edgec package


def _data_dir(name: str) -> Path:
    """A run-time folder: inside the package in an installed wheel (pyproject maps the
    top-level folder to edgec/_builtin/), at the top of the source tree in a checkout."""
    inside = _PKG / "_builtin" / name
    return inside if inside.is_dir() else _PKG.parent / name


TEMPLATES = _data_dir("templates")
TARGETS = _data_dir("targets")
# The C runtime: plain C99 files (no Jinja) that model.c.j2 copies into a bundle as
# they are; tests/runtime_c/ compiles and tests them on their own.
RUNTIME = TEMPLATES / "runtime"


@functools.lru_cache(maxsize=None)
def runtime_source(name: str) -> str:
    """The text of the runtime file ``name`` (e.g. ``"qmath.c"``), read as plain text,
    without its final newline: the template line that inserts it ends it."""
    return (RUNTIME / name).read_text().removesuffix("\n")


@functools.lru_cache(maxsize=None)
def env() -> jinja2.Environment:
    from . import cgen
    e = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    e.filters["cfloat"] = cgen.c_float
    e.filters["comment"] = cgen.comment_text
    e.globals["act_expr"] = cgen.c_act_float
    e.globals["runtime_source"] = runtime_source
    return e


def render(template_name: str, **kw) -> str:
    return env().get_template(template_name).render(**kw)
