"""``edgec quantize``: quantize a float model with edgec and write it as ONNX (QDQ)
or TFLite, with its quantization (and accuracy) report."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..exporters import onnx_qdq
from ..exporters import tflite as tfl_export
from ..ir.bundle import write_file
from ..ir.errors import EdgecError
from ..ir.graph import Graph
from ..passes import layout
from ..passes.accuracy import format_table
from ..pipeline import load, lower, quantize_graph

__all__ = ["Quantized", "quantize", "write_report", "accuracy_table"]


@dataclass
class Quantized:
    output: Path           # the model file written
    graph: Graph           # the quantized graph
    info: dict             # the quantization report
    accuracy: dict | None  # the accuracy report (with eval data)


def quantize(model, out_path, qcfg, eval_data=None, input_shapes=None) -> Quantized:
    """Quantize ``model`` as ``qcfg`` (a QuantConfig) says and write it to ``out_path``
    (.onnx: QDQ, .tflite: NHWC); with ``eval_data``, measure what it cost."""
    out = Path(out_path)
    if out.suffix.lower() not in (".onnx", ".tflite"):
        raise EdgecError(f"-o {out_path}: the output must end in .onnx (QDQ) or .tflite")
    g = lower(load(model, input_shapes))
    if out.suffix.lower() == ".tflite":
        if layout.needs_nhwc(g):  # ONNX models: TFLite knows only NHWC
            g = layout.to_nhwc(g)
    gq, info, acc = quantize_graph(g, qcfg, eval_data)
    _export(gq, out)
    return Quantized(out, gq, info, acc)


def _export(g: Graph, out: Path) -> None:
    if out.suffix.lower() == ".onnx":
        onnx_qdq.write(g, out)
        return
    tfl_export.save(g, out)


def write_report(report_path, model, q: Quantized, qcfg, eval_data=None) -> None:
    """The quantization (and accuracy) report as JSON (schema edgec-quantize/1)."""
    doc = {"schema": "edgec-quantize/1", "model": str(model), "output": str(q.output),
           "options": {"quantize": qcfg.to_json(), **({"eval": str(eval_data)} if eval_data else {})},
           "transformations": list(q.graph.meta.passes) + list(q.graph.meta.transforms),
           "quantization": q.info}
    if q.accuracy is not None:
        doc["accuracy"] = q.accuracy
    write_file(report_path, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def accuracy_table(acc: dict) -> str:
    """An accuracy report (edgec.passes.accuracy) as the text table the commands print."""
    return format_table(acc)
