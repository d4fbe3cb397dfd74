"""Accuracy of a quantized graph against its float graph (``--eval data.npz``).

Both graphs run in edgec's reference interpreter (:mod:`edgec.ops.interp`; the int8
graph bit-exact with the compiled C), on the same float inputs (quantized with the
int8 graph's input parameters where its inputs are int8: :func:`edgec.data.encode`).  Reported per output:
SQNR, max/mean absolute error, argmax agreement and, with labels, top-1 accuracy of
both models; with reference outputs in the file, both models' error against them;
per layer: the SQNR of every tensor the two graphs share (the int8 one
dequantized), so the layer where accuracy goes is visible.
"""
from __future__ import annotations

import math

import numpy as np

from .. import data
from ..ops import interp
from ..ir import progress
from ..ir.graph import Graph, QuantParams


def sqnr_db(signal_power: float, noise_power: float) -> float:
    if noise_power <= 0:
        return float("inf")
    if signal_power <= 0:
        return float("-inf")
    return 10.0 * math.log10(signal_power / noise_power)


def dequantize_array(x: np.ndarray, q: QuantParams | None) -> np.ndarray:
    if q is None or x.dtype.kind == "f":
        return x.astype(np.float64)
    shape = [1] * x.ndim
    if q.axis is not None:
        shape[q.axis] = -1
    return (x.astype(np.float64) - q.zero_point.reshape(shape)) * q.scale.astype(np.float64).reshape(shape)


class _Acc:
    def __init__(self):
        self.sig = 0.0
        self.noise = 0.0
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.n = 0

    def add(self, ref: np.ndarray, got: np.ndarray):
        ref = ref.astype(np.float64).reshape(-1)
        got = got.astype(np.float64).reshape(-1)
        d = got - ref
        self.sig += float(np.dot(ref, ref))
        self.noise += float(np.dot(d, d))
        if d.size:
            self.max_abs = max(self.max_abs, float(np.abs(d).max()))
        self.sum_abs += float(np.abs(d).sum())
        self.n += d.size

    def json(self) -> dict:
        return {"sqnr_db": _num(sqnr_db(self.sig, self.noise)), "max_abs_error": self.max_abs,
                "mean_abs_error": self.sum_abs / self.n if self.n else 0.0}


def _num(v: float):
    """JSON has no infinities: report them as strings."""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def evaluate(g_float: Graph, g_q: Graph, dataset, layers: bool = True,
             labels: tuple[str, str] | None = None) -> dict:
    """Run both graphs over ``dataset`` (:class:`edgec.data.Dataset`).

    ``g_float`` is the reference (float; an int8 reference's outputs are
    dequantized), ``g_q`` the transformed model; ``labels`` name the two in the
    printed table (default "float" / "quantized"; the JSON keys stay the same)."""
    samples = dataset.samples
    outs_f = [[] for _ in g_float.outputs]
    outs_q = [[] for _ in g_q.outputs]
    shared = []
    if layers:
        order = [o for n in g_float.nodes for o in n.outputs if o]
        shared = [o for o in order if o in g_q.tensors and not g_q.tensors[o].is_const
                  and g_float.tensors[o].dtype == "float32"]
    layer_acc = {o: _Acc() for o in shared}
    enc_f = data.encode(g_float, samples, what="eval")
    enc_q = data.encode(g_q, samples, what="eval")
    for sf, sq in progress.track(list(zip(enc_f, enc_q)), "evaluation"):
        ef = interp.run(g_float, sf, keep_all=layers)
        eq = interp.run(g_q, sq, keep_all=layers)
        for j, o in enumerate(g_float.outputs):
            outs_f[j].append(dequantize_array(np.asarray(ef[o]), g_float.tensors[o].quant))
        for j, o in enumerate(g_q.outputs):
            outs_q[j].append(dequantize_array(np.asarray(eq[o]), g_q.tensors[o].quant))
        for o in shared:
            layer_acc[o].add(ef[o], dequantize_array(np.asarray(eq[o]), g_q.tensors[o].quant))
    res: dict = {"samples": len(samples), "source": dataset.source, "outputs": []}
    if dataset.notes:
        res["notes"] = list(dataset.notes)
    if labels is not None:
        res["labels"] = list(labels)
    for j in range(len(g_float.outputs)):
        f = np.stack(outs_f[j])
        qv = np.stack(outs_q[j]).reshape(f.shape)
        acc = _Acc()
        acc.add(f, qv)
        d = {"output": j, "name": g_float.outputs[j], **acc.json()}
        if f.shape[-1] > 1:
            af = f.reshape(len(samples), -1, f.shape[-1]).argmax(-1)
            aq = qv.reshape(len(samples), -1, f.shape[-1]).argmax(-1)
            d["argmax_agreement"] = float(np.mean(af == aq))
        if dataset.ref_outputs is not None:
            r = dataset.ref_outputs[j].reshape(f.shape)
            fa, qa = _Acc(), _Acc()
            fa.add(r, f)
            qa.add(r, qv)
            d["float_vs_reference"] = fa.json()
            d["quantized_vs_reference"] = qa.json()
        res["outputs"].append(d)
    if dataset.labels is not None and g_float.outputs:
        f = np.stack(outs_f[0])
        qv = np.stack(outs_q[0]).reshape(f.shape)
        lab = dataset.labels
        res["top1"] = {"float": float(np.mean(f.reshape(len(samples), -1).argmax(-1) == lab)),
                       "quantized": float(np.mean(qv.reshape(len(samples), -1).argmax(-1) == lab))}
        res["top1"]["delta_points"] = 100.0 * (res["top1"]["quantized"] - res["top1"]["float"])
    if layers:
        prod = {o: n for n in g_float.nodes for o in n.outputs if o}
        qdt = {o: g_q.tensors[o].dtype for o in shared}
        rows = []
        prev = float("inf")
        for o in shared:
            a = layer_acc[o].json()
            n = prod[o]
            v = a["sqnr_db"] if not isinstance(a["sqnr_db"], str) else float(a["sqnr_db"])
            rows.append({"layer": n.name, "op": n.op, "tensor": o, "dtype": qdt[o], **a,
                         "sqnr_drop_db": _num(prev - v) if math.isfinite(prev) and math.isfinite(v)
                         else None})
            if n.op not in ("Reshape", "MaxPool", "Transpose", "Copy"):
                prev = v
        res["layers"] = rows
        costly = [r for r in rows if isinstance(r["sqnr_drop_db"], float)]
        if costly:
            worst = max(costly, key=lambda r: r["sqnr_drop_db"])
            res["largest_sqnr_drop"] = {"layer": worst["layer"], "op": worst["op"],
                                        "drop_db": worst["sqnr_drop_db"]}
    return res


