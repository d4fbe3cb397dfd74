"""Write a graph quantized by edgec as an ONNX model in QDQ form.

Every int8 tensor of the graph becomes an ONNX INT8 tensor produced by
``QuantizeLinear`` (scale, zero point) and read through ``DequantizeLinear``;
int8 weights and int32 biases are stored as integer initializers with their
per-channel parameters (``axis``), and each operator computes in float between
them, which is what onnxruntime and Netron recognise as a QDQ model (onnxruntime
fuses the patterns into its QLinear kernels).  NHWC operators (graphs from TFLite
and Keras) are wrapped in Transposes, since ONNX convolutions are NCHW.

ONNX rounds half to even and computes in float, TFLite's int8 kernels (which
edgec's C follows) in fixed point: the exported model agrees with edgec's
quantized graph to about one quantization step, not bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir import dtypes
from ..ir.bundle import write_file
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, QuantParams

OPSET = 13

_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp", "Abs": "Abs",
          "Neg": "Neg", "Sqrt": "Sqrt", "Log": "Log", "Floor": "Floor", "Ceil": "Ceil"}


class _Writer:
    def __init__(self, g: Graph):
        from onnx import helper, numpy_helper
        self.h = helper
        self.nh = numpy_helper
        self.g = g
        self.nodes = []
        self.inits = []
        self.names: set[str] = set()
        self.dq: dict[str, str] = {}    # int8/int32 IR tensor -> its float (dequantized) name
        self.fl: dict[str, str] = {}    # float IR tensor -> ONNX name

    def fresh(self, hint: str) -> str:
        name = hint
        k = 1
        while name in self.names or name in self.g.tensors:
            name = f"{hint}_{k}"
            k += 1
        self.names.add(name)
        return name

    def init(self, arr: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.inits.append(self.nh.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, ins, outs, **attrs):
        self.nodes.append(self.h.make_node(op, list(ins), list(outs), **attrs))

    def qparams(self, q: QuantParams, hint: str, dtype: str, axis_shape_rank: int | None = None):
        zdt = {"int8": np.int8, "uint8": np.uint8, "int32": np.int32, "int16": np.int16}[dtype]
        if q.scale.size == 1:
            s = self.init(np.array(q.scale[0], np.float32), hint + "_scale")
            z = self.init(np.array(q.zero_point[0], zdt), hint + "_zero_point")
            return s, z, {}
        s = self.init(q.scale.astype(np.float32), hint + "_scale")
        z = self.init(q.zero_point.astype(zdt), hint + "_zero_point")
        return s, z, {"axis": int(q.axis)}

    # float view of any IR tensor
    def f(self, name: str) -> str:
        t = self.g.tensors[name]
        if t.dtype in ("int8", "uint8", "int32", "int16") and t.quant is not None:
            if name not in self.dq:
                src = name
                if t.is_const:
                    src = self.init(t.data, name)
                s, z, ax = self.qparams(t.quant, name, t.dtype)
                out = self.fresh(name + "_dq")
                self.node("DequantizeLinear", [src, s, z], [out], **ax)
                self.dq[name] = out
            return self.dq[name]
        if t.is_const:
            if name not in self.fl:
                self.fl[name] = self.init(t.data, name)
            return self.fl[name]
        return self.fl.get(name, name)

    def emit_out(self, name: str, computed_float: str) -> None:
        """The node computed ``name``'s real value as ``computed_float``: quantize it
        if ``name`` is an int8 tensor."""
        t = self.g.tensors[name]
        if t.dtype in ("int8", "uint8", "int16") and t.quant is not None:
            s, z, ax = self.qparams(t.quant, name + "_q", t.dtype)
            self.node("QuantizeLinear", [computed_float, s, z], [name], **ax)
        else:
            self.node("Identity", [computed_float], [name])
            self.fl[name] = name

    def act(self, x: str, act, hint: str) -> str:
        if act is None:
            return x
        lo, hi = act
        y = self.fresh(hint + "_act")
        if lo == 0.0 and hi == float("inf"):
            self.node("Relu", [x], [y])
        else:
            ins = [x, self.init(np.array(max(lo, -3.4e38), np.float32), hint + "_min"),
                   self.init(np.array(min(hi, 3.4e38), np.float32), hint + "_max")]
            self.node("Clip", ins, [y])
        return y

    def nhwc_in(self, x: str, hint: str) -> str:
        y = self.fresh(hint + "_nchw")
        self.node("Transpose", [x], [y], perm=[0, 3, 1, 2])
        return y

    def nhwc_out(self, x: str, hint: str) -> str:
        y = self.fresh(hint + "_nhwc")
        self.node("Transpose", [x], [y], perm=[0, 2, 3, 1])
        return y


def _conv(w: _Writer, n):
    g = w.g
    a = n.attrs
    nhwc = a["layout"] == "NHWC"
    x = w.f(n.inputs[0])
    if nhwc:
        x = w.nhwc_in(x, n.outputs[0])
    wt = g.tensors[n.inputs[1]]
    if nhwc:  # OHWI -> OIHW, the per-channel axis (0) stays
        data = np.transpose(wt.data, (0, 3, 1, 2))
        src = w.init(data, n.inputs[1] + "_oihw")
        if wt.quant is not None and wt.dtype == "int8":
            s, z, ax = w.qparams(wt.quant, n.inputs[1], "int8")
            wf = w.fresh(n.inputs[1] + "_dq")
            w.node("DequantizeLinear", [src, s, z], [wf], **ax)
        else:
            wf = src
    else:
        wf = w.f(n.inputs[1])
    ins = [x, wf] + ([w.f(n.inputs[2])] if n.input(2) else [])
    pt, pl, pb, pr = a["pads"]
    y = w.fresh(n.outputs[0] + "_conv")
    w.node("Conv", ins, [y], strides=list(a["strides"]), dilations=list(a["dilations"]),
           pads=[pt, pl, pb, pr], group=int(a["group"]))
    y = w.act(y, a.get("act"), n.outputs[0])
    if nhwc:
        y = w.nhwc_out(y, n.outputs[0])
    w.emit_out(n.outputs[0], y)


def _fc(w: _Writer, n):
    g = w.g
    x = w.f(n.inputs[0])
    wt = g.tensors[n.inputs[1]]
    N, K = wt.shape
    out = g.tensors[n.outputs[0]]
    x2 = w.fresh(n.outputs[0] + "_2d")
    w.node("Reshape", [x, w.init(np.array([-1, K], np.int64), n.outputs[0] + "_shape2d")], [x2])
    ins = [x2, w.f(n.inputs[1])] + ([w.f(n.inputs[2])] if n.input(2) else [])
    y = w.fresh(n.outputs[0] + "_gemm")
    w.node("Gemm", ins, [y], transB=1)
    y = w.act(y, n.attrs.get("act"), n.outputs[0])
    y2 = w.fresh(n.outputs[0] + "_shaped")
    w.node("Reshape", [y, w.init(np.array(out.shape, np.int64), n.outputs[0] + "_shape")], [y2])
    w.emit_out(n.outputs[0], y2)


def _pool(w: _Writer, n):
    a = n.attrs
    nhwc = a["layout"] == "NHWC"
    x = w.f(n.inputs[0])
    if nhwc:
        x = w.nhwc_in(x, n.outputs[0])
    y = w.fresh(n.outputs[0] + "_pool")
    xt = w.g.tensors[n.inputs[0]]
    H, W = (xt.shape[1], xt.shape[2]) if nhwc else (xt.shape[2], xt.shape[3])
    if list(a["kernel"]) == [H, W] and not any(a["pads"]):
        w.node("Global" + n.op, [x], [y])
        y = w.act(y, a.get("act"), n.outputs[0])
        if nhwc:
            y = w.nhwc_out(y, n.outputs[0])
        w.emit_out(n.outputs[0], y)
        return
    kw = dict(kernel_shape=list(a["kernel"]), strides=list(a["strides"]), pads=list(a["pads"]),
              ceil_mode=int(a.get("ceil_mode", 0)))
    if n.op == "AveragePool":
        kw["count_include_pad"] = int(a.get("count_include_pad", 0))
    elif list(a.get("dilations", [1, 1])) != [1, 1]:
        kw["dilations"] = list(a["dilations"])
    w.node(n.op, [x], [y], **kw)
    y = w.act(y, a.get("act"), n.outputs[0])
    if nhwc:
        y = w.nhwc_out(y, n.outputs[0])
    w.emit_out(n.outputs[0], y)


def _simple(w: _Writer, n):
    g = w.g
    o = n.outputs[0]
    y = w.fresh(o + "_f")
    if n.op in ("Add", "Sub", "Mul"):
        w.node(n.op, [w.f(n.inputs[0]), w.f(n.inputs[1])], [y])
        y = w.act(y, n.attrs.get("act"), o)
    elif n.op == "Softmax":
        w.node("Softmax", [w.f(n.inputs[0])], [y], axis=int(n.attrs.get("axis", -1)))
        if float(n.attrs.get("beta", 1.0)) != 1.0:
            raise UnsupportedError(["Softmax with beta != 1 (ONNX export)"])
    elif n.op in ("Reshape", "Copy"):
        shape = w.init(np.array(g.tensors[o].shape, np.int64), o + "_shape")
        w.node("Reshape", [w.f(n.inputs[0]), shape], [y])
    elif n.op == "Transpose":
        from ..ops.transpose import Transpose
        w.node("Transpose", [w.f(n.inputs[0])], [y], perm=Transpose()._perm(g, n))
    elif n.op == "Concat":
        w.node("Concat", [w.f(i) for i in n.inputs], [y], axis=int(n.attrs["axis"]))
    elif n.op == "Pad":
        xt = g.tensors[n.inputs[0]]
        mode = n.attrs.get("mode", "constant")
        v = n.attrs.get("value")
        if xt.quant is not None and xt.dtype == "int8":
            v = 0.0  # int8 padding with the zero point is real 0
        pads = w.init(np.array(n.attrs["pads"], np.int64), o + "_pads")
        ins = [w.f(n.inputs[0]), pads]
        if mode == "constant":
            ins.append(w.init(np.array(v or 0, dtypes.np_dtype("float32")), o + "_value"))
        w.node("Pad", ins, [y], mode=mode)
    elif n.op in _UNARY:
        w.node(_UNARY[n.op], [w.f(n.inputs[0])], [y])
    elif n.op == "Clip":
        ins = [w.f(n.inputs[0])]
        for key in ("min", "max"):
            v = n.attrs.get(key)
            ins.append(w.init(np.array(v, np.float32), o + "_" + key) if v is not None else "")
        w.node("Clip", ins, [y])
    else:
        raise UnsupportedError([f"{n.op} (ONNX export)"])
    w.emit_out(o, y)


def _quantize(w: _Writer, n):
    # float -> int8, or int8 -> int8 (requantize: the input is read dequantized)
    w.emit_out(n.outputs[0], w.f(n.inputs[0]))


def _dequantize(w: _Writer, n):
    o = n.outputs[0]
    w.node("Identity", [w.f(n.inputs[0])], [o])
    w.fl[o] = o


HANDLERS = {"Conv": _conv, "FullyConnected": _fc, "MaxPool": _pool, "AveragePool": _pool,
            "Quantize": _quantize, "Dequantize": _dequantize}


def to_model(g: Graph):
    import onnx
    from onnx import helper
    w = _Writer(g)
    missing = []
    for n in g.nodes:
        if n.op not in HANDLERS and n.op not in ("Add", "Sub", "Mul", "Softmax", "Reshape", "Copy",
                                                 "Transpose", "Concat", "Pad", "Clip", *_UNARY):
            missing.append(f"{n.op} (ONNX export)")
    if missing:
        raise UnsupportedError(missing)
    for n in g.nodes:
        HANDLERS.get(n.op, _simple)(w, n)

    def vi(name):
        t = g.tensors[name]
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtypes.np_dtype(t.dtype)))
        return helper.make_tensor_value_info(name, elem, list(t.shape))

    outputs = []
    for o in g.outputs:
        outputs.append(vi(o))
    graph = helper.make_graph(w.nodes, g.name or "model", [vi(i) for i in g.inputs], outputs, w.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="edgec", producer_version=_version())
    m.ir_version = min(m.ir_version, 8)
    info = g.meta.quantization or {}
    if info:
        helper.set_model_props(m, {"edgec.quantization": f"{info.get('mode')} "
                                   f"{info.get('calibration', {}).get('method', '')} calibration"})
    try:
        onnx.checker.check_model(m)
    except Exception as e:  # noqa: BLE001
        raise EdgecError(f"the exported ONNX model does not check: {str(e).splitlines()[0][:200]}") from None
    return m


def _version() -> str:
    from ..ir.version import __version__
    return __version__


def write(g: Graph, path) -> Path:
    """Write ``g`` to ``path`` as an ONNX QDQ model (atomically: temp file + rename)."""
    m = to_model(g)
    write_file(path, m.SerializeToString())
    return Path(path)
