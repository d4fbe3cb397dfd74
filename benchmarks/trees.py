"""Tree ensembles on a Cortex-M4F: the sonar random forest against emlearn's
published figures, and the compile cost of a 500-tree forest.

    .venv/bin/python benchmarks/trees.py            # writes benchmarks/results/trees.json and the
                                                    # "Tree ensembles" section of benchmarks/README.md
    .venv/bin/python benchmarks/trees.py --no-readme --no-qemu

Sonar (models/data/sonar.csv, or $SONAR_CSV): 208 rows x 60 features, split
156 training / 52 held-out rows (scikit-learn train_test_split, test_size=0.25,
stratified, random_state=0); RandomForestClassifier(n_estimators=10,
max_depth=10, random_state=0); skl2onnx with zipmap=False and a [1, 60] input.
Each variant is compiled by edgec for cortex-m4 and measured three ways:

* model object: ``arm-none-eabi-gcc -Os -ffunction-sections -fdata-sections``
  of the bundle's model.c with the target's flags, .text + .rodata + .data;
* firmware: the model's symbols (code and constants) in the linked firmware
  ELF of ``edgec bench`` (harness, startup and libc not counted), with the
  instructions per inference QEMU counts;
* held-out labels: ``edgec verify --target cortex-m4`` on the 52 held-out rows
  in QEMU against onnxruntime running the float model.

The 500-tree forest: RandomForestClassifier(n_estimators=500, random_state=0)
on scikit-learn's digits (64 features, 10 classes, unlimited depth), edgec's
compile time and gcc's time and peak memory building the model object.
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

EMLEARN = {"float": 4608, "int8": 2204}   # ../shared/docs/ANCHORS.md (Cortex-M4F, 10 trees, 60 features)
BEGIN, END = "<!-- trees:begin -->", "<!-- trees:end -->"

VARIANTS = [  # (name, edgec options, emlearn figure to compare with)
    ("float, trees as data", {"trees": "data"}, "float"),
    ("float, trees as code", {"trees": "code"}, "float"),
    ("int16 features (float input, quantized on entry)",
     {"tree_features": "int16", "tree_calibration": "TRAIN"}, "int8"),
    ("int8 features (float input, quantized on entry)",
     {"tree_features": "int8", "tree_calibration": "TRAIN"}, "int8"),
    ("int8 features (float input, quantized on entry), no calibration",
     {"tree_features": "int8"}, "int8"),
    ("int16 features (integer input)",
     {"tree_features": "int16", "tree_calibration": "TRAIN", "tree_quantized_input": True}, "int8"),
    ("int8 features (integer input)",
     {"tree_features": "int8", "tree_calibration": "TRAIN", "tree_quantized_input": True}, "int8"),
    ("int8 features (integer input), no calibration",
     {"tree_features": "int8", "tree_quantized_input": True}, "int8"),
]


def sonar_csv() -> Path:
    p = Path(os.environ.get("SONAR_CSV", ROOT / "models" / "data" / "sonar.csv"))
    if not p.is_file():
        sys.exit(f"benchmarks/trees.py: {p} not found (set SONAR_CSV=path)")
    return p


def sonar_forest(work: Path):
    """(model path, training rows, held-out rows .npz, held-out rows, training csv)."""
    import numpy as np
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    d = np.loadtxt(sonar_csv(), delimiter=",", dtype=str)
    X = d[:, :60].astype(np.float32)
    y = (d[:, 60] == "M").astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    rf = RandomForestClassifier(n_estimators=10, max_depth=10, random_state=0).fit(Xtr, ytr)
    m = to_onnx(rf, initial_types=[("X", FloatTensorType([1, 60]))],
                options={id(rf): {"zipmap": False}})
    path = work / "sonar_rf10.onnx"
    onnx.save(m, str(path))
    np.savez(work / "heldout.npz", X=Xte)
    np.savez(work / "train.npz", X=Xtr)
    return path, Xtr, work / "heldout.npz", Xte, work / "train.npz", rf


def object_bytes(bundle_dir: Path, target) -> dict:
    """.text + .rodata + .data of the model object built with -Os for the target."""
    from edgec.target import elfsize, toolchain
    objs = toolchain.compile_objects(target, [bundle_dir / "model.c"], bundle_dir / "obj",
                                     [bundle_dir], toolchain.opt_flags("s"), strict=True)
    img = elfsize.read(objs[0])
    b = elfsize.breakdown(img, "model")["flash"]
    return {"total": img.flash_bytes, "code": b["model_code"], "constants": b["weights"]}


def changed_rows(model, heldout, extra, work) -> list[dict]:
    """Held-out rows whose label the variant changes, with both probabilities of class 1
    (compiled for the host; labels as in QEMU)."""
    import numpy as np

    from edgec.commands import reference
    from edgec.pipeline import Options, compile_full
    from edgec.target.emulator import HostProgram
    from edgec.data import encode
    samples = [[x.reshape(1, -1)] for x in np.load(heldout)["X"]]
    ref, _ = reference.run_onnxruntime(Path(model), samples)
    b, g = compile_full(model, Options(target="host", extra=dict(extra)))
    prog = HostProgram(b.write(work / "host_b"), b.report, work / "host_w")
    outs, _ = prog.run(encode(g, samples))
    return [{"row": i, "float_p1": round(float(ref[i][1].reshape(-1)[1]), 4),
             "compiled_p1": round(float(outs[i][1].reshape(-1)[1]), 4)}
            for i in range(len(samples)) if int(outs[i][0][0]) != int(ref[i][0][0])]


def run_sonar(qemu: bool) -> dict:
    from edgec.target import targets
    from edgec.pipeline import Options, compile_full
    tgt = targets.load("cortex-m4")
    out = {"variants": []}
    with tempfile.TemporaryDirectory(prefix="edgec-trees-") as d:
        work = Path(d)
        model, Xtr, heldout, Xte, train_npz, rf = sonar_forest(work)
        out["forest"] = {"trees": 10, "max_depth": 10,
                         "nodes": int(sum(e.tree_.node_count for e in rf.estimators_)),
                         "train_rows": int(len(Xtr)), "heldout_rows": int(len(Xte))}
        for name, opts, versus in VARIANTS:
            extra = {k: (str(train_npz) if v == "TRAIN" else v) for k, v in opts.items()}
            bundle, g = compile_full(model, Options(target="cortex-m4", name="model", extra=extra))
            bdir = bundle.write(work / f"b{len(out['variants'])}")
            tr = bundle.report["layers"][0]["trees"]
            row = {"name": name, "options": opts, "emlearn": EMLEARN[versus], "versus": versus,
                   "layout": tr["layout"], "object": object_bytes(bdir, tgt),
                   "feature_quantization": tr.get("feature_quantization")}
            if qemu:
                from edgec.commands.bench import bench
                from edgec.commands.verify import verify
                b = bench(model, target="cortex-m4", n=1, inputs_file=str(heldout), runs=1,
                          layers=False, options=extra)
                row["firmware"] = {"model_code": b.flash["model_code"], "constants": b.flash["weights"],
                                   "model_total": b.flash["model_code"] + b.flash["weights"],
                                   "instructions_per_inference": b.instructions}
                v = verify(model, target="cortex-m4", n=len(Xte), inputs_file=str(heldout),
                           options=extra)
                lab = v.outputs[0]
                row["heldout"] = {"rows": lab.elements, "labels_changed": lab.mismatches,
                                  "reference": "onnxruntime, float model"}
                if lab.mismatches:
                    row["heldout"]["changed"] = changed_rows(model, heldout, extra, work)
            out["variants"].append(row)
            print(f"  {name}: object {row['object']['total']:,} B"
                  + (f", firmware model {row['firmware']['model_total']:,} B, "
                     f"{row['heldout']['labels_changed']}/{row['heldout']['rows']} held-out labels changed"
                     if qemu else ""), flush=True)
    return out


def run_500() -> dict:
    import numpy as np
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from edgec.target import targets, toolchain
    from edgec.pipeline import Options, compile_full
    X, y = load_digits(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=1).fit(X.astype(np.float32), y)
    with tempfile.TemporaryDirectory(prefix="edgec-trees500-") as d:
        work = Path(d)
        m = to_onnx(rf, initial_types=[("X", FloatTensorType([1, 64]))],
                    options={id(rf): {"zipmap": False}})
        path = work / "rf500.onnx"
        onnx.save(m, str(path))
        t0 = time.perf_counter()
        bundle, g = compile_full(path, Options(target="cortex-m4"))
        t_edgec = time.perf_counter() - t0
        bdir = bundle.write(work / "b")
        tr = bundle.report["layers"][0]["trees"]
        tgt = targets.load("cortex-m4")
        cmd = [toolchain.cc(tgt), *toolchain.STRICT, *tgt.cflags, *toolchain.opt_flags("s"),
               "-c", str(bdir / "model.c"), "-o", str(work / "model.o")]
        # a small launcher process runs the compiler so that the peak memory it reports is
        # the compiler's (cc1, as), not a fork of this large Python process
        launcher = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", launcher, *cmd], capture_output=True, text=True)
        t_gcc = time.perf_counter() - t0
        if p.returncode:
            raise SystemExit(f"gcc failed building the 500-tree forest:\n{p.stderr[-2000:]}")
        rss = int(p.stdout.strip().splitlines()[-1])
        from edgec.target import elfsize
        img = elfsize.read(work / "model.o")
        return {"trees": 500, "internal_nodes": tr["internal_nodes"], "leaves": tr["leaves"],
                "onnx_bytes": path.stat().st_size, "c_bytes": len(bundle.files["model.c"]),
                "layout": tr["layout"], "edgec_seconds": round(t_edgec, 2),
                "gcc_seconds": round(t_gcc, 2),
                "gcc_peak_rss_mb": round(rss / 1024, 1),
                "flash_bytes": img.flash_bytes}


def markdown(res: dict) -> str:
    s = res["sonar"]
    f = s["forest"]
    qemu = "firmware" in s["variants"][0]
    rows = ["| variant | model object (B) | model in firmware (B) | emlearn (B) | instructions / inference "
            "| held-out labels changed |",
            "|---|---:|---:|---:|---:|---:|"]
    for v in s["variants"]:
        fw = v.get("firmware")
        ho = v.get("heldout")
        rows.append(f"| {v['name']} | {v['object']['total']:,} | "
                    f"{fw['model_total']:,} | {v['emlearn']:,} ({v['versus']}) | "
                    f"{fw['instructions_per_inference']:,} | {ho['labels_changed']} / {ho['rows']} |"
                    if qemu else
                    f"| {v['name']} | {v['object']['total']:,} | - | {v['emlearn']:,} ({v['versus']}) | - | - |")
    proofs = []
    for v in s["variants"]:
        fq = v.get("feature_quantization")
        if fq and fq.get("calibration_rows"):
            proofs.append(f"* {v['name']}: {fq['nodes_with_changed_decisions']} of {fq['nodes']} nodes "
                          f"change a decision on the {fq['calibration_rows']} training rows "
                          f"({fq['changed_decisions']} decisions); training labels changed: "
                          f"{fq['calibration_labels_changed']}.")
    for v in s["variants"]:
        for c in (v.get("heldout") or {}).get("changed", []):
            proofs.append(f"* {v['name']}: held-out row {c['row']} changes label: the float forest's "
                          f"vote for class 1 is {c['float_p1']:g}, the integer one's {c['compiled_p1']:g} "
                          "(one decision moved one tree's vote onto the tie, which goes to class 0).")
    b = res["forest500"]
    return f"""### Sonar random forest vs emlearn (Cortex-M4F)

