"""``edgec inspect``: what a model holds and whether edgec can compile it."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .. import frontends, ops
from ..ir.errors import EdgecError, UnsupportedError


def source_ops(path: Path) -> tuple[str, Counter]:
    """The operator histogram as the file itself names its operators."""
    fmt = frontends.detect_format(path)
    hist: Counter = Counter()
    if fmt == "onnx":
        from ..frontends.onnx import _read_model
        m = _read_model(path)
        for n in m.graph.node:
            dom = "" if n.domain in ("", "ai.onnx") else n.domain + "."
            hist[dom + n.op_type] += 1
    elif fmt in ("tflite", "keras", "savedmodel"):
        from ..frontends.tflite import builtin_names
        from tflite.Model import Model
        if fmt == "tflite":
            buf = path.read_bytes()
        else:  # as TensorFlow's converter lowers it (the ops edgec then reads)
            from ..frontends.keras import to_tflite
            buf = to_tflite(path, fmt)
        try:
            model = Model.GetRootAs(buf, 0)
            names = builtin_names()
            codes = []
            for k in range(model.OperatorCodesLength()):
                oc = model.OperatorCodes(k)
                code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
                codes.append("CUSTOM:" + (oc.CustomCode() or b"").decode("utf-8", "replace")[:64]
                             if code == 32 else names.get(code, f"BUILTIN_{code}"))
            sg = model.Subgraphs(0)
            for k in range(sg.OperatorsLength()):
                hist[codes[sg.Operators(k).OpcodeIndex()]] += 1
        except Exception:  # noqa: BLE001 - malformed: the full import reports it
            frontends.load(path)
            raise
    return fmt, hist


def importer_known(fmt: str, op: str) -> bool:
    if fmt == "onnx":
        dom, _, name = op.rpartition(".")
        return (dom, name) in ops.ONNX_IMPORTERS
    if fmt == "tflite":
        return ops.tflite_supports(op)
    return True


def inspect(path, input_shapes=None) -> dict:
    path = Path(path)
    if not path.exists():
        raise EdgecError("no such file", str(path))
    fmt, hist = source_ops(path) if not path.is_dir() else ("savedmodel", Counter())
    info: dict = {"model": path.name, "format": fmt,
                  "source_ops": dict(sorted(hist.items()))}
    unsupported = sorted(op for op in hist if not importer_known(fmt, op))
    # the TFLite frontend lists operators it has no importer for in its one pass, with the
    # type variants it refuses; for the other formats, missing importers are listed here
    if unsupported and fmt != "tflite":
        info["unsupported"] = unsupported
        info["supported"] = False
        return info
    try:
        from ..pipeline import load, lower
        g = lower(load(path, input_shapes))
        from ..backends.native import check_supported, materialize_outputs
        g2 = g.copy()
        materialize_outputs(g2)
        check_supported(g2)
        info["supported"] = True
    except UnsupportedError as e:
        info["unsupported"] = e.items
        info["supported"] = False
        return info
    info["inputs"] = [_tinfo(g, n) for n in g.inputs]
    info["outputs"] = [_tinfo(g, n) for n in g.outputs]
    info["ir_ops"] = dict(sorted(Counter(n.op for n in g.nodes).items()))
    consts = [t for t in g.tensors.values() if t.is_const]
    info["parameters"] = int(sum(t.size for t in consts))
    info["parameter_bytes"] = int(sum(t.nbytes for t in consts))
    info["macs"] = int(sum(ops.get(n.op).macs(g, n) for n in g.nodes))
    trees = [n for n in g.nodes if n.op == "TreeEnsemble"]
    if trees:     # tree ensembles keep their parameters in the node, not in constant tensors
        info["trees"] = [{"name": n.name, **n.attrs["ensemble"].summary(),
                          "max_depth": n.attrs["ensemble"].max_depth(),
                          "leaf_weights": int(len(n.attrs["ensemble"].leaf_value))} for n in trees]
    info["layers"] = [{"op": n.op, "name": n.name, "macs": int(ops.get(n.op).macs(g, n)),
                       "output_shape": list(g.tensors[n.outputs[0]].shape),
                       "dtype": g.tensors[n.outputs[0]].dtype} for n in g.nodes]
    return info


def _tinfo(g, name):
    t = g.tensors[name]
    d = {"name": str(t.origin if t.origin is not None else name)[:200], "shape": list(t.shape),
         "dtype": t.dtype}
    if t.quant is not None and t.quant.scale.size == 1:
        s, z = t.quant.scalar()
        d["scale"] = s
        d["zero_point"] = z
    return d
