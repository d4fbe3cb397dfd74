"""Regenerate the benchmark table: the four MLPerf Tiny int8 models on cortex-m4.

    make bench                         # or: .venv/bin/python benchmarks/run.py
    python benchmarks/run.py --target cortex-m7 --no-readme

For each model, `edgec bench MODEL --target cortex-m4 --runs 2` (QEMU mps2-an386,
-icount shift=0, SysTick), and with TFLM_DIR and TFLM_LIB set (a TFLM + CMSIS-NN
library for the target) `edgec bench MODEL --backend tflm` the same way; the
per-model JSON goes to benchmarks/results/<target>/ (<model>.json, <model>.tflm.json),
the table into benchmarks/README.md and README.md between the
`<!-- bench:begin -->` / `<!-- bench:end -->` markers.  The models come from
../shared/models/mlperf_tiny (or $MLPERF_TINY).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = [  # (short name, file, TFLM + CMSIS-NN on Cortex-M4 from ANCHORS.md)
    ("KWS", "kws_ref_model.tflite", dict(instr=7_578_520, mpi=0.351, code=55_992, model=53_936, arena=22_824)),
    ("VWW", "vww_96_int8.tflite", dict(instr=23_775_720, mpi=0.315, code=56_000, model=333_288, arena=100_712)),
    ("IC", "pretrainedResnet_quant.tflite", dict(instr=29_781_120, mpi=0.420, code=53_700, model=98_496, arena=55_000)),
    ("AD", "ad01_int8.tflite", dict(instr=582_840, mpi=0.453, code=31_240, model=276_976, arena=3_012)),
]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def models_dir() -> Path:
    d = Path(os.environ.get("MLPERF_TINY", ROOT.parent / "shared" / "models" / "mlperf_tiny"))
    if not d.is_dir():
        sys.exit(f"benchmarks/run.py: MLPerf Tiny models not found in {d} (set MLPERF_TINY=dir)")
    return d


def table(results: dict, target: str) -> str:
    rows = ["| model | stack | instructions / inference | MACs / instruction | flash: code | flash: weights | RAM: arena | RAM: other |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for short, fname, tf in MODELS:
        r = results.get(fname)
        if r is None:
            continue
        f, m = r["flash"], r["ram"]
        rows.append(f"| {short} ({r['macs'] / 1e6:.2f} M MACs) | edgec, plain C kernels | "
                    f"{r['instructions_per_inference']:,} | {r['macs_per_instruction']:.3f} | "
                    f"{f['code']:,} (kernels {f['model_code']:,}) | {f['weights']:,} | "
                    f"{m['arena']:,} | {m['other']:,} |")
        t = results.get(("tflm", fname))
        if t is not None:
            tf_, tm = t["flash"], t["ram"]
            rows.append(f"| | TFLM + CMSIS-NN (`--backend tflm`) | {t['instructions_per_inference']:,} | "
                        f"{t['macs_per_instruction']:.3f} | {tf_['code']:,} | {tf_['weights']:,} (.tflite) | "
                        f"{tm['arena']:,} | {tm['other']:,} |")
        elif target == "cortex-m4":
            rows.append(f"| | TFLM + CMSIS-NN (anchors) | {tf['instr']:,} | {tf['mpi']:.3f} | {tf['code']:,} | "
                        f"{tf['model']:,} (.tflite) | {tf['arena']:,} | |")
    return "\n".join(rows)


def notes(results: dict, target: str) -> str:
    any_r = next(v for k, v in results.items() if not isinstance(k, tuple))
    measured_tflm = any(isinstance(k, tuple) for k in results)
    return f"""Measured with `make bench` (`benchmarks/run.py`: `edgec bench MODEL --target {target} --runs 2` per model),