def format_table(res: dict, max_layers: int = 60) -> str:
    """Plain-text tables for the CLI."""
    a, b = res.get("labels") or ("float", "quantized")
    lines = [f"accuracy on {res['samples']} samples from {res['source']} ({a} model vs {b} model):"]
    lines += [f"  note: {n}" for n in res.get("notes", [])]
    if "top1" in res:
        t = res["top1"]
        lines.append(f"  top-1 accuracy: {a} {100 * t['float']:.2f}%   {b} {100 * t['quantized']:.2f}%"
                     f"   ({t['delta_points']:+.2f} points)")
    lines.append(f"  {'output':<8} {'SQNR dB':>9} {'max |err|':>11} {'mean |err|':>11} {'argmax agree':>13}")
    for o in res["outputs"]:
        ag = f"{100 * o['argmax_agreement']:.2f}%" if "argmax_agreement" in o else "-"
        lines.append(f"  {o['output']:<8} {_fmt_db(o['sqnr_db']):>9} {o['max_abs_error']:>11.4g} "
                     f"{o['mean_abs_error']:>11.4g} {ag:>13}")
        if "quantized_vs_reference" in o:
            lines.append(f"    vs reference outputs: float SQNR {_fmt_db(o['float_vs_reference']['sqnr_db'])} dB, "
                         f"quantized SQNR {_fmt_db(o['quantized_vs_reference']['sqnr_db'])} dB")
    if res.get("layers"):
        lines.append(f"  per layer (SQNR of each layer's output against the float model's, error accumulated "
                     f"from the input):")
        lines.append(f"  {'layer':<28} {'op':<15} {'type':<8} {'SQNR dB':>9} {'drop dB':>8} {'max |err|':>11}")
        worst = res.get("largest_sqnr_drop", {}).get("layer")
        for r in res["layers"][:max_layers]:
            drop = f"{r['sqnr_drop_db']:.2f}" if isinstance(r["sqnr_drop_db"], float) else "-"
            mark = "  <- largest drop" if r["layer"] == worst else ""
            lines.append(f"  {r['layer'][:28]:<28} {r['op'][:15]:<15} {r['dtype']:<8} "
                         f"{_fmt_db(r['sqnr_db']):>9} {drop:>8} {r['max_abs_error']:>11.4g}{mark}")
        if len(res["layers"]) > max_layers:
            lines.append(f"  ... {len(res['layers']) - max_layers} more layers in the JSON report")
    return "\n".join(lines)


def _fmt_db(v) -> str:
    if isinstance(v, str):
        return v
    return f"{v:.2f}"
