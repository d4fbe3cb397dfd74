"""Errors edgec reports to its users.

Every problem with the user's input (model file, options, target, budget) is an
:class:`EdgecError`: the CLI prints its message on one line and exits with
:data:`EXIT_BAD_INPUT`.  Anything else escaping the library is a bug in edgec and
is reported as an internal error (traceback only with ``--debug``).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1        # a check ran and failed (verify mismatch, budget exceeded)
EXIT_BAD_INPUT = 2   # the input could not be processed (bad model, option, target)
EXIT_INTERNAL = 3    # a bug in edgec


class EdgecError(Exception):
    """A problem with the user's input, reported as one line."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class UnsupportedError(EdgecError):
    """The model uses operators (or operator variants) edgec cannot compile."""

    def __init__(self, items: list[str], where: str | None = None, needs_const=()):
        self.items = sorted({i if isinstance(i, str) else repr(i) for i in items})
        # Graph inputs (source names) that a value edgec needs as a constant (a
        # shape, axes or weights) is computed from: binding them to values
        # (frontends.onnx.from_model(bind=...)) makes the model compile.
        self.needs_const = sorted(set(needs_const))
        super().__init__("unsupported operator(s): " + ", ".join(self.items), where)


class Reason(str):
    """An op's ``check`` reason that names the tensor it needs to be constant."""

    def __new__(cls, text: str, tensor: str = ""):
        r = super().__new__(cls, text)
        r.tensor = tensor
        return r


class CheckFailed(EdgecError):
    """A verification or budget check ran to completion and failed."""

    exit_code = EXIT_FAIL


class ToolchainError(EdgecError):
    """A compiler, linker or emulator is missing or failed."""
