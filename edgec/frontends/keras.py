"""TensorFlow / Keras importer: SavedModel directories, ``.keras`` and ``.h5`` files.

The model is lowered by TensorFlow's own TFLite converter to a *float* TFLite
flatbuffer (builtin ops only, no quantization, no optimizations that change the
numbers) and then read by edgec's TFLite frontend, so every TFLite operator
edgec knows is available and the graph is NHWC like TFLite's.  Quantization, if
asked for, is edgec's own (:mod:`edgec.passes.quantize`), not the converter's.

Needs the ``tf`` extra (tensorflow-cpu); without it the user is told how to get it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..ir.errors import EdgecError

INSTALL_HINT = "pip install 'edgec[tf]'"


def _import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf  # noqa: F401
    except ImportError:
        raise EdgecError("Keras/TensorFlow models need TensorFlow, which is not installed; "
                         f"install it with: {INSTALL_HINT}") from None
    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def _quiet():
    """TensorFlow and the converter print to the C-level stdout/stderr; keep the CLI clean."""
    import sys
    import tempfile
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield tmp
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _converter(tf, path: Path, fmt: str, input_shapes: dict):
    if fmt == "savedmodel":
        return tf.lite.TFLiteConverter.from_saved_model(str(path))
    try:
        import keras
        model = keras.models.load_model(str(path), compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises many kinds for a bad file
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise EdgecError(f"cannot load the Keras model: {msg}", str(path)) from None
    # A static batch of 1 (or --input-shape): with a dynamic batch the converter
    # computes shapes at run time (SHAPE, STRIDED_SLICE, PACK before a Reshape).
    specs = []
    for i, t in enumerate(model.inputs):
        name = getattr(t, "name", f"input{i}")
        shape = input_shapes.get(name) or (input_shapes.get("") if len(model.inputs) == 1 else None)
        if shape is None:
            dims = list(t.shape)
            if any(d is None for d in dims[1:]):
                raise EdgecError(f"input {name!r} has dynamic dimensions {dims}: give them with "
                                 f"--input-shape {name}:1x...", str(path))
            shape = [1] + [int(d) for d in dims[1:]]
        specs.append(tf.TensorSpec(list(shape), t.dtype, name=name.split(":")[0]))
    fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
    concrete = fn.get_concrete_function(*specs)
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    frozen = convert_variables_to_constants_v2(concrete)
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def to_tflite(path: Path, fmt: str | None = None, input_shapes: dict | None = None) -> bytes:
    """Convert a SavedModel / Keras file to a float TFLite flatbuffer (bytes)."""
    path = Path(path)
    fmt = fmt or ("savedmodel" if path.is_dir() else "keras")
    tf = _import_tf()
    with _quiet():
        try:
            conv = _converter(tf, path, fmt, dict(input_shapes or {}))
            conv.optimizations = []
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            return bytes(conv.convert())
        except EdgecError:
            raise
        except Exception as e:  # noqa: BLE001 - the converter's errors are long
            first_error = e
        if fmt == "savedmodel":
            # SavedModels written by older TF/Keras (optimizer slots the TF 2 loader can
            # no longer restore, e.g. the MLPerf Tiny KWS model) still convert through
            # the TF 1 session-based converter, which reads only the serving graph.
            try:
                conv = tf.compat.v1.lite.TFLiteConverter.from_saved_model(str(path))
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
                return bytes(conv.convert())
            except Exception:  # noqa: BLE001 - report the first, more relevant error
                pass
    text = (str(first_error) or type(first_error).__name__).strip().splitlines()
    first = next((ln for ln in text if "error" in ln.lower()), text[0] if text else "")
    raise EdgecError(f"the TensorFlow converter failed: {first.strip()[:240]}", str(path))


def load(path: Path, input_shapes: dict | None = None, **_options):
    from .tflite import from_bytes
    path = Path(path)
    data = to_tflite(path, input_shapes=input_shapes)
    name = path.name if path.is_dir() else path.stem
    try:
        g = from_bytes(data, input_shapes, name=name or "model")
    except EdgecError as e:
        if e.where is None:
            e.where = str(path)
            e.args = (f"{path}: {e.args[0]}",)
        raise
    g.meta.format = "savedmodel" if path.is_dir() else "keras"
    g.meta.converted_by = "tf.lite.TFLiteConverter (float, builtin ops)"
    return g
