"""Regenerate the benchmark tables: the four MLPerf Tiny int8 models.

    make bench                         # or: .venv/bin/python benchmarks/run.py
    python benchmarks/run.py --no-readme --skip-others

For each model on cortex-m4 (QEMU mps2-an386, -icount shift=0, SysTick):
`edgec bench MODEL --target cortex-m4 --runs 2` (``--optimize speed``, the
default: DSP kernels specialized per layer), the same with ``--optimize size``
(shared kernels) and with ``--kernels plain`` (the portable C kernels: the
baseline before the DSP kernels).  Then ``--optimize speed`` on the other
cores with an emulator (cortex-m7, cortex-m33, cortex-m55 with Helium), and
the flash of size-only builds for a Cortex-M0+ (no emulator) with both
``--optimize`` settings.  With TFLM_DIR and TFLM_LIB set (a TFLM + CMSIS-NN
library for cortex-m4), `edgec bench MODEL --backend tflm` is measured the same
way and replaces the anchors' TFLM figures.  Per-model JSON goes to benchmarks/results/<target>/,
the tables into benchmarks/README.md and README.md between the
`<!-- bench:begin -->` / `<!-- bench:end -->` markers.  The models come from
models/mlperf_tiny (or $MLPERF_TINY).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = [  # (short name, file, TFLM + CMSIS-NN on Cortex-M4 from ANCHORS.md)
    ("KWS", "kws_ref_model.tflite", dict(instr=7_578_520, mpi=0.351, code=55_992, model=53_936, arena=22_824)),
    ("VWW", "vww_96_int8.tflite", dict(instr=23_775_720, mpi=0.315, code=56_000, model=333_288, arena=100_712)),
    ("IC", "pretrainedResnet_quant.tflite", dict(instr=29_781_120, mpi=0.420, code=53_700, model=98_496, arena=55_000)),
    ("AD", "ad01_int8.tflite", dict(instr=582_840, mpi=0.453, code=31_240, model=276_976, arena=3_012)),
]
# lifetime lower bound of the activations (separate buffers, no in-place), ANCHORS.md
LOWER_BOUND = {"KWS": 16_000, "VWW": 55_296, "IC": 49_152, "AD": 256}
CONFIGS = [  # (key, label, bench keyword arguments)
    ("speed", "edgec `--optimize speed`", dict(optimize="speed")),
    ("size", "edgec `--optimize size`", dict(optimize="size")),
    ("plain", "edgec, plain C kernels (before: `--kernels plain`)", dict(options={"kernels": "plain"})),
]
OTHER_TARGETS = ["cortex-m7", "cortex-m33", "cortex-m55"]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def models_dir() -> Path:
    d = Path(os.environ.get("MLPERF_TINY", ROOT / "models" / "mlperf_tiny"))
    if not d.is_dir():
        sys.exit(f"benchmarks/run.py: MLPerf Tiny models not found in {d} (set MLPERF_TINY=dir)")
    return d


def main_table(results: dict) -> str:
    rows = ["| model | stack | instructions / inference | vs TFLM + CMSIS-NN | MACs / instruction | "
            "flash: code | flash: weights | RAM: arena | RAM: other |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for short, fname, tf in MODELS:
        first = True
        for key, label, _ in CONFIGS:
            r = results.get((fname, key))
            if r is None:
                continue
            f, m = r["flash"], r["ram"]
            head = f"{short} ({r['macs'] / 1e6:.2f} M MACs)" if first else ""
            first = False
            rows.append(f"| {head} | {label} | {r['instructions_per_inference']:,} | "
                        f"{r['instructions_per_inference'] / tf['instr']:.2f}x | "
                        f"{r['macs_per_instruction']:.3f} | {f['code']:,} (kernels {f['model_code']:,}) | "
                        f"{f['weights']:,} | {m['arena']:,} | {m['other']:,} |")
        t = results.get((fname, "tflm"))
        if t is not None:
            rows.append(f"| | TFLM + CMSIS-NN (`--backend tflm`) | {t['instructions_per_inference']:,} | "
                        f"{t['instructions_per_inference'] / tf['instr']:.2f}x | "
                        f"{t['macs_per_instruction']:.3f} | {t['flash']['code']:,} | "
                        f"{t['flash']['weights']:,} (.tflite) | {t['ram']['arena']:,} | {t['ram']['other']:,} |")
        rows.append(f"| | TFLM + CMSIS-NN (anchors) | {tf['instr']:,} | 1.00x | {tf['mpi']:.3f} | {tf['code']:,} | "
                    f"{tf['model']:,} (.tflite) | {tf['arena']:,} | |")
    return "\n".join(rows)


def others_table(others: dict) -> str:
    rows = ["| model | " + " | ".join(f"{t} ({others[(MODELS[0][1], t)]['machine']})"
                                       for t in OTHER_TARGETS if (MODELS[0][1], t) in others) + " |",
            "|---|" + "---:|" * len([t for t in OTHER_TARGETS if (MODELS[0][1], t) in others])]
    for short, fname, _ in MODELS:
        cells = []
        for t in OTHER_TARGETS:
            r = others.get((fname, t))
            if r is not None:
                cells.append(f"{r['instructions_per_inference']:,} ({r['macs_per_instruction']:.2f} MACs/instr)")
        rows.append(f"| {short} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def m0_table(m0: dict) -> str:
    rows = ["| model | `--optimize speed`: code (kernels) | weights | `--optimize size`: code (kernels) | weights |",
            "|---|---:|---:|---:|---:|"]
    for short, fname, _ in MODELS:
        a, b = m0.get((fname, "speed")), m0.get((fname, "size"))
        if a is None or b is None:
            continue
        rows.append(f"| {short} | {a['code']:,} ({a['model_code']:,}) | {a['weights']:,} | "
                    f"{b['code']:,} ({b['model_code']:,}) | {b['weights']:,} |")
    return "\n".join(rows)


def m0_sizes(model: Path, optimize: str) -> dict:
    """Flash of a size-only firmware for cortex-m0plus (no emulator)."""
    from edgec.target import elfsize, firmware, targets
    from edgec import pipeline
    from edgec.pipeline import Options, compile_full
    from edgec.data import random_samples
    with tempfile.TemporaryDirectory(prefix="edgec-m0-") as d:
        d = Path(d)
        bundle, g = compile_full(model, Options(target="cortex-m0plus", name="model", optimize=optimize,
                                                fit_check=False))
        bdir = bundle.write(d / "bundle")
        s = random_samples(g, 1)
        fw = firmware.build(bdir, bundle.report, targets.load("cortex-m0plus"), d / "fw", samples=s,
                            expected=pipeline.expected_outputs(g, s), memory="unbounded")
        return elfsize.breakdown(elfsize.read(fw.elf), "model")["flash"]


TFLM_MEASURED = """
TFLM + CMSIS-NN (`--backend tflm`) rows: the same models bundled by edgec's TFLM backend and
linked with a TensorFlow Lite Micro library (BUILD_TYPE=release, OPTIMIZED_KERNEL_DIR=cmsis_nn,
arm-none-eabi-gcc 12.2: framework -Os, kernels -O2), into the same harness, measured by the same
script the same way and checked bit-exact against edgec's interpreter. *weights* is the whole
.tflite flatbuffer (weights plus graph); *code* is TFLM, CMSIS-NN, the harness and libc; the arena
is the one the bundle declares (TFLM keeps the input and output tensors in it). Without TFLM_DIR
and TFLM_LIB, `make bench` keeps these rows from benchmarks/results/cortex-m4/*.tflm.json, the last
run that had them.
"""


def notes(any_r: dict) -> str:
    return f"""Measured with `make bench` (`benchmarks/run.py`: per model `edgec bench MODEL --target cortex-m4 --runs 2`,
then with `--optimize size`, then with `--kernels plain`), arm-none-eabi-gcc 12.2 `-Os`, QEMU 7.2
`{any_r['machine']}` with `-icount shift=0`: instructions per inference from SysTick (1 tick =
{any_r['tick_instructions']:g} instructions), second inference of a random input, identical over
repeated runs. Outputs checked bit-exact against edgec's interpreter in the same run (itself
bit-exact with TFLite Micro). Sizes from the linked ELF: *code* is all flash but the weights and
the embedded test input (the model's kernels, the harness, startup code and libc); *weights* are
all the model's constants (weights re-laid out for the kernel, biases with the input offset folded
in, requantization tables); *other* RAM is everything but the arena (the model's input/output
buffers -- VWW's 96x96x3 input image alone is 27,648 B -- and libc state) plus the measured stack
high-water mark (the 8 KB stack reservation itself is not counted). The arena includes the
kernels' scratch buffers (im2col rows, depthwise planes); layers that write their output over an
input that dies with them (depthwise 3x3, 1x1 convolutions, a residual ADD fused into the
convolution before it) take it below the lifetime lower bound of separate buffers
(KWS 16,000, VWW 55,296, IC 49,152, AD 256). Per-model JSON with per-layer counts:
`benchmarks/results/cortex-m4/` (`--optimize speed`).

TFLM + CMSIS-NN (anchors) rows, the reference of the "vs" column: the figures of the project's anchors
document (`../shared/docs/ANCHORS.md`, "measured on this kind of machine"): TFLite Micro (release
build) with CMSIS-NN kernels, arm-none-eabi-gcc 12.2 (framework -Os, kernels -O2, Cortex-M4 with
DSP), QEMU 7.2 mps2-an386 `-icount shift=0`, SysTick, second Invoke. Their *code* is all flash but the model array
(which is the whole .tflite flatbuffer, weights plus graph); their arena is the smallest that
allocates and includes the input and output tensors (edgec keeps those in *other*).
"""


def replace_between(path: Path, text: str) -> None:
    s = path.read_text()
    if BEGIN not in s or END not in s:
        sys.exit(f"benchmarks/run.py: no {BEGIN} ... {END} markers in {path}")
    pre, rest = s.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    path.write_text(pre + BEGIN + "\n" + text.rstrip("\n") + "\n" + END + post)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--no-readme", action="store_true", help="only write the JSON")
    ap.add_argument("--skip-others", action="store_true",
                    help="only cortex-m4 (no m7/m33/m55 counts, no Cortex-M0+ flash)")
    a = ap.parse_args()
    from edgec.commands.bench import bench
    d = models_dir()
    results, others, m0 = {}, {}, {}
    for short, fname, _ in MODELS:
        for key, label, kw in CONFIGS:
            print(f"{short}: {label}", flush=True)
            r = bench(d / fname, "cortex-m4", runs=a.runs, layers=key == "speed", **kw)
            if not r.repeatable:
                sys.exit(f"{fname}: instruction counts differ between runs")
            j = r.to_json()
            results[(fname, key)] = j
            if key == "speed":
                out = ROOT / "benchmarks" / "results" / "cortex-m4"
                out.mkdir(parents=True, exist_ok=True)
                (out / (Path(fname).stem + ".json")).write_text(json.dumps(j, indent=2) + "\n")
            print(f"  {j['instructions_per_inference']:,} instructions, {j['macs_per_instruction']:.3f} "
                  f"MACs/instruction, flash code {j['flash']['code']:,} + weights {j['flash']['weights']:,}, "
                  f"RAM arena {j['ram']['arena']:,} + other {j['ram']['other']:,}", flush=True)
        if os.environ.get("TFLM_DIR") and os.environ.get("TFLM_LIB"):
            print(f"{short}: edgec bench {fname} --backend tflm", flush=True)
            t = bench(d / fname, "cortex-m4", runs=a.runs, backend="tflm").to_json()
            if not t["repeatable"]:
                sys.exit(f"{fname} (tflm): instruction counts differ between runs")
            out = ROOT / "benchmarks" / "results" / "cortex-m4"
            (out / (Path(fname).stem + ".tflm.json")).write_text(json.dumps(t, indent=2) + "\n")
            results[(fname, "tflm")] = t
        else:
            # no TFLM here: keep the last measured TFLM rows (they do not depend on edgec's kernels)
            prev = ROOT / "benchmarks" / "results" / "cortex-m4" / (Path(fname).stem + ".tflm.json")
            if prev.exists():
                results[(fname, "tflm")] = json.loads(prev.read_text())
        if a.skip_others:
            continue
        for t in OTHER_TARGETS:
            r = bench(d / fname, t, runs=a.runs, layers=False)
            if not r.repeatable:
                sys.exit(f"{fname} on {t}: instruction counts differ between runs")
            others[(fname, t)] = r.to_json()
            print(f"  {t}: {r.instructions:,} instructions", flush=True)
        for opt in ("speed", "size"):
            m0[(fname, opt)] = m0_sizes(d / fname, opt)
            print(f"  cortex-m0plus --optimize {opt}: code {m0[(fname, opt)]['code']:,}", flush=True)
    text = main_table(results) + "\n\n" + notes(results[(MODELS[0][1], "speed")])
    if any(k[1] == "tflm" for k in results):
        text += TFLM_MEASURED
    if others:
        text += ("\n### The other cores with an emulator (`--optimize speed`)\n\n"
                 "Instructions per inference, measured the same way (`edgec bench MODEL --target T`); "
                 "cortex-m7 and cortex-m33 run the DSP kernels, cortex-m55 the Helium (MVE) kernels "
                 "for convolutions and fully connected layers (the DSP depthwise 3x3 kernel where it "
                 "applies). The 25 MHz mps2 boards count whole SysTick ticks of 40 instructions; "
                 "mps2-an505 runs at 20 MHz (50) and mps3-an547 at 32 MHz (31.25).\n\n"
                 + others_table(others) + "\n")
    if m0:
        text += ("\n### Flash on a Cortex-M0+ (no DSP, no emulator: size-only builds)\n\n"
                 "`--optimize size` shares one kernel per operator type (parameters passed at run time) "
                 "where `--optimize speed` specializes one per layer; bytes of the linked firmware "
                 "(`code` includes the harness and libc, `kernels` is the model's own code).\n\n"
                 + m0_table(m0) + "\n")
    print(text)
    if not a.no_readme:
        replace_between(ROOT / "benchmarks" / "README.md", text)
        replace_between(ROOT / "README.md", main_table(results) + "\n\n" +
                        "Method, definitions, the other cores and sources: [benchmarks/](benchmarks/README.md).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
