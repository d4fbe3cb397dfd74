"""Binarized layers: bit packing, XNOR/popcount kernels bit-exact with their numpy
reference on the host and in QEMU, the Sign-pattern import from ONNX, Larq Compute
Engine flatbuffers (custom operators, flexbuffer options), --binarize on a float model,
and the issue's check: a binarized MLP trained here on the digits keeps >= 85% test
accuracy, takes 1 bit per binary weight in flash, and runs bit-exact in QEMU cortex-m4."""
import json

import numpy as np
import pytest

import bnn_digits
import digits
from conftest import have
from edgec.passes import accuracy
from edgec import data
from edgec.ops import interp
from edgec.pipeline import Options, compile_full, load, lower
from edgec.target.emulator import HostProgram
from edgec.ir.errors import EdgecError
from edgec.ir.graph import Graph, QuantParams
from edgec.ops import bnn
from edgec.passes import binarize as bz


def _host_run(g, samples, tmp_path, name="b"):
    bundle, gl = compile_full(g, Options(target="host"))
    prog = HostProgram(bundle.write(tmp_path / name), bundle.report, tmp_path / (name + "_w"))
    outs, _ = prog.run(samples)
    return outs, bundle, gl


def _assert_bit_exact(g, samples, outs):
    for s, o in zip(samples, outs):
        ref = interp.run(g, s)
        for j, name in enumerate(g.outputs):
            got, exp = o[j].reshape(-1), ref[name].reshape(-1)
            assert got.dtype == exp.dtype and np.array_equal(got.view(np.uint8), exp.view(np.uint8)), name


# --- units -------------------------------------------------------------------------

def test_pack_unpack_round_trip_and_bit_order():
    rng = np.random.default_rng(0)
    for c in (1, 31, 32, 33, 70):
        neg = rng.random((3, c)) < 0.5
        w = bnn.pack(neg)
        assert w.dtype == np.int32 and w.shape == (3, bnn.words(c))
        assert np.array_equal(bnn.unpack(w, c), neg)
        # bits past c are zero
        full = bnn.unpack(w, 32 * bnn.words(c))
        assert not full[:, c:].any()
    # channel 0 is bit 0 (LSB), channel 31 bit 31; 1 means -1
    assert bnn.pack(np.array([True] + [False] * 31))[0] == 1
    assert bnn.pack(np.array([False] * 31 + [True]))[0] == np.int32(-(1 << 31))
    assert bnn.pack(np.ones((2, 4, 40), bool), axis=1).shape == (2, 1, 40)


def _ref_binary_conv(x, w_pm1, strides, pads, pad_value):
    """An independent +/-1 convolution: explicit loops over output positions."""
    N, H, W, C = x.shape
    O, KH, KW, _ = w_pm1.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    OH = (H + pt + pb - KH) // strides[0] + 1
    OW = (W + pl + pr - KW) // strides[1] + 1
    out = np.zeros((N, OH, OW, O), np.int64)
    for oy in range(OH):
        for ox in range(OW):
            patch = xp[:, oy * strides[0]:oy * strides[0] + KH, ox * strides[1]:ox * strides[1] + KW, :]
            out[:, oy, ox, :] = np.einsum("nhwc,ohwc->no", patch, w_pm1)
    return out


def _conv_graph(rng, layout, pad_value, out, C=40, O=35, stride=1, weights_only=False):
    g = Graph("bconv")
    g.add_tensor("x", (1, C, 7, 6) if layout == "NCHW" else (1, 7, 6, C), "float32")
    g.inputs = ["x"]
    axis = 1 if layout == "NCHW" else 3
    src = "x"
    if not weights_only:
        g.add_node("BitPack", ["x"], ["xb"], {"axis": axis})
        src = "xb"
    w = g.add_const(bnn.pack(rng.random((O, 3, 3, C)) < 0.5), "w")
    attrs = dict(layout=layout, channels_in=C, strides=[stride, stride], dilations=[1, 1],
                 pads=[1, 1, 1, 1], pad_value=pad_value, out=out)
    if out == "bits":
        ins = [src, w, "", "", g.add_const(rng.integers(-30, 30, O).astype(np.int32), "t")]
    else:
        ins = [src, w, g.add_const(rng.uniform(-1, 1, O).astype(np.float32), "m"),
               g.add_const(rng.normal(size=O).astype(np.float32), "b")]
        attrs["act"] = [-2.0, 5.0]
        if out == "int8":
            attrs["quant"] = QuantParams([0.07], [-5])
            attrs["dot_clamp"] = [-40, 60]
    g.add_node("BinaryConv", ins, ["y"], attrs)
    g.outputs = ["y"]
    return g


