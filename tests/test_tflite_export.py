"""edgec.exporters.tflite: edgec writes TFLite flatbuffers that edgec's own TFLite
frontend reads back as the same graph and that the TFLite Micro interpreter
(int8) and ai-edge-litert (float) run with the same results as edgec."""
import numpy as np
import pytest

from conftest import EXAMPLE_KWS, shared_model
from edgec import frontends
from edgec.ops import interp
from edgec.commands import reference
from edgec.ir.errors import UnsupportedError
from edgec.exporters import tflite as tw
from edgec.ir.graph import Graph, QuantParams
from edgec.data import random_samples

RELU = [0.0, float("inf")]
RELU6 = [0.0, 6.0]


def _same_graph(a: Graph, b: Graph):
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]
    for na, nb in zip(a.nodes, b.nodes):
        for k, v in na.attrs.items():
            norm = (lambda a: list(a) if isinstance(a, tuple) else a)  # act: tuple or list
            assert norm(nb.attrs.get(k)) == norm(v), (na.op, k)
        if na.op == "Conv" and len(na.inputs) == 2:  # the writer adds a zero bias
            assert len(nb.inputs) == 3 and not b.tensors[nb.inputs[2]].data.any()
        for ia, ib in zip(na.inputs, nb.inputs):
            ta, tb = a.tensors[ia], b.tensors[ib]
            assert (ta.shape, ta.dtype, ta.quant) == (tb.shape, tb.dtype, tb.quant), (na.op, ia)
            if ta.is_const:
                assert np.array_equal(ta.data, tb.data)
    for x, y in zip(a.inputs + a.outputs, b.inputs + b.outputs):
        ta, tb = a.tensors[x], b.tensors[y]
        assert (ta.shape, ta.dtype, ta.quant) == (tb.shape, tb.dtype, tb.quant)


def _roundtrip_tflm(g: Graph, n: int = 4, seed: int = 0):
    """Write g, read it back, run TFLite Micro on the bytes and edgec's reference
    interpreter on both graphs: all bit-exact."""
    data = tw.to_bytes(g)
    g2 = frontends.tflite.from_bytes(data)
    samples = random_samples(g, n, seed)
    ref, _ = reference.run_tflm(data, samples)
    for s, r in zip(samples, ref):
        ours = interp.run(g, s)
        back = interp.run(g2, s)
        for j, (o, o2) in enumerate(zip(g.outputs, g2.outputs)):
            assert np.array_equal(ours[o], np.asarray(r[j]).reshape(ours[o].shape)), f"output {j}"
            assert np.array_equal(back[o2], ours[o])
    return data, g2


def test_kws_roundtrip_same_graph_and_bit_exact():
    g = frontends.load(EXAMPLE_KWS)
    data, g2 = _roundtrip_tflm(g)
    _same_graph(g, g2)
    assert data[4:8] == b"TFL3"
    assert tw.to_bytes(g) == data, "the writer is not deterministic"


@pytest.mark.parametrize("name", ["vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
                                  "ad01_int8.tflite"])
def test_mlperf_int8_roundtrip(name):
    g = frontends.load(shared_model(f"mlperf_tiny/{name}"))
    _, g2 = _roundtrip_tflm(g, n=2)
    _same_graph(g, g2)


def test_float_roundtrip_litert(tmp_path):
    g = frontends.load(shared_model("mlperf_tiny/ad01_fp32.tflite"))
    p = tw.save(g, tmp_path / "f.tflite")
    samples = random_samples(g, 3, 1)
    a, _ = reference.run_litert(shared_model("mlperf_tiny/ad01_fp32.tflite"), samples)
    b, _ = reference.run_litert(p, samples)
    for x, y in zip(a, b):
        assert np.array_equal(x[0], y[0])
    _same_graph(g, frontends.load(p))


# --- synthetic int8 graphs covering every operator the writer knows --------------

def _q(scale, zp=0, axis=None):
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)), np.atleast_1d(zp), axis)


