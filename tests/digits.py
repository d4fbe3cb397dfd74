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
