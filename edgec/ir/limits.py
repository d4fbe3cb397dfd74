"""Budgets on what a model or data file may make edgec do.

A model file is untrusted input: a few hundred bytes can ask for a billion inlined
nodes, gigabytes of folded constants or a decompressed zip bomb.  Every such
quantity has a budget here, checked *before* the work or allocation it guards; a
model over a budget is refused with one line that names the limit and how to raise
it (``--limit NAME=VALUE``).  The defaults are far above what a model meant for a
microcontroller needs.

The active budgets are a context variable: the CLI sets them from ``--limit`` for
the duration of a command (:func:`using`), library callers may do the same, and
everything below reads :func:`current`.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from dataclasses import dataclass

from .errors import EdgecError

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True)
class Limits:
    # graph nodes, counted as they are created (local functions inlined, loops unrolled,
    # nodes folded into constants included)
    nodes: int = 100_000
    # elements of one tensor
    tensor_elements: int = 1 << 28
    # constant data of the whole model: initializers, external data, folded results
    constant_bytes: int = 64 << 20
    # bytes that constant folding may add beyond the constants it reads (a node whose
    # result would exceed this stays an operator, computed at run time)
    fold_bytes: int = 16 << 20
    # decoded size of one sample file (.npz / .npy / .csv / images)
    data_bytes: int = 256 << 20


HELP = {
    "nodes": "graph nodes after inlining functions and unrolling loops",
    "tensor_elements": "elements of one tensor",
    "constant_bytes": "bytes of constant data (initializers, external data, folded constants)",
    "fold_bytes": "bytes constant folding may add beyond the constants it reads",
    "data_bytes": "decoded bytes of one sample file",
}

_current: contextvars.ContextVar[Limits] = contextvars.ContextVar("edgec_limits", default=Limits())


def current() -> Limits:
    return _current.get()


@contextlib.contextmanager
def using(limits: Limits):
    token = _current.set(limits)
    try:
        yield limits
    finally:
        _current.reset(token)


def names() -> list[str]:
    return [f.name for f in dataclasses.fields(Limits)]


def parse(items, base: Limits | None = None) -> Limits:
    """``["nodes=200000", "constant_bytes=128M"]`` -> Limits (sizes take K, M, G)."""
    values = {}
    for item in items or ():
        key, sep, val = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in HELP:
            raise EdgecError(f"bad --limit {item!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(names())}")
        v = val.strip().upper()
        mult = 1
        if v.endswith("B"):
            v = v[:-1]
        if v[-1:] in _UNITS:
            mult, v = _UNITS[v[-1]], v[:-1]
        try:
            n = int(v) * mult
        except ValueError:
            raise EdgecError(f"bad --limit {item!r}: {val!r} is not a whole number") from None
        if n <= 0:
            raise EdgecError(f"bad --limit {item!r}: must be positive")
        values[key] = n
    return dataclasses.replace(base or Limits(), **values)


def exceeded(name: str, what: str) -> EdgecError:
    """The one-line error of a budget: ``what`` says what went over it."""
    value = getattr(current(), name)
    return EdgecError(f"{what}: over the limit {name}={value:,} ({HELP[name]}); "
                      f"raise it with --limit {name}=N if the model is trusted")
