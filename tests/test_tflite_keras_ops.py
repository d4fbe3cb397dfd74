"""What the TensorFlow converter writes for everyday Keras layers, compiled by edgec and
run on the host: Flatten with an unknown batch (SHAPE, STRIDED_SLICE, PACK computing
the RESHAPE target), GlobalAveragePooling2D (MEAN), and MEAN / SUM / REDUCE_MAX over
other axes, float against ai-edge-litert and int8 bit for bit against the TFLite
Micro interpreter, every intermediate tensor included."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edgec.ops.slice import strided_slice_params
from edgec.commands.verify import verify

tf = pytest.importorskip("tensorflow")


def _convert(model, shape, path_f, path_q):
    rng = np.random.default_rng(0)
    path_f.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.normal(size=(1,) + shape).astype(np.float32)]
                                           for _ in range(30))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path_q.write_bytes(conv.convert())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("keras")
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    out = {}
    inp = tf.keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, activation="relu")(inp)
    x = L.Flatten()(x)
    out["flatten"] = tf.keras.Model(inp, L.Dense(3)(x)), (8, 8, 3)
    inp = tf.keras.Input((7, 5, 6))
    x = L.Conv2D(8, 3, activation="relu")(inp)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Flatten()(x)
    out["gap"] = tf.keras.Model(inp, L.Dense(3)(x)), (7, 5, 6)
    inp = tf.keras.Input((6, 4, 5))
    x = L.Conv2D(6, 1)(inp)
    outs = [L.Lambda(lambda t: tf.reduce_mean(t, axis=[1]))(x),
            L.Lambda(lambda t: tf.reduce_sum(t, axis=[2], keepdims=True))(x),
            L.Lambda(lambda t: tf.reduce_max(t, axis=[-1]))(x),
            L.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2, 3], keepdims=True))(x)]
    out["reduce"] = tf.keras.Model(inp, outs), (6, 4, 5)
    inp = tf.keras.Input((32, 4))
    x = L.MaxPooling1D(2)(L.Conv1D(8, 3, activation="relu")(inp))
    out["conv1d"] = tf.keras.Model(inp, L.Dense(2)(L.GlobalMaxPooling1D()(x))), (32, 4)
    inp = tf.keras.Input((4, 4, 3))
    out["upsample"] = tf.keras.Model(inp, L.Conv2D(2, 1)(L.UpSampling2D()(inp))), (4, 4, 3)
    inp = tf.keras.Input((8, 8, 3))
    x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(4, 3)(inp))
    x = L.LeakyReLU(0.1)(L.Cropping2D(1)(L.ZeroPadding2D(2)(x)))
    out["prelu_leaky"] = tf.keras.Model(inp, x), (8, 8, 3)
    inp = tf.keras.Input((16,))
    out["leaky"] = tf.keras.Model(inp, L.Dense(4)(L.LeakyReLU(0.1)(L.Dense(8)(inp)))), (16,)
    # int8 activations as the converter writes them (issue 17): LOGISTIC, TANH, HARD_SWISH
    # (ELU: ai-edge-litert has no float ELU to check against; tests/test_qelu.py)
    inp = tf.keras.Input((16,))
    out["sigmoid_classifier"] = tf.keras.Model(
        inp, L.Dense(1, activation="sigmoid")(L.Dense(8, activation="relu")(inp))), (16,)
    inp = tf.keras.Input((16,))
    out["tanh"] = tf.keras.Model(inp, L.Dense(3)(L.Dense(8, activation="tanh")(inp))), (16,)
    inp = tf.keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, activation="hard_swish")(inp)
    out["hard_swish"] = tf.keras.Model(inp, L.Dense(2)(L.Flatten()(x))), (8, 8, 3)
    paths = {}
    for name, (m, shape) in out.items():
        pf, pq = d / f"{name}_f.tflite", d / f"{name}_q.tflite"
        _convert(m, shape, pf, pq)
        paths[name] = (pf, pq)
    return paths


@pytest.mark.parametrize("name,ops", [("flatten", {"SHAPE", "STRIDED_SLICE", "PACK"}),
                                      ("gap", {"MEAN", "SHAPE", "STRIDED_SLICE", "PACK"}),
                                      ("reduce", {"MEAN", "SUM", "REDUCE_MAX"})])
def test_keras_ops_compile_and_match(models, name, ops):
    from edgec.commands.inspect import inspect
    pf, pq = models[name]
    for p in (pf, pq):
        info = inspect(str(p))
        assert ops <= set(info["source_ops"]), info["source_ops"]
        assert not info.get("unsupported")
    res = verify(pf, n=10, layers=True)
    assert res.reference == "ai-edge-litert (BUILTIN_REF)"
    assert res.outputs and all(c.ok for c in res.outputs + res.layers), [c.line() for c in res.outputs]
    res = verify(pq, n=20, layers=True, compare_litert=False)
    assert res.reference == "TFLite Micro interpreter"
    assert all(c.exact and c.mismatches == 0 for c in res.outputs + res.layers), \
        [c.line() for c in res.outputs + res.layers if not c.exact]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4).flatmap(lambda shape: st.tuples(
    st.just(shape),
    st.lists(st.tuples(st.integers(-8, 8), st.integers(-8, 8), st.sampled_from([-3, -2, -1, 1, 2, 3])),
             min_size=1, max_size=len(shape)),
    st.integers(0, 15), st.integers(0, 15), st.integers(0, 15))))
def test_strided_slice_semantics_match_tensorflow(case):
    shape, spec, bm, em, sm = case
    begin = [b for b, _, _ in spec]
    end = [e for _, e, _ in spec]
    strides = [s for _, _, s in spec]
    n = len(spec)
    bm, em, sm = bm & ((1 << n) - 1), em & ((1 << n) - 1), sm & ((1 << n) - 1)
    x = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    try:
        want = tf.strided_slice(x, begin, end, strides, begin_mask=bm, end_mask=em,
                                shrink_axis_mask=sm).numpy()
    except Exception:  # noqa: BLE001 - TensorFlow rejects it (e.g. a shrink index out of range)
        assume(False)
    st_, sp, sz, drop = strided_slice_params(shape, begin, end, strides, bm, em, sm)
    idx = tuple(np.arange(a, a + c * s, s)[:c] if c else np.arange(0) for a, s, c in zip(st_, sp, sz))
    got = x[np.ix_(*idx)].reshape([c for d, c in enumerate(sz) if d not in drop])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,ops,int8", [
    ("conv1d", {"EXPAND_DIMS", "REDUCE_MAX", "MAX_POOL_2D"}, "exact"),
    ("upsample", {"TILE"}, "tflm-cannot"),  # TFLite Micro fails to allocate it: nothing to compare
    ("prelu_leaky", {"PRELU", "LEAKY_RELU", "PAD", "STRIDED_SLICE"}, "exact"),
    ("leaky", {"LEAKY_RELU", "FULLY_CONNECTED"}, "exact"),
    ("sigmoid_classifier", {"LOGISTIC", "FULLY_CONNECTED"}, "exact"),
    ("tanh", {"TANH", "FULLY_CONNECTED"}, "exact"),
    ("hard_swish", {"HARD_SWISH", "CONV_2D"}, "exact"),
])
def test_more_keras_layers(models, name, ops, int8):
    """Conv1D, UpSampling2D, PReLU, LeakyReLU, ZeroPadding2D, Cropping2D: float against
    ai-edge-litert; int8 bit for bit against TFLite Micro where edgec has the int8 kernels,
    else a clean list of what is not supported."""
    from edgec.ir.errors import EdgecError
    from edgec.commands.inspect import inspect
    pf, pq = models[name]
    assert ops <= set(inspect(str(pf))["source_ops"])
    res = verify(pf, n=10, layers=True)
    assert res.outputs and all(c.ok for c in res.outputs + res.layers), [c.line() for c in res.outputs]
    if int8 == "exact":
        res = verify(pq, n=20, layers=True, compare_litert=False)
        assert all(c.exact and c.mismatches == 0 for c in res.outputs + res.layers)
    else:
        with pytest.raises(EdgecError, match="cannot run this model"):
            verify(pq, n=2)
