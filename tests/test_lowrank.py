"""Low-rank factorization: SVD of FullyConnected and 1x1 Conv weights into two thinner
layers, the compiled result checked against the factorized graph, and the issue's
check: low-rank on the digits MLP and on ad01 cuts the weights by at least 40%, with
the accuracy delta in report.json."""
import json

import numpy as np
import pytest

import digits
from conftest import have, shared_model
from edgec import data
from edgec.ops import interp
from edgec.pipeline import Options, compile_full, load, lower
from edgec.passes.compress import CompressConfig, apply
from edgec.target.emulator import HostProgram
from edgec.ir.errors import EdgecError
from edgec.ir.graph import Graph
from edgec.passes import lowrank as lr
from edgec.passes import quantize as qz
from edgec.data import random_samples


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("mlp")
    path = digits.train_mlp_onnx(d)
    cal, test = digits.write_flat_npz(d)
    return dict(path=path, cal=cal, test=test)


def test_spec_parsing():
    assert lr.LowRankConfig.parse(["0.9"]).energy == 0.9
    assert lr.LowRankConfig.parse(["rank:16", "fc1=4", "fc2=0.5"]).layers == {"fc1": 4, "fc2": 0.5}
    for bad in (["1.5"], ["0"], ["rank:x"], ["0.9", "rank:3"], ["7"], []):
        with pytest.raises(EdgecError):
            lr.LowRankConfig.parse(bad)


def test_choose_rank_by_energy():
    s = np.array([4.0, 2.0, 1.0, 1.0])          # energies 16, 4, 1, 1 of 22
    assert lr.choose_rank(s, 0.7)[0] == 1
    assert lr.choose_rank(s, 0.9)[0] == 2
    assert lr.choose_rank(s, 1.0)[0] == 4
    assert lr.choose_rank(s, 9) == (4, 1.0)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_pointwise_conv_factorized_exactly_at_full_rank_and_compiled(layout, tmp_path):
    rng = np.random.default_rng(0)
    g = Graph("pw")
    shape = (1, 24, 5, 6) if layout == "NCHW" else (1, 5, 6, 24)
    g.add_tensor("x", shape, "float32")
    g.inputs = ["x"]
    # a rank-4 matrix of 32 x 24: rank 4 keeps everything and saves parameters
    W = (rng.normal(size=(32, 4)) @ rng.normal(size=(4, 24))).astype(np.float32)
    w = W.reshape(32, 24, 1, 1) if layout == "NCHW" else W.reshape(32, 1, 1, 24)
    g.add_node("Conv", ["x", g.add_const(w, "w"), g.add_const(rng.normal(size=32).astype(np.float32), "b")],
               ["y"], dict(layout=layout, strides=[2, 1], dilations=[1, 1], pads=[1, 0, 0, 1], group=1,
                           act=[0.0, float("inf")]))
    g.outputs = ["y"]
    g2, info = lr.factorize(g, lr.LowRankConfig.parse(["0.999999"]))
    assert [L["rank"] for L in info["layers"]] == [4]
    assert [n.op for n in g2.nodes] == ["Conv", "Conv"] and g2.nodes[0].attrs["act"] is None
    x = rng.normal(size=shape).astype(np.float32)
    a, b = interp.run(g, [x])["y"], interp.run(g2, [x])["y"]
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    bundle, gl = compile_full(g2, Options(target="host"))
    prog = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w")
    o, _ = prog.run([[x]])
    assert np.abs(o[0][0] - b).max() <= 1e-5 * np.abs(b).max()
    # a rank that saves nothing is left alone
    g3, info = lr.factorize(g, lr.LowRankConfig.parse(["rank:20"]))
    assert not info["layers"] and info["skipped"] and [n.op for n in g3.nodes] == ["Conv"]


def test_digits_mlp_low_rank_cuts_40_percent_with_accuracy_delta(mlp, tmp_path, edgec_cli):
    g = lower(load(mlp["path"]))
    g2, info = apply(g, CompressConfig(low_rank=lr.LowRankConfig.parse(["rank:16"])))
    assert info["weights_cut"] >= 0.40, info
    out = tmp_path / "b"
    r = edgec_cli("build", mlp["path"], "--low-rank", "rank:16", "--eval", mlp["test"], "--target", "host",
                  "-o", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["options"]["low_rank"] == {"rank": 16}
    assert rep["compression"]["weights_cut"] >= 0.40
    assert any(t.startswith("low_rank (SVD, rank 16: 2 layers factorized") for t in rep["transformations"])
    top1 = rep["accuracy"]["top1"]
    assert top1["float"] >= 0.95 and abs(top1["delta_points"]) <= 3.0, top1
    assert "original" in r.stdout and "compressed" in r.stdout and "parameters:" in r.stdout
    # the compiled model against the factorized graph (edgec verify --low-rank)
    r = edgec_cli("verify", mlp["path"], "--low-rank", "rank:16", "--inputs", mlp["test"], "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    v = json.loads(r.stdout)
    assert v["ok"] and v["reference"].startswith("edgec transformed-graph") and v["samples"] == 360


def test_low_rank_then_int8_is_bit_exact_with_its_reference(mlp, tmp_path):
    g = lower(load(mlp["path"]))
    g2, _ = apply(g, CompressConfig(low_rank=lr.LowRankConfig.parse(["0.8"])))
    gq = qz.quantize(g2, qz.QuantConfig(calibration=str(mlp["cal"]))).graph
    bundle, gl = compile_full(gq, Options(target="host"))
    prog = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w")
    ds = data.load(g, mlp["test"], "eval")
    samples = data.encode(gq, ds.samples[:40])
    outs, _ = prog.run(samples)
    for s, o in zip(samples, outs):
        assert np.array_equal(o[0], interp.run(gl, s)[gl.outputs[0]])


def test_ad01_low_rank_cuts_40_percent(tmp_path):
    g = lower(load(shared_model("mlperf_tiny/ad01_fp32.tflite")))
    cc = CompressConfig(low_rank=lr.LowRankConfig.parse(["0.9"]))
    bundle, gl = compile_full(g, Options(target="host", compress=cc))
    c = bundle.report["compression"]
    assert c["weights_cut"] >= 0.40 and len(c["low_rank"]["layers"]) == 10
    assert bundle.report["weights_bytes"] < 0.65 * compile_full(g, Options(target="host"))[0].report["weights_bytes"]
    prog = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w")
    samples = random_samples(gl, 3, seed=0)
    outs, _ = prog.run(samples)
    for s, o in zip(samples, outs):
        ref = interp.run(gl, s)[gl.outputs[0]]
        assert np.abs(o[0] - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.qemu
def test_low_rank_digits_mlp_in_qemu(mlp, tmp_path):
    if not have("qemu-system-arm") or not have("arm-none-eabi-gcc"):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    from edgec.commands.verify import verify
    cc = CompressConfig(low_rank=lr.LowRankConfig.parse(["rank:16"]))
    res = verify(mlp["path"], target="cortex-m4", inputs_file=str(mlp["test"]), compress=cc,
                 work_dir=str(tmp_path))
    assert res.ok and res.extra["firmware"]["status"] == "pass"
