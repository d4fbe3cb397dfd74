"""Post-training quantization of a float graph, computed by edgec itself.

``int8`` (full integer) follows the TFLite int8 quantization spec, so the result
runs on edgec's int8 kernels (TFLite Micro semantics bit for bit) and exports to
TFLite unchanged:

* activations: asymmetric per-tensor int8, ``real = scale * (q - zero_point)``,
  the real range always containing 0 (gemmlowp's ChooseQuantizationParams);
  ranges come from calibration (:mod:`edgec.passes.calibration`) on the *fused* float
  graph, so fused activations (ReLU, ReLU6) are already inside them;
* Conv weights: symmetric per output channel (zero point 0, range [-127, 127]);
  FullyConnected weights: symmetric per tensor (the spec; TFLite Micro's kernels);
* biases: int32 with scale ``input_scale * weight_scale[c]`` and zero point 0;
* Softmax output: scale 1/256, zero point -128;
* MaxPool, AveragePool, Reshape, Transpose and Pad keep their input's parameters;
  Concat inputs produced only for it share the output's parameters (the others are
  requantized by the Concat kernel);
* nodes edgec has no int8 kernel for, and those named by ``keep_float``, stay float
  with Dequantize before and Quantize after them.

``weights-int8`` keeps float activations and stores Conv/FullyConnected weights
as symmetric per-channel int8, dequantized in the float kernel (FPU targets).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import calibration as calib
from .. import ops
from ..ir import qmath
from ..ir.errors import EdgecError
from ..ir.graph import Graph, QuantParams

MODES = ("int8", "weights-int8")
IO_MODES = ("int8", "float")
SOFTMAX_SCALE = 1.0 / 256.0


@dataclass
class QuantConfig:
    mode: str = "int8"
    calibration: Any = None          # path, "random", a calib.Dataset, or arrays
    method: str = "minmax"
    percentile: float = calib.DEFAULT_PERCENTILE
    max_samples: int | None = 500
    keep_float: tuple = ()
    io: str = "int8"                 # dtype of the model's inputs/outputs: int8 or float
    per_channel: bool = True
    seed: int = 0

    def check(self) -> None:
        if self.mode not in MODES:
            raise EdgecError(f"unknown --quantize {self.mode!r} (one of: {', '.join(MODES)})")
        if self.method not in calib.METHODS:
            raise EdgecError(f"unknown calibration method {self.method!r} "
                             f"(one of: {', '.join(calib.METHODS)})")
        if self.io not in IO_MODES:
            raise EdgecError(f"unknown I/O type {self.io!r} (one of: {', '.join(IO_MODES)})")
        if not 50.0 < float(self.percentile) <= 100.0:
            raise EdgecError(f"--percentile {self.percentile}: expected a value in (50, 100]")

    def to_json(self) -> dict:
        cal = self.calibration
        if isinstance(cal, calib.Dataset):
            cal = cal.source
        elif cal is not None and not isinstance(cal, str):
            cal = str(cal) if hasattr(cal, "__fspath__") else "arrays"
        d = {"mode": self.mode, "keep_float": list(self.keep_float)}
        if self.mode == "int8":
            d.update(calibration=cal, method=self.method, io=self.io,
                     per_channel=self.per_channel, max_samples=self.max_samples)
            if self.method == "percentile":
                d["percentile"] = self.percentile
        return d


@dataclass
class QuantResult:
    graph: Graph
    info: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)


# --- parameters ---------------------------------------------------------------

def choose_params(lo: float, hi: float, qmin: int = -128, qmax: int = 127) -> QuantParams:
    """Asymmetric parameters for the real range [lo, hi] (extended to contain 0),
    with the zero point nudged to an integer as gemmlowp/TFLite do."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1e-6 if lo < 0 else 1e-6
    scale = float(np.float32((hi - lo) / (qmax - qmin)))
    zp_from_min = qmin - lo / scale
    zp_from_max = qmax - hi / scale
    err_min = abs(qmin) + abs(lo / scale)
    err_max = abs(qmax) + abs(hi / scale)
    zp = zp_from_min if err_min < err_max else zp_from_max
    zp = int(min(max(qmath.tfl_round(zp), qmin), qmax))
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def symmetric_weights(w: np.ndarray, per_channel: bool, axis: int = 0):
    """int8 weights in [-127, 127] with per-channel (or per-tensor) scales."""
    w = np.asarray(w, np.float32)
    if per_channel:
        red = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.abs(w).max(axis=red) if red else np.abs(w)
    else:
        amax = np.array([np.abs(w).max()])
    amax = amax.astype(np.float64)
    fallback = amax.max() / 127.0 if amax.max() > 0 else 1.0
    scale = np.where(amax > 0, amax / 127.0, fallback).astype(np.float32)
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    q = qmath.np_round_half_away(w.astype(np.float64) / scale.reshape(shape).astype(np.float64))
    q = np.clip(q, -127, 127).astype(np.int8)
    return q, QuantParams(scale, np.zeros(scale.shape, np.int64), axis if per_channel else None)


