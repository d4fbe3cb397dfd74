"""Native vs TVM backend on the float MLPerf Tiny models (cortex-m4, QEMU).

    make bench-tvm                      # or: .venv/bin/python benchmarks/tvm_vs_native.py
    python benchmarks/tvm_vs_native.py --no-readme

For each float model and each code generator, `edgec bench MODEL --target cortex-m4
--runs 2 [--backend tvm --tvm-schedule S]`; the per-run JSON goes to
benchmarks/results/cortex-m4-tvm/, the table into benchmarks/README.md between
the `<!-- bench-tvm:begin -->` / `<!-- bench-tvm:end -->` markers.  Needs the tvm
extra (apache-tvm) and models/mlperf_tiny (or $MLPERF_TINY).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import models_dir  # noqa: E402

MODELS = [  # (short name, float model file)
    ("KWS", "kws_ref_model_float32.tflite"),
    ("VWW", "vww_96_float.tflite"),
    ("IC", "pretrainedResnet.tflite"),
    ("AD", "ad01_fp32.tflite"),
]
CONFIGS = [  # (label, backend, options)
    ("native", "native", {}),
    ("tvm (schedule local, default)", "tvm", {"tvm_schedule": "local"}),
    ("tvm (schedule none: TVM's TIR as is)", "tvm", {"tvm_schedule": "none"}),
    ("tvm (schedule local, --tvm-codegen llvm)", "tvm", {"tvm_schedule": "local", "tvm_codegen": "llvm"}),
]
BEGIN, END = "<!-- bench-tvm:begin -->", "<!-- bench-tvm:end -->"
TARGET = "cortex-m4"


def table(results: dict) -> str:
    rows = ["| model | backend | instructions / inference | vs native | flash: code (model) | flash: weights | RAM: arena | RAM: other |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for short, fname in MODELS:
        res = results.get(fname, {})
        native = res.get("native")
        first = True
        for label, _, _ in CONFIGS:
            r = res.get(label)
            name = f"{short} (float, {native['macs'] / 1e6:.2f} M MACs)" if first and native else ""
            if isinstance(r, str):
                rows.append(f"| {name if first else ''} | {label} | {r} | | | | | |")
            elif r is not None:
                f, m = r["flash"], r["ram"]
                ratio = (f"{r['instructions_per_inference'] / native['instructions_per_inference']:.2f}x"
                         if native and not isinstance(native, str) else "")
                rows.append(f"| {name} | {label} | {r['instructions_per_inference']:,} | {ratio} | "
                            f"{f['code']:,} ({f['model_code']:,}) | {f['weights']:,} | "
                            f"{m['arena']:,} | {m['other']:,} |")
            first = False
    return "\n".join(rows)


def notes(results: dict) -> str:
    any_r = next(r for res in results.values() for r in res.values() if not isinstance(r, str))
    return f"""Measured with `make bench-tvm` (`benchmarks/tvm_vs_native.py`: `edgec bench MODEL --target {TARGET} --runs 2
[--backend tvm --tvm-schedule S [--tvm-codegen llvm]]`), apache-tvm 0.27.0.post1 (kernels generated with
target `c` and compiled by gcc, or with `--tvm-codegen llvm` by TVM's LLVM for thumbv7em cortex-m4 hard-float
at TVM's opt level 3), arm-none-eabi-gcc 12.2 `-Os`, QEMU 7.2 `{any_r['machine']}` with `-icount shift=0`: instructions per
inference from SysTick (1 tick = {any_r['tick_instructions']:g} instructions), second inference of a
random input, identical over repeated runs; outputs checked against edgec's interpreter in the
same run. Sizes from the linked ELF, as in the table above: *code* is all flash but weights and the
embedded test input (in parentheses: the model's own functions -- for TVM its kernels, the driver
and the workspace allocator); *other* RAM is everything but the arena (I/O buffers, libc state)
plus the measured stack high-water mark. The TVM arena holds the tensors (planned by edgec from
the lifetimes in TVM's lowered `main`) and, at its top, the kernels' workspace. Per-run JSON:
`benchmarks/results/{TARGET}-tvm/`. KWS's "float" model is a hybrid one (int8 convolution
weights), which TVM's TFLite frontend refuses.
"""


def replace_between(path: Path, text: str) -> None:
    s = path.read_text()
    if BEGIN not in s or END not in s:
        sys.exit(f"benchmarks/tvm_vs_native.py: no {BEGIN} ... {END} markers in {path}")
    pre, rest = s.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    path.write_text(pre + BEGIN + "\n" + text.rstrip("\n") + "\n" + END + post)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--no-readme", action="store_true", help="only write the JSON")
    a = ap.parse_args()
    from edgec.commands.bench import bench
    from edgec.ir.errors import UnsupportedError
    d = models_dir()
    out = ROOT / "benchmarks" / "results" / f"{TARGET}-tvm"
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for short, fname in MODELS:
        for label, backend, options in CONFIGS:
            print(f"{short}: edgec bench {fname} --backend {backend} {options or ''}", flush=True)
            try:
                r = bench(d / fname, TARGET, runs=a.runs, backend=backend, options=options)
            except UnsupportedError as e:
                print(f"  refused: {str(e).splitlines()[0]}", flush=True)
                results.setdefault(fname, {})[label] = "refused by TVM's frontend" \
                    if backend == "tvm" else "refused"
                continue
            if not r.repeatable:
                sys.exit(f"{fname} ({label}): instruction counts differ between runs")
            j = r.to_json()
            tag = "-".join([backend, *options.values()])
            (out / f"{Path(fname).stem}.{tag}.json").write_text(json.dumps(j, indent=2) + "\n")
            results.setdefault(fname, {})[label] = j
            print(f"  {j['instructions_per_inference']:,} instructions, flash code {j['flash']['code']:,} "
                  f"+ weights {j['flash']['weights']:,}, RAM arena {j['ram']['arena']:,} "
                  f"+ other {j['ram']['other']:,}", flush=True)
    text = table(results) + "\n\n" + notes(results)
    print(text)
    if not a.no_readme:
        replace_between(ROOT / "benchmarks" / "README.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
