"""Progress of long work (calibration, evaluation, conformance, fuzzing, explore, QEMU
runs of many samples) as a rich progress bar on the terminal.

Library code reports progress unconditionally through :func:`task`; nothing is shown
unless the caller turned progress on (:func:`shown`): the CLI does so when stderr is a
terminal and the command is not printing JSON.  Tests and library users see nothing.
"""
from __future__ import annotations

import contextlib
import contextvars

_on: contextvars.ContextVar[bool] = contextvars.ContextVar("edgec_progress", default=False)
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("edgec_progress_depth", default=0)


@contextlib.contextmanager
def shown(on: bool = True):
    """Show progress bars for the work done inside the block (when ``on``)."""
    token = _on.set(bool(on))
    try:
        yield
    finally:
        _on.reset(token)


class _Silent:
    def advance(self, n: int = 1, note: str | None = None) -> None:
        pass


class _Bar:
    def __init__(self, progress, task_id):
        self.p, self.id = progress, task_id

    def advance(self, n: int = 1, note: str | None = None) -> None:
        if note is None:
            self.p.advance(self.id, n)
        else:
            self.p.update(self.id, advance=n, note=note)


@contextlib.contextmanager
def task(description: str, total: int | None):
    """A unit of long work with ``total`` steps; ``.advance(n, note)`` as they finish.
    Nested tasks inside a shown one stay silent (one bar at a time)."""
    if not _on.get() or _depth.get() > 0:
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    token = _depth.set(_depth.get() + 1)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                      console=Console(stderr=True), transient=True) as p:
            yield _Bar(p, p.add_task(description, total=total, note=""))
    finally:
        _depth.reset(token)


def track(items, description: str, total: int | None = None):
    """Iterate over ``items`` with a progress bar."""
    if total is None:
        try:
            total = len(items)
        except TypeError:
            total = None
    with task(description, total) as t:
        for x in items:
            yield x
            t.advance()