def quantize_bias(b: np.ndarray, in_scale: float, wq: QuantParams, channels: int):
    ws = wq.scale if wq.scale.size == channels else np.full(channels, wq.scale[0], np.float32)
    scale = (np.float64(in_scale) * ws.astype(np.float64))
    q = qmath.np_round_half_away(np.asarray(b, np.float64) / scale)
    q = np.clip(q, qmath.INT32_MIN, qmath.INT32_MAX).astype(np.int32)
    if wq.axis is None:
        return q, QuantParams(scale[:1].astype(np.float32), np.zeros(1, np.int64))
    return q, QuantParams(scale.astype(np.float32), np.zeros(channels, np.int64), 0)


def _asym_const(x: np.ndarray):
    p = choose_params(float(x.min()), float(x.max()))
    s, z = p.scalar()
    q = np.clip(qmath.np_round_half_away(x.astype(np.float64) / s) + z, -128, 127).astype(np.int8)
    return q, p


# --- which nodes can be int8 --------------------------------------------------

def int8_blocker(g: Graph, n) -> str | None:
    """Why node ``n`` of the float graph cannot run on int8 kernels (None: it can)."""
    from ..ops._util import norm_axis, prod
    if ops.get(n.op).quantize is None:
        return f"no int8 kernel for {n.op}"
    ins = [g.tensors[i] for i in n.inputs if i]
    if not ins or ins[0].dtype != "float32":
        return "not a float32 node"
    if n.op in ("Conv", "FullyConnected"):
        if not g.tensors[n.inputs[1]].is_const:
            return "computed weights"
        if n.input(2) and not g.tensors[n.inputs[2]].is_const:
            return "computed bias"
    if n.op in ("Add", "Sub", "Mul", "Concat"):
        if any(t.dtype != "float32" for t in ins):
            return "non-float operand"
        if all(t.is_const for t in ins):
            return "constant"
    if n.op == "Softmax":
        x = ins[0]
        axis = norm_axis(n.attrs.get("axis", -1), x.rank, "Softmax")
        if prod(x.shape[axis + 1:]) != 1:
            return "Softmax along an inner axis"
    if n.op == "Pad":
        if n.attrs.get("mode", "constant") != "constant" or float(n.attrs.get("value") or 0.0) != 0.0:
            return "Pad with a non-zero or non-constant value"
    if n.op in ("MaxPool", "AveragePool") and g.tensors[n.inputs[0]].is_const:
        return "constant"
    return None


def resolve_keep_float(g: Graph, names) -> set[int]:
    """Node ids selected by --keep-float: a node name, an output tensor name or an op type."""
    sel: set[int] = set()
    for item in names or ():
        hit = [n for n in g.nodes if item in (n.name, *n.outputs) or n.op.lower() == str(item).lower()]
        if not hit:
            avail = [n.name for n in g.nodes if n.op not in ("Reshape",)]
            more = f", ... ({len(avail)} in all)" if len(avail) > 12 else ""
            raise EdgecError(f"--keep-float {item!r} matches no layer (layers: "
                             f"{', '.join(avail[:12])}{more}; an op type such as Softmax works too)")
        sel.update(id(n) for n in hit)
    return sel


# --- the passes -----------------------------------------------------------------

def quantize(g: Graph, cfg: QuantConfig) -> QuantResult:
    cfg.check()
    if cfg.mode == "weights-int8":
        return quantize_weights(g, cfg)
    return quantize_int8(g, cfg)


def calibrate(g: Graph, cfg: QuantConfig):
    ds = calib.get_dataset(g, cfg.calibration, "calibration", cfg.max_samples, cfg.seed)
    stats = calib.collect(g, ds.samples, keep_values=cfg.method != "minmax", seed=cfg.seed)
    ranges = {nm: calib.choose_range(st, cfg.method, cfg.percentile) for nm, st in stats.items()}
    return ds, stats, ranges


