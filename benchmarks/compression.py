"""The measured numbers of docs/COMPRESSION.md: compression beyond int8 on a Cortex-M4F
in QEMU (sizes from the linked ELF, instructions from -icount, accuracy on real data).

    .venv/bin/python benchmarks/compression.py            # writes benchmarks/results/compression/

1. the binarized MLP trained on scikit-learn's digits (tests/bnn_digits.py): test accuracy,
   flash of its binary layers from the size report, instructions per inference;
2. ``edgec explore`` of a float MLP trained on the digits (tests/digits.py), every technique;
3. ``edgec explore`` of MLPerf Tiny's anomaly-detection autoencoder ad01 (fp32: pruning and
   low-rank; int8: pruning), whose real data (ToyADMOS) is not here: its accuracy column is the
   output SQNR against the unmodified model on random inputs, a stand-in, not an AUC.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
MLPERF = Path(os.environ.get("MLPERF_TINY", ROOT / "models" / "mlperf_tiny"))
OUT = ROOT / "benchmarks" / "results" / "compression"


def bnn(work: Path) -> dict:
    import bnn_digits
    import digits
    from edgec.commands import bench
    from edgec.report import size as report
    from edgec.pipeline import Options, load, lower
    from edgec.commands import run
    m = bnn_digits.train(hidden=128, epochs=30)
    path = bnn_digits.to_onnx(m, work / "bnn_digits.onnx")
    _, _, xte, yte = digits.split()
    x = xte.reshape(-1, 64)
    acc = bnn_digits.accuracy(m, x, yte)
    g = lower(load(path))
    samples = [[xi.reshape(1, 64)] for xi in x]
    outs, _, bundle, gl, info = run.run_on_target(g, Options(target="cortex-m4"), samples, work / "q", False)
    got = np.stack([o[0].reshape(-1) for o in outs])
    exact = bool(np.array_equal(got, bnn_digits.reference(m, x)))
    rep = report.size_report(work / "q" / "firmware" / "firmware.elf", bundle.report)
    wb = {s["name"]: s["size"] for s in rep["symbols"] if s["name"].endswith("_wbits")}
    b = bench.bench(path, target="cortex-m4", layers=False)
    return {"test_accuracy": acc, "qemu_test_accuracy": float(np.mean(got.argmax(1) == yte)),
            "qemu_bit_exact_360": exact, "binary_weight_bytes": sum(wb.values()),
            "binary_weights": 64 * 128 + 128 * 128 + 128 * 10, "weights_bytes": rep["flash"]["parts"]["weights"],
            "model_flash": rep["model_totals"]["flash"], "firmware_flash": b.flash["firmware"],
            "instructions": b.instructions, "arena": b.ram["arena"]}


def main() -> None:
    from edgec.commands import explore as ex
    import digits
    OUT.mkdir(parents=True, exist_ok=True)
    res = {}
    with tempfile.TemporaryDirectory() as t:
        work = Path(t)
        res["bnn_digits"] = bnn(work)
        print(json.dumps(res["bnn_digits"], indent=2))
        mlp = digits.train_mlp_onnx(work)
        cal, test = digits.write_flat_npz(work)
        e = ex.explore(mlp, test, target="cortex-m4", calibration=cal, eval_samples=360)
        res["digits_mlp"] = e
        (OUT / "digits_mlp.html").write_text(ex.render_html(e))
        rng = np.random.default_rng(0)
        np.savez(work / "ad_f.npz", x=rng.normal(0, 1, (50, 1, 640)).astype(np.float32))
        np.savez(work / "ad_q.npz", x=rng.integers(-128, 128, (50, 1, 640)).astype(np.int8))
        for name, data, tech in (("ad01_fp32", "ad_f.npz", ["prune", "low-rank"]),
                                 ("ad01_int8", "ad_q.npz", ["prune"])):
            e = ex.explore(MLPERF / f"{name}.tflite", work / data, target="cortex-m4", techniques=tech)
            res[name] = e
            (OUT / f"{name}.html").write_text(ex.render_html(e))
    (OUT / "compression.json").write_text(json.dumps(res, indent=2) + "\n")
    for k in ("digits_mlp", "ad01_fp32", "ad01_int8"):
        print(f"\n### {k}\n")
        print("| " + " | ".join(ex.COLUMNS[:-1]) + " | frontier |")
        print("|" + "---|" * len(ex.COLUMNS))
        for r in ex.table_rows(res[k]):
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