def _int8_graph():
    rng = np.random.default_rng(5)
    g = Graph("synthetic")
    g.add_tensor("x", (1, 9, 7, 3), "int8", quant=_q(0.05, -3))
    g.inputs = ["x"]

    def const(name, data, quant=None):
        g.add_tensor(name, data.shape, str(data.dtype), data, quant)

    def node(op, ins, out, attrs, quant=None):
        g.add_node(op, ins, [out], attrs)
        if quant is not None:
            g.tensors[out].quant = quant

    def conv(stride, dil, pads, group, act):
        return dict(layout="NHWC", strides=stride, dilations=dil, pads=pads, group=group, act=act)

    # CONV_2D, SAME, stride 2, per-channel, RELU6
    const("w", rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
          _q(rng.uniform(0.002, 0.01, 4), np.zeros(4, int), 0))
    const("b", rng.integers(-500, 500, 4).astype(np.int32))
    node("Conv", ["x", "w", "b"], "c1", conv([2, 2], [1, 1], [1, 1, 1, 1], 1, RELU6), _q(0.04, -128))
    # explicit asymmetric padding (PAD + VALID conv), dilation 2
    const("w2", rng.integers(-127, 128, (5, 2, 2, 4)).astype(np.int8), _q(0.004))
    node("Conv", ["c1", "w2"], "c2", conv([1, 1], [2, 1], [2, 0, 1, 0], 1, None), _q(0.06, 4))
    # depthwise with multiplier 2 (IR weights OHWI [O, KH, KW, 1])
    const("wd", rng.integers(-127, 128, (10, 3, 3, 1)).astype(np.int8),
          _q(rng.uniform(0.005, 0.02, 10), np.zeros(10, int), 0))
    node("Conv", ["c2", "wd"], "d", conv([1, 1], [1, 1], [1, 1, 1, 1], 5, RELU), _q(0.05, 0))
    from edgec.ops.conv import tfl_pads
    _, H, W, _ = g.tensors["d"].shape
    same = tfl_pads(H, W, 2, 2, 2, 2, 1, 1, 0)
    assert any(same)
    node("AveragePool", ["d"], "p", dict(layout="NHWC", kernel=[2, 2], strides=[2, 2],
                                         pads=same, ceil_mode=0, count_include_pad=0,
                                         act=None))
    node("MaxPool", ["p"], "m", dict(layout="NHWC", kernel=[2, 2], strides=[1, 1],
                                     pads=[0, 0, 0, 0], ceil_mode=0, act=None))
    node("Transpose", ["m"], "t", {"perm": [0, 3, 1, 2]})
    node("Pad", ["t"], "pd", {"pads": [0, 1, 0, 1, 0, 0, 0, 1], "mode": "constant", "value": None})
    n = g.tensors["pd"].size
    node("Reshape", ["pd"], "r", {"shape": [3, n // 3]})
    const("wf", rng.integers(-127, 128, (6, n // 3)).astype(np.int8),
          _q(rng.uniform(0.005, 0.02, 6), np.zeros(6, int), 0))
    const("bf", rng.integers(-300, 300, 6).astype(np.int32))
    node("FullyConnected", ["r", "wf", "bf"], "f", {"keep_dims": False, "act": None}, _q(0.1, 7))
    const("kk", rng.integers(-128, 128, (1, 6)).astype(np.int8), _q(0.07, -2))
    node("Add", ["f", "kk"], "a", {"act": RELU}, _q(0.12, -20))
    node("Mul", ["a", "f"], "mu", {"act": None}, _q(0.3, 1))
    node("Sub", ["mu", "a"], "su", {"act": None}, _q(0.12, -20))
    # TFLite Micro's CONCATENATION needs one quantization for all inputs and the output
    node("Concat", ["su", "a"], "cc", {"axis": 1}, _q(0.12, -20))
    node("Softmax", ["cc"], "sm", {"axis": -1, "beta": 0.7}, _q(1 / 256, -128))
    g.add_tensor("rq", (3, 12), "int8", quant=_q(0.01, 5))
    g.add_node("Quantize", ["sm"], ["rq"], {"dtype": "int8"})
    g.outputs = ["rq", "c2"]
    g.validate()
    return g


def test_synthetic_int8_every_op_bit_exact():
    g = _int8_graph()
    data, g2 = _roundtrip_tflm(g, n=6, seed=3)
    from tflite.Model import Model
    from edgec.frontends.tflite import builtin_names
    m = Model.GetRootAs(data, 0)
    names = builtin_names()
    codes = {names[m.OperatorCodes(i).BuiltinCode()] for i in range(m.OperatorCodesLength())}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "TRANSPOSE",
            "RESHAPE", "FULLY_CONNECTED", "ADD", "MUL", "SUB", "CONCATENATION", "SOFTMAX",
            "QUANTIZE"} <= codes
    # per-channel quantization survives, on TFLite's axes (3 for depthwise filters)
    sg = m.Subgraphs(0)
    dims = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 1:
            dims[t.Name().decode()] = (q.QuantizedDimension(), t.ShapeAsNumpy().tolist())
    assert dims["wd"] == (3, [1, 3, 3, 10])
    assert dims["w"] == (0, [4, 3, 3, 3])
    # buffers are 16-byte aligned in the file
    for i in range(1, m.BuffersLength()):
        buf = m.Buffers(i)
        if buf.DataLength():
            start = buf._tab.Vector(buf._tab.Offset(4))
            assert start % 16 == 0


def test_edgec_compiles_what_it_wrote(tmp_path):
    """The written model through the whole compiler, compared with TFLite Micro."""
    from edgec.commands.verify import verify
    p = tw.save(_int8_graph(), tmp_path / "s.tflite")
    res = verify(p, n=5, layers=True, compare_litert=False)
    assert res.reference == "TFLite Micro interpreter"
    assert res.ok and res.layers, [c.line() for c in res.outputs + res.layers if not c.ok]


def test_float_in_float_out_with_quantize_dequantize():
    g = Graph("qdq")
    g.add_tensor("x", (2, 5), "float32")
    g.inputs = ["x"]
    g.add_tensor("q", (2, 5), "int8", quant=_q(0.01, 3))
    g.add_node("Quantize", ["x"], ["q"], {"dtype": "int8", "rounding": "away"})
    g.add_tensor("pv", (2, 8), "int8", quant=_q(0.01, 3))
    g.add_node("Pad", ["q"], ["pv"], {"pads": [0, 1, 0, 2], "mode": "constant", "value": -50})
    g.add_node("Dequantize", ["pv"], ["y"], {})
    g.outputs = ["y"]
    data, _ = _roundtrip_tflm(g, n=5)
    from tflite.Model import Model
    from edgec.frontends.tflite import builtin_names
    m = Model.GetRootAs(data, 0)
    assert "PADV2" in {builtin_names()[m.OperatorCodes(i).BuiltinCode()]
                       for i in range(m.OperatorCodesLength())}


def test_float_ops_litert(tmp_path):
    rng = np.random.default_rng(0)
    g = Graph("f")
    g.add_tensor("x", (1, 6, 6, 2), "float32")
    g.inputs = ["x"]
    w = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    g.add_tensor("w", w.shape, "float32", w)
    g.add_node("Conv", ["x", "w"], ["c"], dict(layout="NHWC", strides=[1, 1], dilations=[1, 1],
                                               pads=[1, 1, 1, 1], group=1, act=None))
    for op, ins in (("Sigmoid", ["c"]), ("Tanh", ["c"]), ("Abs", ["c"]), ("Neg", ["c"]),
                    ("Relu", ["c"]), ("HardSwish", ["c"]), ("Exp", ["Tanh"])):
        g.add_node(op, ins, [op], {})
    g.add_node("Sqrt", ["Abs"], ["sq"], {})
    g.add_node("Clip", ["c"], ["r6"], {"min": 0.0, "max": 6.0})
    g.add_node("Max", ["sq", "Neg"], ["mx"], {})
    g.add_node("Min", ["mx", "Relu"], ["mn"], {})
    g.add_node("Div", ["mn", "Exp"], ["dv"], {"act": RELU})
    g.add_node("Reshape", ["dv"], ["fl"], {"shape": [1, 6 * 6 * 3]})
    g.add_node("LogSoftmax", ["fl"], ["ls"], {"axis": -1})
    g.outputs = ["ls", "Sigmoid", "HardSwish", "r6"]
    p = tw.save(g, tmp_path / "f.tflite")
    g2 = frontends.load(p)
    _same_graph(g, g2)
    samples = random_samples(g, 3, 2)
    ref, _ = reference.run_litert(p, samples)
    for s, r in zip(samples, ref):
        ours = interp.run(g, s)
        for j, o in enumerate(g.outputs):
            np.testing.assert_allclose(ours[o], np.asarray(r[j]).reshape(ours[o].shape),
                                       rtol=1e-5, atol=1e-5)


def test_unsupported_listed_at_once():
    g = Graph("bad")
    g.add_tensor("x", (1, 2, 4, 4), "float32")
    g.inputs = ["x"]
    w = np.ones((2, 2, 1, 1), np.float32)
    g.add_tensor("w", w.shape, "float32", w)
    g.add_node("Conv", ["x", "w"], ["c"], dict(layout="NCHW", strides=[1, 1], dilations=[1, 1],
                                               pads=[0, 0, 0, 0], group=1, act=None))
    g.add_node("Clip", ["c"], ["k"], {"min": -3.0, "max": 3.0})
    g.add_node("Erf", ["k"], ["y"], {})
    g.outputs = ["y"]
    with pytest.raises(UnsupportedError) as e:
        tw.to_bytes(g)
    msg = str(e.value)
    assert "NCHW" in msg and "clip to [-3.0, 3.0]" in msg and "Erf" in msg
