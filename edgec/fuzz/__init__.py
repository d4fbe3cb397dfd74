"""Differential fuzzing of edgec (see :mod:`edgec.fuzz.runner`).

    python -m edgec.fuzz --graphs 1000 --seed 7          # 1000 float ONNX + 1000 int8 graphs
    python -m edgec.fuzz --kind int8 --seed 7 --start 42 --graphs 1   # reproduce one case

:func:`fuzz` is the library entry point (used by the tests' short CI run).
"""
from .campaign import Report, fuzz  # noqa: F401
from .runner import KINDS, Case, Outcome, make_case, save_regression  # noqa: F401
