"""Real models compiled with edgec, built with the host gcc, run and compared with
the reference runtimes, every intermediate tensor included."""
import numpy as np
import pytest

from conftest import EXAMPLE_KWS, MLPERF, shared_model
from edgec.commands.verify import verify

INT8 = ["kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
        "ad01_int8.tflite"]
FLOAT = ["vww_96_float.tflite", "pretrainedResnet.tflite", "ad01_fp32.tflite"]


def _check(res, min_layers):
    assert res.outputs, "no outputs compared"
    for c in res.outputs + res.layers:
        assert c.ok, c.line()
    assert len(res.layers) >= min_layers, f"only {len(res.layers)} intermediate tensors compared"


def test_bundled_example_bit_exact():
    """Works without ../shared: the KWS model shipped with the examples."""
    res = verify(EXAMPLE_KWS, n=8, layers=True, compare_litert=False)
    assert res.reference == "TFLite Micro interpreter"
    _check(res, 12)
    assert all(c.exact and c.max_abs == 0 for c in res.outputs + res.layers)


@pytest.mark.slow
@pytest.mark.parametrize("name", INT8)
def test_mlperf_int8_bit_exact_50_inputs(name):
    res = verify(shared_model(f"mlperf_tiny/{name}"), n=50, layers=True, seed=7)
    _check(res, 10)
    assert all(c.exact and c.mismatches == 0 for c in res.outputs + res.layers)


@pytest.mark.parametrize("name", ["ad01_int8.tflite"])
def test_mlperf_int8_quick(name):
    res = verify(shared_model(f"mlperf_tiny/{name}"), n=5, layers=True)
    _check(res, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOAT)
def test_mlperf_float_within_tolerance(name):
    res = verify(shared_model(f"mlperf_tiny/{name}"), n=10, layers=True, rtol=1e-4)
    _check(res, 10)


def test_mnist_onnx_against_its_test_data(tmp_path):
    import onnx
    from onnx import numpy_helper

    from edgec.pipeline import Options, compile_full, load
    from edgec.target.emulator import HostProgram
    model = shared_model("onnx/mnist-8.onnx")
    d = model.parent / "mnist-8_test_data_set_0"
    x = numpy_helper.to_array(onnx.load_tensor(str(d / "input_0.pb")))
    y = numpy_helper.to_array(onnx.load_tensor(str(d / "output_0.pb")))
    bundle, g = compile_full(load(model), Options(target="host"))
    prog = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w")
    (out,), _ = prog.run([[x]])[0][0], None
    assert np.abs(out - y).max() <= 1e-4 * np.abs(y).max()
    assert out.argmax() == y.argmax()


def test_mnist_onnx_against_onnxruntime():
    res = verify(shared_model("onnx/mnist-8.onnx"), n=10, layers=True)
    _check(res, 4)


def test_numpy_reference_interpreter_matches_tflm():
    """edgec's own graph interpreter is bit-exact with TFLite Micro on int8 models."""
    from edgec.ops import interp
    from edgec.commands import reference
    from edgec.pipeline import load, lower
    from edgec.data import random_samples
    g = lower(load(EXAMPLE_KWS))
    samples = random_samples(g, 3, seed=3)
    ref, _ = reference.run_tflm(EXAMPLE_KWS, samples)
    for s, r in zip(samples, ref):
        out = interp.run(g, s)[g.outputs[0]]
        assert np.array_equal(out, r[0])


def test_hybrid_tflite_model_is_said_to_differ():
    """kws_ref_model_float32 is a dynamic-range ("hybrid") model: int8 CONV_2D weights,
    float activations. edgec computes those layers in float with the dequantized weights;
    TFLite quantizes their inputs at run time. The output is close to TFLite's but not
    within 1e-4, and both the build report and verify say why."""
    from edgec.pipeline import compile_full, load
    from edgec.pipeline import Options
    path = shared_model("mlperf_tiny/kws_ref_model_float32.tflite")
    bundle, _ = compile_full(load(path), Options(target="host", name="m"))
    notes = [t for t in bundle.report["transformations"] if t.startswith("hybrid (dynamic-range)")]
    assert len(notes) == 1 and "5 float layer(s)" in notes[0]
    res = verify(path, n=3)
    assert res.reference == "ai-edge-litert (BUILTIN_REF)"
    assert any(n.startswith("hybrid (dynamic-range)") for n in res.notes)
    # close to TFLite's hybrid result (a few % of the largest output), not exact
    assert all(c.max_abs < 0.05 * max(c.ref_max, 1e-6) for c in res.outputs), [c.line() for c in res.outputs]
