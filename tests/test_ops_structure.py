"""The operator package's own contracts: traits the passes read are declared on the
operators (edgec.ops.Op), and the shared int8 kernels' parameter array agrees with
the C that reads it."""
from __future__ import annotations

from edgec import ops


def _with(trait, value=True):
    return {name for name, op in ops.REGISTRY.items() if getattr(op, trait) == value}


def test_traits_are_declared_on_the_operators():
    # the sets the passes listed by name before the traits moved onto the operators
    assert _with("fuses_activation") == {"Conv", "FullyConnected", "MaxPool", "AveragePool",
                                         "Add", "Sub", "Mul"}
    assert _with("layout_sensitive") == {"Conv", "MaxPool", "AveragePool"}
    assert _with("transpose_commutes", "unary") == {
        "Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "Abs", "Neg", "Exp", "Sqrt",
        "Quantize", "Dequantize", "Copy"}
    assert _with("transpose_commutes", "binary") == {"Add", "Sub", "Mul", "Max", "Min", "Div"}
    assert _with("transpose_commutes", "concat") == {"Concat"}
    assert _with("quantize", "compute") == {"Conv", "FullyConnected", "Add", "Sub", "Mul",
                                            "Softmax", "Concat"}
    assert _with("quantize", "follow") == {"Reshape", "Transpose", "MaxPool", "AveragePool", "Pad",
                                           "Copy"}


def test_trait_values_are_known():
    for name, op in ops.REGISTRY.items():
        assert isinstance(op.fuses_activation, bool), name
        assert isinstance(op.layout_sensitive, bool), name
        assert op.transpose_commutes in (None, "unary", "binary", "concat"), name
        assert op.quantize in (None, "compute", "follow"), name
