"""Golden bundles: what the test suite and the benchmarks generate, by sha256 of every file.

    python tests/golden.py --write     # record tests/golden_bundles.json (after a deliberate change)
    python tests/golden.py             # compare, list the cases and files that differ

A restructuring of edgec must leave every bundle byte-identical: tests/test_golden.py
compares every case with the record.  The cases cover the MLPerf Tiny models in each
kernel mode (per-layer speed kernels, shared size kernels, plain C; Arm DSP on cortex-m4,
Helium on cortex-m55, RISC-V), float models, an ONNX CNN, a firmware harness, edgec's
int8 quantizer, pruned (sparse) and low-rank models, a binarized MLP, tree ensembles in
both layouts and with int8 features, the TVM and TFLM backends, a few ONNX node tests
and every saved fuzz regression.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORD = HERE / "golden_bundles.json"
MLPERF = ROOT / "models" / "mlperf_tiny"
KWS = ROOT / "firmware_examples" / "kws" / "model" / "kws_ref_model.tflite"


def _opts(**kw):
    from edgec.pipeline import Options
    kw.setdefault("name", "model")
    kw.setdefault("fit_check", False)
    return Options(**kw)


def _tree_model(work: Path) -> Path:
    sys.path.insert(0, str(HERE))
    import tree_models
    rng = np.random.default_rng(3)
    A = tree_models.random_trees(rng, 6, 8, 4, 3)
    p = work / "forest.onnx"
    p.write_bytes(tree_models.make_model(A, "classifier", 8, 3).SerializeToString())
    return p


def _calibration(work: Path, shape, n=16, seed=0) -> Path:
    p = work / f"cal_{'x'.join(map(str, shape))}.npz"
    np.savez(p, x=np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32))
    return p


def cases(work: Path):
    """(case id, model path, Options) for every golden bundle."""
    sys.path.insert(0, str(HERE))
    import hostile_corpus
    from edgec.passes.compress import CompressConfig
    from edgec.passes.lowrank import LowRankConfig
    from edgec.passes.prune import PruneConfig
    from edgec.passes.quantize import QuantConfig
    out = []
    int8 = ["kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite"]
    for m in int8:
        stem = m.split("_")[0].split(".")[0]
        out.append((f"{stem}-m4-speed", MLPERF / m, _opts(target="cortex-m4")))
        out.append((f"{stem}-m4-size", MLPERF / m, _opts(target="cortex-m4", optimize="size")))
        out.append((f"{stem}-m4-plain", MLPERF / m, _opts(target="cortex-m4", extra={"kernels": "plain"})))
        out.append((f"{stem}-m55-speed", MLPERF / m, _opts(target="cortex-m55")))
        out.append((f"{stem}-host", MLPERF / m, _opts(target="host")))
    out.append(("kws-m55-size", KWS, _opts(target="cortex-m55", optimize="size")))
    out.append(("kws-riscv32", KWS, _opts(target="riscv32")))
    out.append(("kws-m0plus-size", KWS, _opts(target="cortex-m0plus", optimize="size")))
    out.append(("kws-m4-firmware", KWS, _opts(target="cortex-m4", name="kws", firmware=True)))
    for m in ("vww_96_float.tflite", "pretrainedResnet.tflite", "ad01_fp32.tflite", "kws_ref_model_float32.tflite"):
        out.append((f"{m.split('.')[0]}-m4", MLPERF / m, _opts(target="cortex-m4")))
    out.append(("ad01_fp32-m3-size", MLPERF / "ad01_fp32.tflite", _opts(target="cortex-m3", optimize="size")))
    out.append(("mnist-host", ROOT / "models" / "onnx" / "mnist-8.onnx", _opts(target="host")))
    out.append(("mnist-m4", ROOT / "models" / "onnx" / "mnist-8.onnx", _opts(target="cortex-m4")))
    base = work / "base.onnx"
    base.write_bytes(hostile_corpus.onnx_base().SerializeToString())
    cal = _calibration(work, (1, 3, 8, 8))
    out.append(("base-int8-m4", base, _opts(target="cortex-m4", quantize=QuantConfig(calibration=str(cal)))))
    out.append(("ad01-int8-pruned-m4", MLPERF / "ad01_int8.tflite",
                _opts(target="cortex-m4", compress=CompressConfig(prune=PruneConfig.parse(["0.5"])))))
    out.append(("ad01-int8-pruned-size", MLPERF / "ad01_int8.tflite",
                _opts(target="cortex-m4", optimize="size", compress=CompressConfig(prune=PruneConfig.parse(["0.7"])))))
    out.append(("ad01-fp32-lowrank", MLPERF / "ad01_fp32.tflite",
                _opts(target="cortex-m4", compress=CompressConfig(low_rank=LowRankConfig.parse(["0.9"])))))
    forest = _tree_model(work)
    out.append(("forest-data", forest, _opts(target="cortex-m4", input_shapes=["1x8"])))
    out.append(("forest-code", forest, _opts(target="cortex-m4", input_shapes=["1x8"], extra={"trees": "code"})))
    import bnn_digits
    bnn = work / "bnn.onnx"
    bnn_digits.to_onnx(bnn_digits.train(hidden=64, epochs=3), bnn)
    out.append(("bnn-m4", bnn, _opts(target="cortex-m4")))
    out.append(("kws-tflm", KWS, _opts(target="cortex-m4", backend="tflm")))
    try:
        import tvm  # noqa: F401
        out.append(("mnist-tvm", ROOT / "models" / "onnx" / "mnist-8.onnx", _opts(target="host", backend="tvm")))
    except ImportError:
        pass
    for p in sorted((HERE / "fuzz_regressions").glob("*")):
        if p.suffix in (".onnx", ".tflite"):
            out.append((f"fuzz-{p.stem}", p, _opts(target="host")))
    return out


def digest(bundle) -> dict[str, str]:
    from edgec.ir.bundle import dumps_json
    files = dict(bundle.files)
    files["report.json"] = dumps_json(bundle.report)
    return {k: hashlib.sha256(v.encode() if isinstance(v, str) else v).hexdigest()
            for k, v in sorted(files.items())}


def build_all(work: Path, only=None) -> dict[str, dict[str, str]]:
    from edgec.pipeline import compile_full
    res = {}
    for cid, model, opts in cases(work):
        if only and cid not in only:
            continue
        bundle, _ = compile_full(model, opts)
        res[cid] = digest(bundle)
    return res


def compare(got: dict, want: dict) -> list[str]:
    diffs = []
    for cid in sorted(set(got) | set(want)):
        if cid not in want:
            diffs.append(f"{cid}: not recorded")
        elif cid not in got:
            diffs.append(f"{cid}: not built")
        elif got[cid] != want[cid]:
            files = sorted(f for f in set(got[cid]) | set(want[cid]) if got[cid].get(f) != want[cid].get(f))
            diffs.append(f"{cid}: {', '.join(files)}")
    return diffs


# a fixed place, relative to the checkout: reports name the calibration file as given
WORK = Path("build") / "golden"


def main(argv) -> int:
    import os
    import shutil
    os.chdir(ROOT)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    got = build_all(WORK)
    if "--write" in argv:
        RECORD.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(got)} bundles in {RECORD}")
        return 0
    diffs = compare(got, json.loads(RECORD.read_text()))
    print("\n".join(diffs) or f"all {len(got)} bundles byte-identical")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
