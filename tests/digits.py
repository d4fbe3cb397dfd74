"""A real dataset for the quantization tests: scikit-learn's 8x8 handwritten digits
(1,797 images, shipped with scikit-learn, no download) and a small CNN trained on it.

The Keras model (``tf`` extra) is the one the issue asks for: trained here, saved
as ``.keras``, read by edgec's Keras frontend.  Data layout is NHWC [N, 8, 8, 1],
pixel values scaled to [0, 1]."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def split(seed: int = 0):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    n_test = 360
    te, tr = idx[:n_test], idx[n_test:]
    return x[tr], y[tr], x[te], y[te]


def train_keras(out_dir: Path, epochs: int = 40, seed: int = 0) -> Path:
    """Train the CNN and save it as ``digits.keras`` (deterministic on CPU)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    keras.utils.set_random_seed(seed)
    xtr, ytr, _, _ = split(seed)
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6"),
        keras.layers.Conv2D(32, 1, activation="relu"),
        keras.layers.AveragePooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
        keras.layers.Softmax(),
    ])
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    m.fit(xtr, ytr, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    path = Path(out_dir) / "digits.keras"
    m.save(path)
    return path


def write_npz(out_dir: Path, seed: int = 0, n_cal: int = 300):
    """calibration.npz (training images) and test.npz (test images and labels)."""
    xtr, ytr, xte, yte = split(seed)
    cal = Path(out_dir) / "calibration.npz"
    test = Path(out_dir) / "test.npz"
    np.savez(cal, x=xtr[:n_cal])
    np.savez(test, x=xte, y=yte)
    return cal, test


def train_mlp_onnx(out_dir: Path, hidden=(128, 64), seed: int = 0) -> Path:
    """A float MLP (scikit-learn's MLPClassifier, ReLU) on the digits, written as ONNX
    (Gemm + Relu layers, logits out) by hand: ``digits_mlp.onnx``, input [1, 64]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.neural_network import MLPClassifier
    xtr, ytr, _, _ = split(seed)
    clf = MLPClassifier(hidden_layer_sizes=hidden, max_iter=400, random_state=seed, tol=1e-5)
    clf.fit(xtr.reshape(len(xtr), -1), ytr)
    inits, nodes, prev = [], [], "x"
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        inits.append(numpy_helper.from_array(np.asarray(w.T, np.float32), f"w{i}"))
        inits.append(numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}"))
        last = i == len(clf.coefs_) - 1
        out = "logits" if last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            prev = f"h{i}"
    graph = helper.make_graph(nodes, "digits_mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = Path(out_dir) / "digits_mlp.onnx"
    onnx.save(model, str(path))
    return path


def write_flat_npz(out_dir: Path, seed: int = 0, n_cal: int = 300):
    """calibration / test data of the MLP: images flattened to [N, 64]."""
    xtr, ytr, xte, yte = split(seed)
    cal = Path(out_dir) / "mlp_calibration.npz"
    test = Path(out_dir) / "mlp_test.npz"
    np.savez(cal, x=xtr[:n_cal].reshape(-1, 64))
    np.savez(test, x=xte.reshape(-1, 64), y=yte)
    return cal, test
