"""Model importers: a model file -> :class:`edgec.ir.graph.Graph`.

A frontend knows the file format, never the target.  :func:`load` picks the
frontend from the file's content (not only its extension)."""
from __future__ import annotations

from pathlib import Path

from ..ir.errors import EdgecError
from ..ir.graph import Graph


def parse_input_shapes(specs) -> dict[str, tuple[int, ...]]:
    """``name:1x3x32x32`` (or ``1,3,32,32``, name optional for one input)."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in specs or ():
        name, _, dims = spec.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.replace(",", "x").split("x") if d.strip())
        except ValueError:
            raise EdgecError(f"--input-shape {spec!r}: expected NAME:D1xD2x... with integers") from None
        if not shape or any(d <= 0 for d in shape):
            raise EdgecError(f"--input-shape {spec!r}: dimensions must be positive")
        out[name] = shape
    return out


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "savedmodel"
        raise EdgecError("is a directory, not a model file (nor a SavedModel)", str(path))
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise EdgecError(f"cannot read: {e.strerror}", str(path)) from None
    if not head:
        raise EdgecError("empty file", str(path))
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5"):
        return "keras"
    if suffix == ".tflite":
        raise EdgecError("not a TFLite flatbuffer (no 'TFL3' identifier)", str(path))
    if suffix == ".onnx" or head[:1] in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x3a", b"\x42"):
        return "onnx"
    raise EdgecError("unknown model format (expected .onnx, .tflite, .keras/.h5 or a "
                     "SavedModel directory)", str(path))


def load(path, input_shapes=None, **options) -> Graph:
    path = Path(path)
    if not path.exists():
        raise EdgecError("no such file", str(path))
    fmt = detect_format(path)
    shapes = parse_input_shapes(input_shapes) if not isinstance(input_shapes, dict) else input_shapes
    if fmt == "onnx":
        from . import onnx as fe
        g = fe.load(path, shapes, **options)
    elif fmt == "tflite":
        from . import tflite as fe
        g = fe.load(path, shapes, **options)
    else:
        from . import keras as fe
        g = fe.load(path, shapes, **options)
    g.meta.source = g.meta.source or path.name
    g.meta.format = g.meta.format or fmt
    return g