def quantize_int8(g: Graph, cfg: QuantConfig, ranges: dict | None = None, dataset=None) -> QuantResult:
    if not any(g.tensors[i].dtype == "float32" for i in g.inputs) and \
            not any(t.dtype == "float32" and t.is_const for t in g.tensors.values()):
        raise EdgecError("the model is not a float model (nothing to quantize)")
    if any(t.quant is not None and not t.is_const for t in g.tensors.values()):
        raise EdgecError("the model is already quantized; --quantize works on float models")
    if ranges is None:
        dataset, _, ranges = calibrate(g, cfg)
    keep = resolve_keep_float(g, cfg.keep_float)
    q = Graph(g.name)
    q.meta = g.meta.copy()
    q.fold_constants = False
    qname: dict[str, str] = {}   # float-graph tensor -> its int8 tensor in q
    fname: dict[str, str] = {}   # float-graph tensor -> its float tensor in q
    native: dict[str, str] = {}  # "q" or "f": where the tensor is computed
    params: dict[str, QuantParams] = {}
    layers = []
    conversions = 0

    def prm(x: str) -> QuantParams:
        if x not in params:
            if x not in ranges:
                raise EdgecError(f"tensor {x!r} was never computed during calibration")
            params[x] = choose_params(*ranges[x])
        return params[x]

    def get_q(x: str) -> str:
        nonlocal conversions
        if x in qname:
            return qname[x]
        t = g.tensors[x]
        if t.is_const:
            data, p = _asym_const(t.data)
            qname[x] = q.add_const(data, x + "_q", quant=p)
            return qname[x]
        name = q.unique_name(x + "_q")
        q.add_tensor(name, t.shape, "int8", quant=prm(x))
        q.add_node("Quantize", [fname[x]], [name], {"dtype": "int8", "rounding": "away",
                                                   "quant": prm(x)}, f"quantize_{x}")
        conversions += 1
        qname[x] = name
        return name

    def get_f(x: str) -> str:
        nonlocal conversions
        if x in fname:
            return fname[x]
        t = g.tensors[x]
        if t.is_const:
            fname[x] = q.add_const(t.data, x, dtype=t.dtype)
            return fname[x]
        name = q.unique_name(x + "_dq")
        q.add_node("Dequantize", [qname[x]], [name], {}, f"dequantize_{x}")
        conversions += 1
        fname[x] = name
        return name

    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype == "float32" and cfg.io == "int8":
            q.add_tensor(name, t.shape, "int8", quant=prm(name), origin=t.origin)
            qname[name], native[name] = name, "q"
        else:
            q.add_tensor(name, t.shape, t.dtype, origin=t.origin)
            fname[name], native[name] = name, "f"
        q.inputs.append(name)

    cons = g.consumers()
    for n in g.nodes:
        blocker = int8_blocker(g, n)
        if ops.get(n.op).quantize == "follow" and blocker is None and native.get(n.inputs[0]) != "q":
            blocker = "float input"
        if id(n) in keep:
            blocker = "--keep-float"
        outs = [o for o in n.outputs if o]
        if blocker is not None:
            ins = [get_f(i) if i else "" for i in n.inputs]
            for o in outs:
                t = g.tensors[o]
                q.add_tensor(o, t.shape, t.dtype, origin=t.origin)
                fname[o], native[o] = o, "f"
            q.add_node(n.op, ins, n.outputs, n.attrs, n.name)
            layers.append({"name": n.name, "op": n.op, "dtype": g.tensors[outs[0]].dtype,
                           "reason": blocker})
            continue
        attrs = dict(n.attrs)
        ins = list(n.inputs)
        if n.op in ("Conv", "FullyConnected"):
            xq = get_q(ins[0])
            w = g.tensors[ins[1]].data
            per_ch = cfg.per_channel and n.op == "Conv"
            wq, wp = symmetric_weights(w, per_ch, 0)
            new = [xq, q.add_const(wq, ins[1] + "_q", quant=wp)]
            if n.input(2):
                bq, bp = quantize_bias(g.tensors[ins[2]].data.reshape(-1),
                                       q.tensors[xq].quant.scalar()[0], wp, w.shape[0])
                new.append(q.add_const(bq, ins[2] + "_q", quant=bp))
            ins = new
        elif n.op == "Pad":
            ins = [get_q(ins[0])]
            attrs["value"] = None  # pad with the zero point (real 0)
        else:
            ins = [get_q(i) if i else "" for i in ins]
        o = outs[0]
        t = g.tensors[o]
        if ops.get(n.op).quantize == "follow":
            op_params = q.tensors[ins[0]].quant
        elif n.op == "Softmax":
            op_params = QuantParams(np.array([SOFTMAX_SCALE], np.float32), np.array([-128]))
        else:
            op_params = prm(o)
        params[o] = op_params
        q.add_tensor(o, t.shape, "int8", quant=op_params, origin=t.origin)
        qname[o], native[o] = o, "q"
        if n.op == "Concat":
            # TFLite's Concat wants one scale: inputs made only for it take the output's
            for i in n.inputs:
                src = q.tensors.get(qname.get(i, ""))
                if src is not None and len(cons.get(i, [])) == 1 and i not in g.outputs \
                        and i not in g.inputs and native.get(i) == "q" and \
                        _producer_op(g, i) in ("Conv", "FullyConnected", "Add", "Sub", "Mul"):
                    src.quant = op_params
                    params[i] = op_params
        q.add_node(n.op, ins, [o], attrs, n.name)
        s, z = op_params.scalar()
        lo, hi = ranges.get(o, (None, None))
        layers.append({"name": n.name, "op": n.op, "dtype": "int8", "scale": s, "zero_point": z,
                       "range": None if lo is None else [float(lo), float(hi)]})

    for name in g.outputs:
        t = g.tensors[name]
        if t.dtype == "float32" and cfg.io == "int8":
            q.outputs.append(get_q(name))
        else:
            q.outputs.append(get_f(name))
    q.remove_dead()
    q.topo_sort()
    q.validate()

    n_int8 = sum(1 for L in layers if L["dtype"] == "int8")
    floats = [L for L in layers if L["dtype"] != "int8"]
    src = dataset.source if dataset is not None else "given ranges"
    info = {
        "mode": "int8",
        "calibration": {"source": src, "samples": len(dataset) if dataset is not None else 0,
                        "method": cfg.method, "random": src == "random",
                        "notes": list(dataset.notes) if dataset is not None else []},
        "io": cfg.io,
        "int8_layers": n_int8,
        "float_layers": [{"name": L["name"], "op": L["op"], "reason": L["reason"]} for L in floats],
        "conversions": conversions,
        "layers": layers,
    }
    if cfg.method == "percentile":
        info["calibration"]["percentile"] = cfg.percentile
    desc = f"quantize_int8 ({n_int8} of {len(layers)} layers int8, {cfg.method} calibration on " \
           f"{info['calibration']['samples']} samples from {src}"
    desc += f", {len(floats)} float: {', '.join(L['name'] for L in floats)})" if floats else ")"
    q.meta.transforms = [*g.meta.transforms, desc]
    q.meta.quantization = info
    return QuantResult(q, info, ranges)


