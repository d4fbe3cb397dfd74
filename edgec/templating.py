"""The Jinja environment over the project's templates/ directory."""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
TARGETS = ROOT / "targets"


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
    from .ops._util import c_act_float
    e.globals["act_expr"] = c_act_float
    return e


def render(template_name: str, **kw) -> str:
    return env().get_template(template_name).render(**kw)
