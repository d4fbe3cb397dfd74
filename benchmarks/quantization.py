"""edgec's post-training quantization of the MLPerf Tiny float models against the
official int8 models (made by the TensorFlow converter), on the same inputs.

    .venv/bin/python benchmarks/quantization.py [--cal 200] [--eval 100] [--json out.json]

No VWW or CIFAR-10 data ships offline, so both models are measured on the same
synthetic images (tests/synthetic.py: smooth random images in the model's input
range; calibration seed 1, evaluation seed 2).  For each model: output SQNR (and
argmax agreement) of edgec's int8 model and of the official int8 model against the
float model, both run in edgec's reference interpreter (bit-exact with TFLite Micro
on the official models, and with edgec's compiled C on edgec's), for each calibration
method; flash of the compiled bundle (model.c for cortex-m4 with arm-none-eabi-gcc -Os:
text + data of the object) for the float and the edgec int8 model.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

import synthetic  # noqa: E402
from edgec.passes import accuracy, calibration  # noqa: E402
from edgec.pipeline import Options, compile_full, load, lower  # noqa: E402
from edgec.passes import quantize as qz  # noqa: E402

MLPERF = Path(os.environ.get("MLPERF_TINY", ROOT / "models" / "mlperf_tiny"))
MODELS = [  # float model, official int8 model, input range
    ("VWW", "vww_96_float.tflite", "vww_96_int8.tflite", 0.0, 1.0),
    ("IC (ResNet-8)", "pretrainedResnet.tflite", "pretrainedResnet_quant.tflite", 0.0, 255.0),
]


def bundle_flash(g, target: str = "cortex-m4") -> dict:
    """Flash of the compiled bundle: model.c built for the target, text + data of the object."""
    from edgec.target import targets
    bundle, _ = compile_full(g, Options(target=target, name="model", fit_check=False))
    tgt = targets.load(target)
    with tempfile.TemporaryDirectory() as d:
        bdir = bundle.write(Path(d) / "b")
        obj = Path(d) / "model.o"
        cc = [tgt.cc, *tgt.cflags, "-std=c99", "-Os", "-ffunction-sections", "-fdata-sections",
              "-c", str(bdir / "model.c"), "-I", str(bdir), "-o", str(obj)]
        subprocess.run(cc, check=True, capture_output=True)
        size = subprocess.run([tgt.cc.replace("gcc", "size"), str(obj)], check=True,
                              capture_output=True, text=True).stdout.splitlines()[1].split()
    return {"flash_bytes": int(size[0]) + int(size[1]), "weights_bytes": bundle.report["weights_bytes"]}


def measure(label, fl, ql, lo, hi, n_cal, n_eval, methods):
    g = lower(load(MLPERF / fl))
    go = lower(load(MLPERF / ql))
    shape = g.tensors[g.inputs[0]].shape[1:]
    cal = calibration.get_dataset(g, [synthetic.images(shape, n_cal, 1, lo, hi)])
    ev = calibration.get_dataset(g, [synthetic.images(shape, n_eval, 2, lo, hi)])
    ev.source = f"synthetic images seed 2 (x{n_eval})"
    row = {"model": label, "float": fl, "official_int8": ql, "input_range": [lo, hi],
           "calibration": f"synthetic images seed 1 (x{n_cal})", "eval": ev.source}
    off = accuracy.evaluate(g, go, ev, layers=False)["outputs"][0]
    row["official"] = {k: off[k] for k in ("sqnr_db", "argmax_agreement", "max_abs_error")}
    row["edgec"] = {}
    gq_minmax = None
    for m in methods:
        t = time.time()
        gq = qz.quantize(g, qz.QuantConfig(calibration=cal, method=m)).graph
        r = accuracy.evaluate(g, gq, ev, layers=m == "minmax")
        o = r["outputs"][0]
        row["edgec"][m] = {k: o[k] for k in ("sqnr_db", "argmax_agreement", "max_abs_error")}
        row["edgec"][m]["seconds"] = round(time.time() - t, 1)
        if m == "minmax":
            gq_minmax = gq
            row["edgec_layers_minmax"] = [{k: L[k] for k in ("layer", "op", "sqnr_db")} for L in r["layers"]]
    if gq_minmax is not None:
        ff, fq = bundle_flash(g), bundle_flash(gq_minmax)
        row["flash"] = {"float": ff, "int8": fq, "ratio": fq["flash_bytes"] / ff["flash_bytes"],
                        "weights_ratio": fq["weights_bytes"] / ff["weights_bytes"]}
    return row


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cal", type=int, default=200)
    ap.add_argument("--eval", type=int, default=100)
    ap.add_argument("--methods", default="minmax,percentile,mse,entropy")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "quantization.json"))
    a = ap.parse_args(argv)
    rows = [measure(*m, a.cal, a.eval, a.methods.split(",")) for m in MODELS]
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    print("| model | quantized by | output SQNR vs float (dB) | argmax agreement | bundle flash (B) |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        fl = r.get("flash", {})
        print(f"| {r['model']} | float model | | | {fl.get('float', {}).get('flash_bytes', 0):,} |")
        print(f"| | official int8 (TF converter) | {r['official']['sqnr_db']:.2f} | "
              f"{100 * r['official']['argmax_agreement']:.0f}% | |")
        for m, e in r["edgec"].items():
            fb = f"{fl['int8']['flash_bytes']:,} ({100 * fl['ratio']:.1f}% of float)" if m == "minmax" and fl else ""
            print(f"| | edgec int8, {m} | {e['sqnr_db']:.2f} | {100 * e['argmax_agreement']:.0f}% | {fb} |")
    print(f"\ninputs: calibration {rows[0]['calibration']}, evaluation {rows[0]['eval']}")


if __name__ == "__main__":
    main()