@pytest.mark.parametrize("layout,pad_value,out,stride", [
    ("NHWC", 1, "bits", 1), ("NHWC", 0, "float32", 2), ("NCHW", 0, "int8", 1),
    ("NCHW", 1, "bits", 2), ("NHWC", 1, "int8", 1)])
def test_binary_conv_bit_exact_on_host(layout, pad_value, out, stride, tmp_path):
    rng = np.random.default_rng(hash((layout, pad_value, out, stride)) % 1000)
    g = _conv_graph(rng, layout, pad_value, out, stride=stride)
    samples = [[rng.normal(size=g.tensors["x"].shape).astype(np.float32)] for _ in range(3)]
    outs, _, _ = _host_run(g, samples, tmp_path)
    _assert_bit_exact(g, samples, outs)
    # the reference's dot products equal an independent +/-1 convolution
    x = samples[0][0] if layout == "NHWC" else np.transpose(samples[0][0], (0, 2, 3, 1))
    xs = np.where(x < 0, -1, 1)
    ws = bnn.signs(g.tensors["w"].data, 40)
    dot = _ref_binary_conv(xs, ws, [stride, stride], [1, 1, 1, 1], pad_value)
    y = interp.run(g, samples[0])["y"]
    if layout == "NCHW":
        y = np.transpose(y, (0, 2, 3, 1))
    if out == "bits":
        t = g.tensors["t"].data
        assert np.array_equal(bnn.unpack(y, 35), dot < t)
    elif out == "float32":
        m, b = g.tensors["m"].data, g.tensors["b"].data
        exp = np.clip(dot.astype(np.float32) * m + b, np.float32(-2), np.float32(5))
        assert np.array_equal(y, exp)


def test_binary_weight_layers_float_input_bit_exact(tmp_path):
    """--binarize-mode weights kernels: float inputs added/subtracted in the kernel's order."""
    rng = np.random.default_rng(3)
    g = _conv_graph(rng, "NHWC", 0, "float32", weights_only=True)
    samples = [[rng.normal(size=(1, 7, 6, 40)).astype(np.float32)] for _ in range(2)]
    outs, _, _ = _host_run(g, samples, tmp_path, "c")
    _assert_bit_exact(g, samples, outs)
    f = Graph("bfc")
    f.add_tensor("x", (2, 70), "float32")
    f.inputs = ["x"]
    f.add_node("BinaryFullyConnected", ["x", f.add_const(bnn.pack(rng.random((9, 70)) < 0.5), "w"),
                                        f.add_const(rng.uniform(0.1, 1, 9).astype(np.float32), "m"),
                                        f.add_const(np.zeros(9, np.float32), "b")], ["y"],
               dict(channels_in=70, out="float32", act=None))
    f.outputs = ["y"]
    samples = [[rng.normal(size=(2, 70)).astype(np.float32)]]
    outs, _, _ = _host_run(f, samples, tmp_path, "f")
    _assert_bit_exact(f, samples, outs)
    x = samples[0][0].astype(np.float64)
    ref = x @ bnn.signs(f.tensors["w"].data, 70).T * f.tensors["m"].data
    assert np.allclose(outs[0][0], ref, rtol=1e-5, atol=1e-5)


def test_bitpack_int8_and_bitunpack_bit_exact(tmp_path):
    rng = np.random.default_rng(4)
    g = Graph("bits")
    q = QuantParams([0.1], [7])
    g.add_tensor("x", (2, 3, 45), "int8", quant=q)
    g.inputs = ["x"]
    g.add_node("BitPack", ["x"], ["xb"], {"axis": 2})                        # threshold: zero point
    g.add_node("BitUnpack", ["xb"], ["yf"], {"channels": 45, "axis": 2})
    g.add_node("BitUnpack", ["xb"], ["yq"], {"channels": 45, "axis": 2, "dtype": "int8",
                                            "quant": QuantParams([0.02], [-3])})
    g.add_node("BitPack", ["x"], ["xc"], {"axis": 1, "threshold": [-10, 0, 10]})
    g.outputs = ["yf", "yq", "xc"]
    samples = [[rng.integers(-128, 128, (2, 3, 45)).astype(np.int8)] for _ in range(2)]
    outs, _, _ = _host_run(g, samples, tmp_path)
    _assert_bit_exact(g, samples, outs)
    r = interp.run(g, samples[0])
    assert np.array_equal(r["yf"], np.where(samples[0][0] < 7, -1.0, 1.0))
    assert set(np.unique(r["yq"])) <= {-3 - 50, -3 + 50}


