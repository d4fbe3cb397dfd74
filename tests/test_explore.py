"""edgec explore: every technique and strength compiled and measured, the table,
the JSON (edgec-explore/1), the HTML page with the size/accuracy plot and its frontier."""
import json

import numpy as np
import pytest

import digits
from conftest import have, shared_model
from edgec.commands import explore as ex


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("mlp")
    path = digits.train_mlp_onnx(d)
    cal, test = digits.write_flat_npz(d)
    return dict(path=path, cal=cal, test=test)


def test_plan_covers_techniques_and_strengths():
    labels = [c.label for c in ex.plan(True, ex.TECHNIQUES, True)]
    assert labels[:2] == ["baseline", "int8"]
    for want in ("prune 0.5", "prune+int8 0.9", "low-rank 0.8", "low-rank+int8 0.9",
                 "binarize hidden/xnor", "binarize all/weights"):
        assert want in labels
    # an int8 model: pruning only
    assert [c.label for c in ex.plan(False, ex.TECHNIQUES, True)] == ["baseline", "prune 0.5", "prune 0.7",
                                                                     "prune 0.9"]


def test_frontier():
    pts = [ex.Point(ex.Config("a", "")), ex.Point(ex.Config("b", "")), ex.Point(ex.Config("c", ""))]
    for p, (f, m) in zip(pts, [(100, 0.9), (50, 0.95), (40, 0.5)]):
        p.flash_model, p.metric = f, m
    ex._mark_frontier(pts)
    assert [p.frontier for p in pts] == [False, True, True]


def test_explore_host_estimates(mlp):
    res = ex.explore(mlp["path"], mlp["test"], target="host", calibration=mlp["cal"],
                     techniques=["prune", "low-rank"], eval_samples=100)
    assert res["schema"] == "edgec-explore/1" and res["metric"] == "top-1"
    pts = {p["label"]: p for p in res["points"]}
    assert set(pts) == {"baseline", "prune 0.5", "prune 0.7", "prune 0.9", "low-rank 0.95", "low-rank 0.9",
                        "low-rank 0.8"}
    assert all(p["ok"] and p["sizes_are_estimates"] for p in pts.values())
    assert pts["prune 0.9"]["flash_model_bytes"] < pts["prune 0.5"]["flash_model_bytes"] < \
        pts["baseline"]["flash_model_bytes"]
    assert pts["prune 0.9"]["nonzero_weights"] < 0.11 * pts["baseline"]["nonzero_weights"]
    assert pts["low-rank 0.8"]["weights"] < pts["baseline"]["weights"]
    assert pts["baseline"]["delta"] == 0.0 and any(p["frontier"] for p in pts.values())
    page = ex.render_html(res)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    assert "prune 0.7" in page


@pytest.mark.qemu
def test_explore_cli_on_cortex_m4_with_instructions(mlp, tmp_path, edgec_cli):
    if not have("qemu-system-arm") or not have("arm-none-eabi-gcc"):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    out = tmp_path / "ex"
    r = edgec_cli("explore", mlp["path"], "--eval", mlp["test"], "--calibration", mlp["cal"],
                  "--eval-samples", "120", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "frontier" in r.stdout and "binarize hidden/xnor" in r.stdout
    res = json.loads((out / "explore.json").read_text())
    pts = {p["label"]: p for p in res["points"]}
    assert all(p["ok"] for p in pts.values()), [p["error"] for p in pts.values() if not p["ok"]]
    assert all(p["instructions"] and p["flash_firmware_bytes"] > p["flash_model_bytes"] for p in pts.values())
    assert pts["int8"]["flash_weights_bytes"] < 0.3 * pts["baseline"]["flash_weights_bytes"]
    assert pts["prune+int8 0.5"]["flash_weights_bytes"] < pts["int8"]["flash_weights_bytes"]
    assert pts["binarize all/weights"]["flash_weights_bytes"] < pts["prune+int8 0.9"]["flash_weights_bytes"]
    assert (out / "explore.html").read_text().count("<circle") == len(pts)


def test_explore_int8_model_uses_sqnr(tmp_path):
    """ad01_int8 (no labels: output SQNR against the original), pruning only."""
    rng = np.random.default_rng(0)
    data = tmp_path / "ad.npz"
    np.savez(data, x=rng.integers(-128, 128, (20, 1, 640)).astype(np.int8))
    res = ex.explore(shared_model("mlperf_tiny/ad01_int8.tflite"), data, target="host",
                     techniques=["prune"])
    assert res["metric"] == "output SQNR dB"
    pts = {p["label"]: p for p in res["points"]}
    assert pts["baseline"]["metric"] == "inf" and pts["prune 0.5"]["metric"] < 60
    assert pts["prune 0.5"]["flash_model_bytes"] < 0.7 * pts["baseline"]["flash_model_bytes"]
