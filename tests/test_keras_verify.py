"""`edgec verify model.keras` / a SavedModel compares with TensorFlow running the model
itself (and with ai-edge-litert running the file TensorFlow's converter made of it), not
with edgec's own interpreter of its import: a converter or import mistake cannot pass."""
import numpy as np
import pytest

from conftest import MLPERF
from edgec.commands.verify import verify

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def two_in_two_out(tmp_path_factory):
    """Two inputs (declared in the opposite order of their use) and two outputs."""
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(1)
    a = tf.keras.Input((6,), name="zeta")
    b = tf.keras.Input((4, 4, 2), name="alpha")
    x = L.Flatten()(L.Conv2D(3, 3, activation="relu")(b))
    y = L.Concatenate()([L.Dense(5, activation="tanh")(a), x])
    m = tf.keras.Model([a, b], [L.Dense(3, name="head_a")(y), L.Dense(2, activation="sigmoid", name="head_b")(y)])
    p = tmp_path_factory.mktemp("k") / "two.keras"
    m.save(p)
    return p


def test_keras_model_verified_against_tensorflow(two_in_two_out):
    res = verify(two_in_two_out, n=3, layers=True)
    assert res.reference == "TensorFlow (the model itself)"
    assert res.ok, [c.line() for c in res.outputs + res.layers if not c.ok]
    labels = [c.what for c in res.outputs]
    assert labels.count("output 0") == 1 and "output 1 vs ai-edge-litert (converted .tflite)" in labels
    assert len(res.outputs) == 4 and res.layers


def test_import_mistake_cannot_pass(two_in_two_out, tmp_path, monkeypatch):
    """Make the converted file wrong (another model's weights, same shapes): edgec and
    ai-edge-litert still agree with each other, TensorFlow does not."""
    from edgec.frontends import keras as fe
    real = fe.to_tflite
    m = tf.keras.models.load_model(two_in_two_out, compile=False)
    for w in m.trainable_weights:
        w.assign(w * 1.5)
    other = tmp_path / "other.keras"
    m.save(other)
    monkeypatch.setattr(fe, "to_tflite", lambda path, *a, **k: real(other, *a, **k))
    res = verify(two_in_two_out, n=3)
    tf_rows = [c for c in res.outputs if "litert" not in c.what]
    lit_rows = [c for c in res.outputs if "litert" in c.what]
    assert not res.ok and not any(c.ok for c in tf_rows) and all(c.ok for c in lit_rows)


def test_savedmodel_verified_against_tensorflow():
    """The MLPerf Tiny KWS SavedModel (written by an older Keras: TensorFlow 2's loader
    cannot restore it, a TensorFlow 1 session runs its serving signature)."""
    res = verify(MLPERF / "kws_ref_model_savedmodel", n=2)
    assert res.reference == "TensorFlow (the model itself)"
    assert res.ok, [c.line() for c in res.outputs if not c.ok]
    assert len(res.outputs) == 2
