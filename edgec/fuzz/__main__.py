"""``python -m edgec.fuzz``: the differential fuzzer's command line."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .campaign import fuzz
from .runner import KINDS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgec.fuzz",
                                 description="Random graphs compiled by edgec vs onnxruntime (float ONNX) "
                                             "and the TFLite Micro interpreter (int8 TFLite, bit-exact).")
    ap.add_argument("--graphs", type=int, default=100, help="graphs per kind (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first graph index (to reproduce one case)")
    ap.add_argument("--kind", choices=KINDS + ("both",), default="both")
    ap.add_argument("--batch", type=int, default=24, help="graphs per compiled driver program")
    ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--sanitize", action="store_true", help="compile with -fsanitize=address,undefined")
    ap.add_argument("--cross", action="store_true", help="also compile every bundle with arm-none-eabi-gcc")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--save", default=None, metavar="DIR",
                    help="save shrunk failures here as regression tests (e.g. tests/fuzz_regressions)")
    ap.add_argument("--max-nodes", type=int, default=None)
    ap.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    kinds = KINDS if a.kind == "both" else (a.kind,)
    t0 = time.time()
    last = [0.0]

    def progress(rep):
        if a.quiet or time.time() - last[0] < 10:
            return
        last[0] = time.time()
        print(f"[{time.time() - t0:6.0f} s] {rep.graphs} graphs, {len(rep.failures)} failing, "
              f"{len(rep.invalid)} invalid", flush=True)

    from ..ir import progress as progress_bar
    with progress_bar.shown(sys.stderr.isatty() and not a.quiet):
        rep = fuzz(a.graphs, a.seed, kinds, a.batch, a.start, a.time_limit, a.sanitize, a.cross,
                   not a.no_shrink, a.save, a.max_nodes, None if sys.stderr.isatty() else progress)
    for o in rep.failures:
        print(f"FAIL {o.case.name} [{o.status}] {o.detail}\n     ops: {', '.join(o.case.ops)}")
    for o in rep.invalid[:20]:
        print(f"invalid {o.case.name} [{o.status}] {o.detail}")
    for p in rep.saved:
        print(f"saved {p}")
    print(rep.summary())
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"seed": rep.seed, "graphs": rep.graphs, "by_kind": rep.by_kind,
                       "by_status": rep.by_status, "seconds": round(rep.seconds, 1),
                       "failures": [{"case": o.case.name, "status": o.status, "detail": o.detail}
                                    for o in rep.failures],
                       "ops": dict(sorted(rep.ops.items()))}, f, indent=2)
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
