"""The ``edgec`` command line: thin Click commands over the library.

One module per command (it parses its options, calls :mod:`edgec.commands` or
:mod:`edgec.pipeline`, and prints), the options several commands share in
:mod:`.options`, and the program itself (the group, ``--debug``, error handling) in
:mod:`.program`.  Bad input exits 2 with one line on stderr; a failed check exits 1;
tracebacks only with ``--debug``.
"""
from .program import main
# each module registers its command with ``main``
from . import bench, build, check, conformance, explore, inspect, quantize, size, targets, verify  # noqa: E402,F401

__all__ = ["main"]
