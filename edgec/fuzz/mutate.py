"""Byte-flip mutation of real models: edgec must refuse a broken model cleanly or
compile it to C that builds warning-free; never an internal error, a crash or a hang.

    python -m edgec.fuzz.mutate MODEL [MODEL ...] --count 10000 --seed 1 [--json FILE]

Mutant ``i`` of a model flips, overwrites or poisons (0, 2^31-1, 2^32-1, 2^31, 1000)
1-4 bytes chosen by a generator seeded with ``(seed, i)``, so any mutant can be made
again (``--start i --count 1 --keep DIR``).  Mutants run in batches in child
processes (address space capped, a time limit per mutant): a child that dies or hangs
pins the mutant it was on, and the rest of its batch runs again.  Outcomes:

* ``refused``: an :class:`edgec.ir.errors.EdgecError` (what the CLI reports with exit 2);
* ``ok``: compiled, and the bundle's C built with ``-std=c99 -Wall -Wextra -Werror``;
* failures: ``internal`` (any other exception: exit 3 in the CLI), ``warning`` (the C
  does not build), ``crash``, ``hang``, ``slow`` (over ``--slow`` seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

POISON = (0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 1000)
FAILURES = ("internal", "warning", "crash", "hang", "slow")


def mutant(base: bytes, seed: int, index: int, skip: int = 0) -> bytes:
    """Mutant ``index`` of ``base``: 1-4 byte-level changes after the first ``skip`` bytes."""
    rng = np.random.default_rng([seed, index])
    b = bytearray(base)
    if len(b) <= skip:   # nothing to change (an empty file): 1-8 random bytes appended
        return bytes(b) + rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    for _ in range(int(rng.integers(1, 5))):
        pos = int(rng.integers(skip, len(b)))
        how = int(rng.integers(0, 3))
        if how == 0:
            b[pos] = int(rng.integers(0, 256))
        elif how == 1:
            b[pos] ^= 1 << int(rng.integers(0, 8))
        else:
            b[pos:pos + 4] = int(rng.choice(POISON)).to_bytes(4, "little")
    return bytes(b)


@dataclass
class Report:
    count: int = 0
    by_status: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    slowest: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        return (f"{self.count} mutants: {parts}; slowest {self.slowest:.2f} s; {self.seconds:.0f} s in all; "
                f"{len(self.failures)} failing")


# --- the child: compile a batch of mutants, one JSON line each ------------------------------

def _child(model: str, seed: int, indices: list[int], work: str, slow: float) -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    from edgec.pipeline import Options, compile_full
    from edgec.ir.errors import EdgecError
    from edgec.target.toolchain import STRICT
    base = Path(model).read_bytes()
    skip = 8 if model.endswith(".tflite") else 0
    suffix = Path(model).suffix
    w = Path(work)
    for i in indices:
        print(json.dumps({"start": i}), flush=True)
        p = w / f"m{i}{suffix}"
        p.write_bytes(mutant(base, seed, i, skip))
        t0 = time.monotonic()
        rec = {"i": i}
        try:
            bundle, _ = compile_full(p, Options(target="host", name="m"))
        except EdgecError as e:
            rec.update(status="refused", detail=str(e)[:200])
        except RecursionError:
            rec.update(status="refused", detail="too deeply nested")   # the CLI's exit 2
        except MemoryError:
            rec.update(status="refused", detail="out of memory")       # the CLI's exit 2
        except Exception as e:  # noqa: BLE001 - what the CLI reports as an internal error
            rec.update(status="internal", detail=f"{type(e).__name__}: {str(e)[:200]}")
        else:
            for f in ("m.c", "m.h"):
                (w / f).write_text(bundle.files[f])
            r = subprocess.run(["gcc", *STRICT, "-O0", "-c", "m.c", "-o", os.devnull], cwd=w,
                               capture_output=True, text=True)
            rec.update(status="ok" if r.returncode == 0 else "warning", detail=r.stderr[:300])
        rec["seconds"] = round(time.monotonic() - t0, 3)
        if rec["status"] in ("ok", "refused") and rec["seconds"] > slow:
            rec["status"] = "slow"
        p.unlink()
        print(json.dumps(rec), flush=True)


# --- the parent ------------------------------------------------------------------------------

def _run_batch(model: str, seed: int, indices: list[int], work: Path, timeout: float, slow: float):
    """Run a batch in a child; yields result records, with 'crash' / 'hang' records for
    the mutant a child died or stalled on (the rest of the batch is rerun)."""
    todo = list(indices)
    while todo:
        cmd = [sys.executable, "-c",
               f"from edgec.fuzz.mutate import _child; _child({model!r}, {seed}, {todo!r}, {str(work)!r}, {slow})"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        current, done = None, set()
        deadline = time.monotonic() + timeout
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        hung = False
        while True:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                hung = True
                p.kill()
                break
            line = p.stdout.readline()
            if not line:
                break
            rec = json.loads(line)
            if "start" in rec:
                current, deadline = rec["start"], time.monotonic() + timeout
                continue
            done.add(rec["i"])
            current = None
            yield rec
        p.wait()
        sel.close()
        todo = [i for i in todo if i not in done]
        if current is not None:
            yield {"i": current, "status": "hang" if hung else "crash",
                   "detail": f"child {'killed after' if hung else 'died (exit ' + str(p.returncode) + ')'}"
                             f"{f' {timeout:.0f} s' if hung else ')'}", "seconds": timeout if hung else 0.0}
            todo.remove(current)
        elif todo:   # died before starting a mutant: do not loop forever
            for i in todo:
                yield {"i": i, "status": "crash", "detail": f"child exit {p.returncode}", "seconds": 0.0}
            return


def run(models, count: int, seed: int = 1, start: int = 0, jobs: int = 2, batch: int = 100,
        timeout: float = 60.0, slow: float = 10.0, progress=None) -> dict[str, Report]:
    from concurrent.futures import ThreadPoolExecutor
    reports = {}
    for model in models:
        model = str(Path(model).resolve())
        rep = Report()
        t0 = time.monotonic()
        batches = [list(range(a, min(a + batch, start + count))) for a in range(start, start + count, batch)]
        with tempfile.TemporaryDirectory(prefix="edgec-mutate-") as tmp:
            def one(k_idx):
                k, idx = k_idx
                work = Path(tmp) / f"b{k}"
                work.mkdir()
                return list(_run_batch(model, seed, idx, work, timeout, slow))
            with ThreadPoolExecutor(jobs) as ex:
                for recs in ex.map(one, enumerate(batches)):
                    for r in recs:
                        rep.count += 1
                        rep.by_status[r["status"]] += 1
                        rep.slowest = max(rep.slowest, r.get("seconds", 0.0))
                        if r["status"] in FAILURES:
                            rep.failures.append({"model": Path(model).name, **r})
                    if progress:
                        progress(Path(model).name, rep)
        rep.seconds = time.monotonic() - t0
        reports[Path(model).name] = rep
    return reports


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgec.fuzz.mutate", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--count", type=int, default=1000, help="mutants per model")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a mutant counts as a hang")
    ap.add_argument("--slow", type=float, default=10.0, help="seconds beyond which a mutant counts as slow")
    ap.add_argument("--keep", metavar="DIR", help="write the mutants --start .. --start+count-1 here and stop")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    if a.keep:
        d = Path(a.keep)
        d.mkdir(parents=True, exist_ok=True)
        for m in a.models:
            base = Path(m).read_bytes()
            for i in range(a.start, a.start + a.count):
                (d / f"{Path(m).stem}-s{a.seed}-i{i}{Path(m).suffix}").write_bytes(
                    mutant(base, a.seed, i, 8 if m.endswith(".tflite") else 0))
        return 0
    last = [0.0]

    def progress(name, rep):
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"{name}: {rep.summary()}", flush=True)
    reps = run(a.models, a.count, a.seed, a.start, a.jobs, timeout=a.timeout, slow=a.slow, progress=progress)
    for name, rep in reps.items():
        print(f"{name}: {rep.summary()}")
        for f in rep.failures[:20]:
            print(f"  FAIL i={f['i']} [{f['status']}] {f['detail'][:160]}")
    if a.json:
        Path(a.json).write_text(json.dumps({name: {"count": r.count, "by_status": dict(r.by_status),
                                                   "slowest": r.slowest, "seconds": round(r.seconds, 1),
                                                   "failures": r.failures} for name, r in reps.items()},
                                           indent=1) + "\n")
    return 1 if any(r.failures for r in reps.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