def _producer_op(g: Graph, name: str) -> str | None:
    for n in g.nodes:
        if name in n.outputs:
            return n.op
    return None


def quantize_weights(g: Graph, cfg: QuantConfig) -> QuantResult:
    """Weight-only int8: Conv/FullyConnected weights become per-channel int8."""
    keep = resolve_keep_float(g, cfg.keep_float)
    q = g.copy()
    layers = []
    for n0, n in zip(g.nodes, q.nodes):
        if n.op not in ("Conv", "FullyConnected") or id(n0) in keep:
            continue
        w = q.tensors[n.inputs[1]]
        x = q.tensors[n.inputs[0]]
        if not w.is_const or w.dtype != "float32" or x.dtype != "float32":
            continue
        wq, wp = symmetric_weights(w.data, cfg.per_channel, 0)
        n.inputs[1] = q.add_const(wq, n.inputs[1] + "_q", quant=wp)
        err = float(np.abs(w.data - (wq.astype(np.float32) * wp.scale.reshape(
            [-1] + [1] * (w.rank - 1)))).max()) if cfg.per_channel else 0.0
        layers.append({"name": n.name, "op": n.op, "weights": int(w.size), "max_abs_weight_error": err})
    q.remove_dead()
    info = {"mode": "weights-int8", "layers": layers, "int8_weight_layers": len(layers)}
    q.meta.transforms = [*g.meta.transforms,
        f"quantize_weights_int8 ({len(layers)} Conv/FullyConnected layers with int8 per-channel "
        "weights, dequantized in the float kernel)"]
    q.meta.quantization = info
    return QuantResult(q, info)