RandomForestClassifier(n_estimators=10, max_depth=10) on `models/data/sonar.csv`
({f['train_rows']} training rows, {f['heldout_rows']} held-out rows; {f['nodes']} tree nodes),
exported with skl2onnx, compiled by edgec for cortex-m4 (arm-none-eabi-gcc 12.2 `-Os`).

{chr(10).join(rows)}

*Model object*: .text + .rodata + .data of `model.o` (`arm-none-eabi-gcc -Os -ffunction-sections
-fdata-sections`, the target's flags): the whole model, its `invoke` functions included.
*Model in firmware*: the model's functions and constants in the linked firmware ELF of
`edgec bench --target cortex-m4` (QEMU mps2-an386; harness, startup code and libc not counted),
where *instructions / inference* come from too (`-icount shift=0`, first held-out row).
*Held-out labels changed*: `edgec verify --target cortex-m4` in QEMU on the {f['heldout_rows']}
held-out rows against onnxruntime running the float model. emlearn: its published figures for
a 10-tree, 60-feature forest on this data set (`../shared/docs/ANCHORS.md`).
Integer variants use the training rows as `--tree-calibration` (unless marked "no calibration"); *integer input* variants take
the 8/16-bit feature levels as the model input (`--quantized-input`; grid in the header).
{chr(10).join(proofs)}

### 500-tree forest

RandomForestClassifier(n_estimators=500) on scikit-learn's digits (64 features, 10 classes,
unlimited depth): {b['internal_nodes']:,} internal nodes, {b['leaves']:,} leaves, a
{b['onnx_bytes'] / 1e6:.1f} MB ONNX file. edgec compiles it in {b['edgec_seconds']} s (trees as
{b['layout']}, {b['c_bytes'] / 1e6:.1f} MB of C); arm-none-eabi-gcc `-Os` builds the model object in
{b['gcc_seconds']} s with a peak of {b['gcc_peak_rss_mb']:,} MB, {b['flash_bytes']:,} B of flash.

Regenerate: `.venv/bin/python benchmarks/trees.py` (numbers in `benchmarks/results/trees.json`)."""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-readme", action="store_true", help="Do not rewrite benchmarks/README.md.")
    ap.add_argument("--no-qemu", action="store_true", help="Sizes of the model object only.")
    args = ap.parse_args(argv)
    print("sonar forest:", flush=True)
    res = {"sonar": run_sonar(not args.no_qemu)}
    print("500-tree forest:", flush=True)
    res["forest500"] = run_500()
    print(f"  {res['forest500']}")
    out = ROOT / "benchmarks" / "results" / "trees.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    if not args.no_readme:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text()
        block = f"{BEGIN}\n{md}\n{END}"
        if BEGIN in text:
            text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n## Tree ensembles\n\n" + block + "\n"
        readme.write_text(text)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