# --- the issue's check: a binarized MLP trained on the digits ---------------------------------

@pytest.fixture(scope="module")
def bnn_model(tmp_path_factory):
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("bnn")
    m = bnn_digits.train(hidden=128, epochs=30)
    path = bnn_digits.to_onnx(m, d / "bnn_digits.onnx")
    _, _, xte, yte = digits.split()
    return dict(m=m, path=path, x=xte.reshape(-1, 64), y=yte, dir=d)


def test_bnn_digits_imports_as_binary_layers_and_is_bit_exact_on_host(bnn_model, tmp_path):
    m, x, y = bnn_model["m"], bnn_model["x"], bnn_model["y"]
    acc = bnn_digits.accuracy(m, x, y)
    assert acc >= 0.85, acc
    g = lower(load(bnn_model["path"]))
    ops = [n.op for n in g.nodes]
    assert ops == ["BitPack", "BinaryFullyConnected", "BinaryFullyConnected", "BinaryFullyConnected"]
    assert [g.tensors[n.outputs[0]].dtype for n in g.nodes[1:]] == ["int32", "int32", "float32"]
    assert any(t.startswith("lower_binary") for t in g.meta.transforms)
    samples = [[xi.reshape(1, 64)] for xi in x]
    outs, bundle, _ = _host_run(g, samples, tmp_path)
    got = np.stack([o[0].reshape(-1) for o in outs])
    ref = bnn_digits.reference(m, x)
    assert np.array_equal(got, ref)                      # bit-exact with the numpy reference
    assert np.mean(got.argmax(1) == y) == pytest.approx(acc)
    # the float ONNX graph computes the same network (no input sits exactly on the threshold)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(bnn_model["path"]))
    o = np.stack([sess.run(None, {"x": s[0]})[0].reshape(-1) for s in samples[:100]])
    assert np.array_equal(o.argmax(1), ref[:100].argmax(1)) and np.abs(o - ref[:100]).max() < 1e-4
    rep = bundle.report
    assert any(t.startswith("lower_binary") for t in rep["transformations"])
    bl = [L for L in rep["layers"] if L["op"] == "BinaryFullyConnected"]
    # packed weights (1 bit each) plus int16 thresholds / float scale and bias per channel
    assert [L["weights_bytes"] for L in bl] == [64 * 128 // 8 + 2 * 128, 128 * 128 // 8 + 2 * 128,
                                                128 * 10 // 8 + 8 * 10]


@pytest.mark.qemu
def test_bnn_digits_bit_exact_in_qemu_and_one_bit_per_weight(bnn_model, tmp_path):
    if not have("qemu-system-arm") or not have("arm-none-eabi-gcc"):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    from edgec.commands import run
    from edgec.report import size as report
    m, x = bnn_model["m"], bnn_model["x"]
    g = lower(load(bnn_model["path"]))
    samples = [[xi.reshape(1, 64)] for xi in x[:120]]
    outs, _, bundle, gl, info = run.run_on_target(g, Options(target="cortex-m4"), samples,
                                                       tmp_path / "run", False)
    assert info["status"] == "pass"
    got = np.stack([o[0].reshape(-1) for o in outs])
    assert np.array_equal(got, bnn_digits.reference(m, x[:120]))
    # size report of the linked firmware: the binary layers' weights are 1 bit each
    rep = report.size_report(tmp_path / "run" / "firmware" / "firmware.elf", bundle.report)
    sizes = {s["name"]: s["size"] for s in rep["symbols"]}
    wsyms = sorted(s for s in sizes if s.endswith("_wbits"))
    assert len(wsyms) == 3
    binary_weights = 64 * 128 + 128 * 128 + 128 * 10
    assert sum(sizes[s] for s in wsyms) * 8 == binary_weights
    layers = {L["index"]: L for L in rep["layers"]}
    for L in bundle.report["layers"]:
        if L["op"] == "BinaryFullyConnected":
            assert layers[L["index"]]["weights_bytes"] == L["weights_bytes"]


# --- --binarize on a float model -----------------------------------------------------------

@pytest.fixture(scope="module")
def float_mlp(tmp_path_factory):
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("mlp")
    path = digits.train_mlp_onnx(d)
    cal, test = digits.write_flat_npz(d)
    return dict(path=path, cal=cal, test=test, dir=d)


def test_binarize_float_mlp_reports_the_cost_and_runs_bit_exact(float_mlp, tmp_path, edgec_cli):
    g = lower(load(float_mlp["path"]))
    ds = data.load(g, float_mlp["test"], "eval", targets=True)
    gb, info = bz.binarize(g, bz.BinarizeConfig(layers=("hidden",), mode="xnor",
                                                calibration=str(float_mlp["cal"])))
    gb = lower(gb)
    assert [L["name"] for L in info["layers"]] == ["fc1"]
    assert "BinaryFullyConnected" in [n.op for n in gb.nodes]
    r = accuracy.evaluate(g, gb, ds, layers=False)["top1"]
    assert r["float"] >= 0.95 and r["quantized"] < r["float"]    # it costs accuracy
    samples = [s for s in ds.samples[:50]]
    outs, _, _ = _host_run(gb, samples, tmp_path)
    for s, o in zip(samples, outs):   # float layers around the binary one: float rounding only
        ref = interp.run(gb, s)[gb.outputs[0]]
        assert np.abs(o[0] - ref).max() <= 1e-4 * np.abs(ref).max()
    # the CLI: the transformation and the accuracy it cost are in report.json
    out = tmp_path / "cli"
    res = edgec_cli("build", float_mlp["path"], "--binarize", "hidden", "--calibration", float_mlp["cal"],
                    "--eval", float_mlp["test"], "--target", "host", "-o", out)
    assert res.returncode == 0, res.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["options"]["binarize"]["layers"] == ["hidden"]
    assert any(t.startswith("binarize (xnor") for t in rep["transformations"])
    assert rep["accuracy"]["top1"]["delta_points"] == pytest.approx(100 * (r["quantized"] - r["float"]))
    assert "top-1" in res.stdout


def test_binarize_refuses_without_calibration_and_unknown_layers(float_mlp):
    g = lower(load(float_mlp["path"]))
    with pytest.raises(EdgecError, match="calibration"):
        bz.binarize(g, bz.BinarizeConfig(layers=("all",), mode="xnor"))
    with pytest.raises(EdgecError, match="matches no"):
        bz.binarize(g, bz.BinarizeConfig(layers=("nope",), mode="weights"))
    gw, info = bz.binarize(g, bz.BinarizeConfig(layers=("all",), mode="weights"))
    assert len(info["layers"]) == 3 and all(n.op != "FullyConnected" for n in lower(gw).nodes)


# --- Larq Compute Engine flatbuffers ---------------------------------------------------------

def _lce_graph(rng):
    """float [1, 8, 8, 20] -> LceQuantize -> LceBconv2d 3x3 SAME (pad +1, packed out)
    -> LceBconv2d 3x3 VALID (float out, RELU) -> LceQuantize -> LceBconv2d 1x1 (int8 out),
    and LceDequantize of the packed tensor as a second output."""
    g = Graph("lce")
    g.add_tensor("x", (1, 8, 8, 20), "float32")
    g.inputs = ["x"]
    g.add_node("BitPack", ["x"], ["xb"], {"axis": -1})
    c = dict(layout="NHWC", dilations=[1, 1], strides=[1, 1], group=1, act=None)
    w1 = g.add_const(bnn.pack(rng.random((40, 3, 3, 20)) < 0.5), "w1")
    t1 = g.add_const((180 - 2 * rng.integers(80, 100, 40)).astype(np.int32), "t1")
    g.add_node("BinaryConv", ["xb", w1, "", "", t1], ["h1"],
               dict(c, channels_in=20, pads=[1, 1, 1, 1], pad_value=1, out="bits"))
    w2 = g.add_const(bnn.pack(rng.random((24, 3, 3, 40)) < 0.5), "w2")
    m2 = g.add_const(rng.uniform(0.01, 0.1, 24).astype(np.float32), "m2")
    b2 = g.add_const(rng.normal(0, 0.5, 24).astype(np.float32), "b2")
    g.add_node("BinaryConv", ["h1", w2, m2, b2], ["h2"],
               dict(c, channels_in=40, pads=[0, 0, 0, 0], pad_value=1, out="float32",
                    dot_clamp=[0, 360]))
    g.add_node("BitPack", ["h2"], ["h2b"], {"axis": -1})
    w3 = g.add_const(bnn.pack(rng.random((10, 1, 1, 24)) < 0.5), "w3")
    m3 = g.add_const(rng.uniform(0.5, 1, 10).astype(np.float32), "m3")
    b3 = g.add_const(rng.normal(0, 1, 10).astype(np.float32), "b3")
    g.add_node("BinaryConv", ["h2b", w3, m3, b3], ["y"],
               dict(c, channels_in=24, pads=[0, 0, 0, 0], pad_value=1, out="int8",
                    quant=QuantParams([0.25], [2])))
    g.add_node("BitUnpack", ["h1"], ["h1f"], {"channels": 40, "axis": -1})
    g.outputs = ["y", "h1f"]
    return g


def _lce_numpy(x, g):
    """Larq Compute Engine's definitions, written out: bitpacked popcount accumulators,
    thresholds on the popcount, float transform float(clamp(K - 2 * popcount)) * m + b."""
    d = {n: g.tensors[n].data for n in g.tensors if g.tensors[n].is_const}
    s0 = np.where(x < 0, -1, 1)
    wt1 = bnn.signs(d["w1"], 20)
    K1 = 9 * 20
    dot1 = _ref_binary_conv(s0, wt1, [1, 1], [1, 1, 1, 1], 1)
    popcount1 = (K1 - dot1) // 2
    # threshold input in the LCE form (popcount > thr), recovered from the IR's dot form
    thr1 = (K1 - d["t1"].astype(np.int64)) // 2
    h1 = np.where(popcount1 > thr1, -1, 1)
    dot2 = np.clip(_ref_binary_conv(h1, bnn.signs(d["w2"], 40), [1, 1], [0, 0, 0, 0], 1), 0, 360)
    h2 = dot2.astype(np.float32) * d["m2"] + d["b2"]
    s2 = np.where(h2 < 0, -1, 1)
    dot3 = _ref_binary_conv(s2, bnn.signs(d["w3"], 24), [1, 1], [0, 0, 0, 0], 1)
    yq = dot3.astype(np.float32) * np.float32(d["m3"] / 0.25).astype(np.float32) + \
        np.float32(d["b3"] / 0.25 + 2).astype(np.float32)
    r = np.where(yq >= 0, np.floor(yq.astype(np.float64) + 0.5), -np.floor(-yq.astype(np.float64) + 0.5))
    return np.clip(r, -128, 127).astype(np.int8), h1.astype(np.float32)


def test_lce_flatbuffer_import_bit_exact_with_lce_definitions(tmp_path):
    from edgec.exporters import tflite as tfl_out
    rng = np.random.default_rng(7)
    g = _lce_graph(rng)
    data = tfl_out.to_bytes(g)
    # the file holds LCE custom operators with flexbuffer options, as LCE's converter writes
    import tflite
    model = tflite.Model.GetRootAs(data, 0)
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    assert sorted(c.decode() for c in codes if c) == ["LceBconv2d", "LceDequantize", "LceQuantize"]
    path = tmp_path / "lce.tflite"
    path.write_bytes(data)
    g2 = lower(load(path))
    assert [n.op for n in g2.nodes].count("BinaryConv") == 3
    assert [n.attrs["pad_value"] for n in g2.nodes if n.op == "BinaryConv"] == [1, 1, 1]
    samples = [[rng.normal(size=(1, 8, 8, 20)).astype(np.float32)] for _ in range(3)]
    outs, _, _ = _host_run(g2, samples, tmp_path)
    for s, o in zip(samples, outs):
        y, h1 = _lce_numpy(s[0], g)
        assert np.array_equal(o[0].reshape(y.shape), y)
        assert np.array_equal(o[1].reshape(h1.shape), h1)


def test_lce_options_are_checked(tmp_path):
    """A LceBconv2d without its required options is one clear error."""
    from edgec.exporters import tflite as tfl_out
    rng = np.random.default_rng(1)
    g = _lce_graph(rng)
    w = tfl_out.Writer(g)
    orig = w.custom_op

    def drop(name, ins, outs, options=None, version=1):
        if options:
            options = {k: v for k, v in options.items() if k != "channels_in"}
        return orig(name, ins, outs, options, version)
    w.custom_op = drop
    for name in g.inputs + g.outputs:
        w.tensor(name)
    for n in g.nodes:
        tfl_out.EXPORTERS[n.op](w, n)
    p = tmp_path / "bad.tflite"
    p.write_bytes(w.finish())
    with pytest.raises(EdgecError, match="channels_in"):
        load(p)


# --- a binarized CNN in ONNX (NCHW, zero padding, batch norm, flatten) ------------------------

def _bcnn_onnx(path, rng):
    """x [1, 3, 10, 10] -> Sign -> Conv 3x3 pad 1 (+/-1) -> Mul/Add -> Sign -> Conv 3x3 stride 2
    pad 1 (+/-alpha per channel) -> BatchNormalization -> Sign -> Flatten -> Gemm (+/-1) -> Add."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits = []

    def c(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    pm = lambda *s: np.where(rng.random(s) < 0.5, -1.0, 1.0)  # noqa: E731
    nodes = [
        helper.make_node("Sign", ["x"], ["s0"]),
        helper.make_node("Conv", ["s0", c("w1", pm(16, 3, 3, 3))], ["z1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["z1", c("k1", rng.uniform(0.05, 0.2, (1, 16, 1, 1)))], ["u1"]),
        helper.make_node("Add", ["u1", c("c1", rng.normal(0, 0.5, (1, 16, 1, 1)))], ["v1"]),
        helper.make_node("Sign", ["v1"], ["s1"]),
        helper.make_node("Conv", ["s1", c("w2", pm(40, 16, 3, 3) * rng.uniform(0.5, 2, (40, 1, 1, 1)))],
                         ["z2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["z2", c("g", rng.uniform(0.5, 1.5, 40)),
                                                c("bt", rng.normal(0, 1, 40)), c("mu", rng.normal(0, 3, 40)),
                                                c("var", rng.uniform(1, 9, 40))], ["b2"]),
        helper.make_node("Sign", ["b2"], ["s2"]),
        helper.make_node("Flatten", ["s2"], ["f"]),
        helper.make_node("Gemm", ["f", c("w3", pm(10, 40 * 25))], ["z3"], transB=1),
        helper.make_node("Add", ["z3", c("c3", rng.normal(0, 1, 10))], ["y"]),
    ]
    graph = helper.make_graph(nodes, "bcnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_binarized_cnn_onnx_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(11)
    path = _bcnn_onnx(tmp_path / "bcnn.onnx", rng)
    g = lower(load(path))
    ops = [n.op for n in g.nodes]
    assert ops.count("BinaryConv") == 2 and ops.count("BinaryFullyConnected") == 1 and "Sign" not in ops
    convs = [n for n in g.nodes if n.op == "BinaryConv"]
    # the first writes packed bits (its Sign folded into thresholds); the second feeds a Flatten,
    # whose packing runs along the flattened axis, not the channels: float out, then BitPack
    assert [g.tensors[n.outputs[0]].dtype for n in convs] == ["int32", "float32"]
    assert convs[0].attrs["layout"] == "NCHW" and convs[0].attrs["pad_value"] == 0
    sess = ort.InferenceSession(str(path))
    samples = [[rng.normal(size=(1, 3, 10, 10)).astype(np.float32)] for _ in range(8)]
    outs, _, _ = _host_run(g, samples, tmp_path)
    _assert_bit_exact(g, samples, outs)
    for s, o in zip(samples, outs):
        ref = sess.run(None, {"x": s[0]})[0]
        assert np.abs(o[0] - ref).max() <= 1e-4 * np.abs(ref).max()
    # binary weights of the three layers: 1 bit each (words of 32 along the input channels)
    wb = [g.tensors[n.inputs[1]].nbytes for n in g.nodes if n.op.startswith("Binary")]
    assert wb == [16 * 9 * 4, 40 * 9 * 4, 10 * 4 * 32]


@pytest.mark.qemu
def test_binarized_cnn_bit_exact_in_qemu(tmp_path):
    if not have("qemu-system-arm") or not have("arm-none-eabi-gcc"):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    from edgec.commands import run
    rng = np.random.default_rng(12)
    g = lower(load(_bcnn_onnx(tmp_path / "bcnn.onnx", rng)))
    samples = [[rng.normal(size=(1, 3, 10, 10)).astype(np.float32)] for _ in range(6)]
    outs, _, _, gl, info = run.run_on_target(g, Options(target="cortex-m4"), samples, tmp_path / "q", False)
    _assert_bit_exact(gl, samples, outs)