arm-none-eabi-gcc 12.2 `-Os`, QEMU 7.2 `{any_r['machine']}` with `-icount shift=0`: instructions per
inference from SysTick (1 tick = {any_r['tick_instructions']:g} instructions), second inference of a
random input, identical over repeated runs. Outputs checked bit-exact against edgec's
interpreter in the same run (itself bit-exact with TFLite Micro). Sizes from the linked ELF:
*code* is all flash but the weights and the embedded test input (the model's kernels, the
harness, startup code and libc); *other* RAM is everything but the arena (the model's
input/output buffers -- VWW's 96x96x3 input image alone is 27,648 B -- and libc state) plus the
measured stack high-water mark (the 8 KB stack reservation itself is not counted). Per-model JSON with per-layer counts: `benchmarks/results/{target}/`.
""" + ("""
TFLM + CMSIS-NN rows (`--backend tflm`): the same models bundled by edgec's TFLM backend and
linked with a TensorFlow Lite Micro library (BUILD_TYPE=release, OPTIMIZED_KERNEL_DIR=cmsis_nn,
built from TFLM's sources of 2026 with arm-none-eabi-gcc 12.2: framework -Os, kernels -O2),
into the same harness, measured by the same script the same way and checked bit-exact against
edgec's interpreter. *weights* is the whole .tflite flatbuffer (weights plus graph); *code* is
TFLM, CMSIS-NN, the harness and libc; the arena is the one the bundle declares (TFLM keeps the
input and output tensors in it; the harness's own I/O buffers are in *other*).
""" if measured_tflm else "") + ("""
TFLM + CMSIS-NN rows (anchors: not measured by this script): the figures of the project's anchors
document (`../shared/docs/ANCHORS.md`, "measured on this kind of machine"): TFLite Micro (release
build) with CMSIS-NN kernels, arm-none-eabi-gcc 12.2 (framework -Os, kernels -O2, Cortex-M4 with
DSP), QEMU 7.2 mps2-an386 `-icount shift=0`, SysTick, second Invoke. Their *code* is all flash but the model array
(which is the whole .tflite flatbuffer, weights plus graph); their arena is the smallest that
allocates and includes the input and output tensors (edgec keeps those in *other*).
""" if target == "cortex-m4" and not measured_tflm else "")


def replace_between(path: Path, text: str) -> None:
    s = path.read_text()
    if BEGIN not in s or END not in s:
        sys.exit(f"benchmarks/run.py: no {BEGIN} ... {END} markers in {path}")
    pre, rest = s.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    path.write_text(pre + BEGIN + "\n" + text.rstrip("\n") + "\n" + END + post)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cortex-m4")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--no-readme", action="store_true", help="only write the JSON")
    a = ap.parse_args()
    from edgec.bench import bench
    d = models_dir()
    out = ROOT / "benchmarks" / "results" / a.target
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for short, fname, _ in MODELS:
        print(f"{short}: edgec bench {fname} --target {a.target} --runs {a.runs}", flush=True)
        r = bench(d / fname, a.target, runs=a.runs)
        if not r.repeatable:
            sys.exit(f"{fname}: instruction counts differ between runs")
        j = r.to_json()
        (out / (Path(fname).stem + ".json")).write_text(json.dumps(j, indent=2) + "\n")
        results[fname] = j
        print(f"  {j['instructions_per_inference']:,} instructions, {j['macs_per_instruction']:.3f} MACs/instruction, "
              f"flash code {j['flash']['code']:,} + weights {j['flash']['weights']:,}, "
              f"RAM arena {j['ram']['arena']:,} + other {j['ram']['other']:,}", flush=True)
        if os.environ.get("TFLM_DIR") and os.environ.get("TFLM_LIB"):
            print(f"{short}: edgec bench {fname} --backend tflm --target {a.target} --runs {a.runs}",
                  flush=True)
            t = bench(d / fname, a.target, runs=a.runs, backend="tflm").to_json()
            if not t["repeatable"]:
                sys.exit(f"{fname} (tflm): instruction counts differ between runs")
            (out / (Path(fname).stem + ".tflm.json")).write_text(json.dumps(t, indent=2) + "\n")
            results[("tflm", fname)] = t
    text = table(results, a.target) + "\n\n" + notes(results, a.target)
    print(text)
    if not a.no_readme and a.target == "cortex-m4":
        replace_between(ROOT / "benchmarks" / "README.md", text)
        replace_between(ROOT / "README.md", table(results, a.target) + "\n\n" +
                        "Method, definitions and sources: [benchmarks/](benchmarks/README.md).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
