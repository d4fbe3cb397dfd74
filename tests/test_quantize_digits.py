"""The issue's real-dataset check: a small CNN trained with Keras on scikit-learn's
8x8 digits, read by edgec's Keras frontend, quantized by edgec (int8, calibrated on
training images), compiled to C and run: it must lose at most 1 point of test
accuracy and be bit-exact with edgec's quantized-graph reference (and with the
TFLite Micro interpreter when exported as TFLite, in QEMU when available)."""
import json

import numpy as np
import pytest

import digits
from conftest import shared_model
from edgec.passes import accuracy
from edgec import data
from edgec.ops import interp
from edgec.pipeline import Options, compile_full, load, lower
from edgec.target.emulator import HostProgram
from edgec.passes import quantize as qz

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    pytest.importorskip("tensorflow")
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("digits")
    path = digits.train_keras(d)
    cal, test = digits.write_npz(d)
    g = lower(load(path))
    res = qz.quantize(g, qz.QuantConfig(calibration=str(cal)))
    return dict(dir=d, path=path, cal=cal, test=test, g=g, gq=res.graph, info=res.info)


def test_keras_frontend_matches_keras(digits_model):
    import keras
    m = keras.models.load_model(digits_model["path"])
    _, _, xte, yte = digits.split()
    ref = m.predict(xte[:50], verbose=0)
    g = digits_model["g"]
    assert g.meta.format == "keras" and g.tensors[g.inputs[0]].shape == (1, 8, 8, 1)
    got = np.concatenate([interp.run(g, [x[None]])[g.outputs[0]] for x in xte[:50]])
    assert np.abs(got - ref).max() < 1e-4


def test_digits_int8_loses_at_most_one_point_and_runs_bit_exact(digits_model, tmp_path):
    g, gq = digits_model["g"], digits_model["gq"]
    ds = data.load(g, digits_model["test"], "eval", targets=True)
    rep = accuracy.evaluate(g, gq, ds)
    top1 = rep["top1"]
    assert top1["float"] >= 0.95, top1
    assert top1["quantized"] >= top1["float"] - 0.01, top1
    assert digits_model["info"]["int8_layers"] >= 9 and not digits_model["info"]["float_layers"]
    # the compiled C on the host, all 360 test images: bit-exact, same accuracy
    bundle, _ = compile_full(gq, Options(target="host"))
    prog = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w")
    samples = data.encode(gq, ds.samples)
    outs, _ = prog.run(samples)
    ref = [interp.run(gq, s)[gq.outputs[0]] for s in samples]
    assert all(np.array_equal(o[0], r) for o, r in zip(outs, ref))
    c_top1 = np.mean([int(o[0].argmax()) == int(y) for o, y in zip(outs, ds.labels)])
    assert c_top1 == pytest.approx(top1["quantized"])
    # the flash the weights take: int8 bundle vs float bundle
    fb, _ = compile_full(g, Options(target="host"))
    assert bundle.report["weights_bytes"] <= 0.3 * fb.report["weights_bytes"]


def test_digits_cli_build_with_eval(digits_model, edgec_cli, tmp_path):
    d = digits_model
    out = tmp_path / "b"
    r = edgec_cli("build", d["path"], "--quantize", "int8", "--calibration", d["cal"], "--eval",
                  d["test"], "--target", "host", "-o", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"]["format"] == "keras"
    assert rep["accuracy"]["top1"]["delta_points"] >= -1.0
    assert "top-1 accuracy: float" in r.stdout


def test_digits_tflite_export_bit_exact_with_tflite_micro(digits_model, tmp_path):
    """Exported as TFLite, the quantized model runs bit-exact in the TFLite Micro
    interpreter against edgec's quantized-graph reference."""
    exp = pytest.importorskip("edgec.exporters.tflite",
                              reason="the TFLite exporter (edgec.exporters.tflite) is not in this build")
    from edgec.commands import reference
    gq = digits_model["gq"]
    path = tmp_path / "q.tflite"
    exp.save(gq, path)
    ds = data.load(digits_model["g"], digits_model["test"], "eval")
    samples = data.encode(gq, ds.samples[:100])
    outs, _ = reference.run_tflm(path, samples)
    for s, o in zip(samples, outs):
        assert np.array_equal(np.asarray(o[0]).reshape(-1), interp.run(gq, s)[gq.outputs[0]].reshape(-1))


@pytest.mark.qemu
def test_digits_int8_bit_exact_in_qemu_cortex_m4(digits_model, tmp_path):
    run = pytest.importorskip("edgec.commands.run", reason="QEMU firmware support not in this build")
    from conftest import have
    if not have("qemu-system-arm") or not have("arm-none-eabi-gcc"):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    gq = digits_model["gq"]
    ds = data.load(digits_model["g"], digits_model["test"], "eval", targets=True)
    samples = data.encode(gq, ds.samples[:60])
    outs, _, _, _, _ = run.run_on_target(gq, Options(target="cortex-m4", name="model"), samples,
                                              tmp_path, False)
    for s, o in zip(samples, outs):
        assert np.array_equal(np.asarray(o[0]).reshape(-1), interp.run(gq, s)[gq.outputs[0]].reshape(-1))


def test_savedmodel_kws_compiles_and_matches_the_hybrid_tflite(tmp_path):
    """The MLPerf Tiny KWS SavedModel (float) compiles; its outputs agree with the
    same network's TFLite file (hybrid int8-weight convs) up to that file's weight rounding."""
    pytest.importorskip("tensorflow")
    sm = shared_model("mlperf_tiny/kws_ref_model_savedmodel")
    g = lower(load(sm))
    assert g.meta.format == "savedmodel" and g.tensors[g.inputs[0]].shape == (1, 49, 10, 1)
    bundle, _ = compile_full(g, Options(target="host"))
    prog = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w")
    hybrid = lower(load(shared_model("mlperf_tiny/kws_ref_model_float32.tflite")))
    rng = np.random.default_rng(0)
    xs = [[rng.uniform(-40, 40, (1, 49, 10, 1)).astype(np.float32)] for _ in range(10)]
    outs, _ = prog.run(xs)
    agree, diffs = 0, []
    for x, o in zip(xs, outs):
        ref = interp.run(g, x)[g.outputs[0]]
        assert np.abs(o[0] - ref).max() <= 1e-4
        hy = interp.run(hybrid, x)[hybrid.outputs[0]]
        agree += int(o[0].argmax() == hy.argmax())
        diffs.append(np.abs(o[0] - hy).mean())
    # random features are far from real MFCCs and saturate the softmax, where the hybrid's
    # int8 conv weights flip near ties: the same network agrees far above chance (1/12)
    assert agree >= 6 and np.mean(diffs) < 0.1, (agree, diffs)


def test_no_tensorflow_gives_install_hint(edgec_cli, tmp_path):
    """Without the tf extra, a Keras model gets one line saying how to install it."""
    fake = tmp_path / "site"
    (fake / "tensorflow").mkdir(parents=True)
    (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('No module named tensorflow')\n")
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04 not really a keras file")
    import os
    env = {"PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    r = edgec_cli("build", tmp_path / "m.keras", "-o", tmp_path / "o", env=env)
    assert r.returncode == 2, r.stderr
    assert "pip install 'edgec[tf]'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
