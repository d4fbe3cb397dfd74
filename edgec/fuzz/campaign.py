"""A fuzzing campaign: random graphs in batches, each failure shrunk (:mod:`.shrink`) and
saved as a regression; :func:`fuzz` is the library entry point."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..ir import progress as progress_bar
from .runner import KINDS, Case, Outcome, RefRunner, _short, check_cases, make_case, save_regression
from .shrink import shrink_case


@dataclass
class Report:
    seed: int
    graphs: int = 0
    by_kind: dict = field(default_factory=dict)
    by_status: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)     # Outcomes
    invalid: list = field(default_factory=list)      # ref-error / gen-error outcomes
    saved: list = field(default_factory=list)        # regression files written
    ops: dict = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, o: Outcome) -> None:
        self.graphs += 1
        self.by_kind[o.case.kind] = self.by_kind.get(o.case.kind, 0) + 1
        self.by_status[o.status] = self.by_status.get(o.status, 0) + 1
        for op in o.case.ops:
            key = f"{o.case.kind}:{op}"
            self.ops[key] = self.ops.get(key, 0) + 1
        if o.failed:
            self.failures.append(o)
        elif o.status != "ok":
            self.invalid.append(o)

    def summary(self) -> str:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(self.by_kind.items()))
        st = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        return (f"{self.graphs} graphs ({kinds}) with seed {self.seed} in {self.seconds:.0f} s: "
                f"{len(self.failures)} failing, {len(self.invalid)} invalid ({st})")


def fuzz(graphs: int = 100, seed: int = 0, kinds=KINDS, batch: int = 24, start: int = 0,
         time_limit: float | None = None, sanitize: bool = False, cross: bool = False,
         shrink: bool = True, save_dir: str | Path | None = None, max_nodes: int | None = None,
         progress=None, work_dir: str | Path | None = None) -> Report:
    """Run ``graphs`` random graphs per kind (indices ``start..start+graphs-1``)."""
    t0 = time.time()
    rep = Report(seed)
    ref = RefRunner()
    tmp = Path(tempfile.mkdtemp(prefix="edgec-fuzz-", dir=work_dir))
    try:
        todo = [(kind, i) for i in range(start, start + graphs) for kind in kinds]
        with progress_bar.task("fuzz", len(todo)) as bar:
            for b in range(0, len(todo), batch):
                if time_limit is not None and time.time() - t0 > time_limit:
                    break
                cases, outs = [], []
                for kind, i in todo[b:b + batch]:
                    try:
                        cases.append(make_case(kind, seed, i, max_nodes))
                    except Exception as e:  # noqa: BLE001 - a generator bug, not edgec's
                        outs.append(Outcome(Case(kind, seed, i), "gen-error", _short(f"{type(e).__name__}: {e}")))
                outs += check_cases(cases, ref, tmp / f"b{b}", sanitize, cross)
                shutil.rmtree(tmp / f"b{b}", ignore_errors=True)
                for o in outs:
                    rep.add(o)
                    if o.failed:
                        if shrink:
                            o.case = shrink_case(o, ref, tmp / "shrink")
                        if save_dir is not None:
                            rep.saved.append(str(save_regression(o, Path(save_dir))))
                bar.advance(len(todo[b:b + batch]), f"{len(rep.failures)} failing")
                if progress:
                    progress(rep)
    finally:
        ref.close()
        shutil.rmtree(tmp, ignore_errors=True)
    rep.seconds = time.time() - t0
    return rep
