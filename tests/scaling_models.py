"""Models whose size is one number, for compile-time scaling tests and profiling.

    python tests/scaling_models.py OUT_DIR K [K ...]    # writes concat_K.onnx, chain_K.onnx,
                                                        # concat_K_int8.tflite for every K

* ``concat_model(k)``: x[1, 8] float -> k elementwise nodes each reading x -> one
  Concat of all k outputs along axis 1 -> y[1, 8k] (k buffers alive at once: the
  case where an all-pairs conflict check or a per-parameter scan is quadratic);
* ``chain_model(n)``: x[1, 8] -> n unary and binary nodes, each reading the one
  before (binary ones also a constant) -> y[1, 8];
* ``concat_tflite_int8(k)``: the int8 TFLite form of the concat model (ADD and
  QUANTIZE on int8, one CONCATENATION), written with edgec's TFLite writer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np



def concat_model(k: int, ops=("Relu", "Neg", "Abs")):
    """ONNX ModelProto: x -> k elementwise nodes (cycling through ``ops``) -> Concat -> y."""
    from onnx import TensorProto, helper
    nodes = [helper.make_node(ops[i % len(ops)], ["x"], [f"r{i}"], name=f"n{i}") for i in range(k)]
    nodes.append(helper.make_node("Concat", [f"r{i}" for i in range(k)], ["y"], axis=1, name="cat"))
    g = helper.make_graph(nodes, f"concat{k}",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8 * k])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def chain_model(n: int):
    """ONNX ModelProto: a chain of n nodes; every fourth one a binary Add / Mul with a
    constant, the others unary (Neg, Abs, Sigmoid)."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = [], []
    unary = ("Neg", "Abs", "Sigmoid")
    for i in range(n):
        a, y = ("x" if i == 0 else f"t{i}"), ("y" if i == n - 1 else f"t{i + 1}")
        if i % 4 == 3:
            c = f"c{i}"
            inits.append(numpy_helper.from_array(np.full([1, 8], 0.5 + (i % 7) / 8, np.float32), c))
            nodes.append(helper.make_node("Add" if i % 8 == 3 else "Mul", [a, c], [y], name=f"n{i}"))
        else:
            nodes.append(helper.make_node(unary[i % 3], [a], [y], name=f"n{i}"))
    g = helper.make_graph(nodes, f"chain{n}",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def concat_tflite_int8(k: int) -> bytes:
    """int8 TFLite: x[1, 8] -> k ADD (x + x, fused RELU) / QUANTIZE (requantize) nodes ->
    CONCATENATION (one quantization for all, as TFLite Micro wants)."""
    from edgec.exporters import tflite as tflite_out
    from edgec.ir.graph import Graph, QuantParams
    g = Graph(f"concat{k}_int8")
    qx = QuantParams(np.array([0.05], np.float32), np.array([-3], np.int64))
    q = QuantParams(np.array([0.1], np.float32), np.array([2], np.int64))
    g.add_tensor("x", (1, 8), "int8", quant=qx)
    g.inputs = ["x"]
    outs = []
    for i in range(k):
        o = f"r{i}"
        g.add_tensor(o, (1, 8), "int8", quant=q)
        if i % 2 == 0:
            g.nodes.append(_node("Add", ["x", "x"], [o], f"n{i}", act=[0.0, float("inf")]))
        else:
            g.nodes.append(_node("Quantize", ["x"], [o], f"n{i}"))
        outs.append(o)
    g.add_tensor("y", (1, 8 * k), "int8", quant=q)
    g.nodes.append(_node("Concat", outs, ["y"], "cat", axis=1))
    g.outputs = ["y"]
    return tflite_out.to_bytes(g)


def _node(op, inputs, outputs, name, **attrs):
    from edgec.ir.graph import Node
    return Node(op, list(inputs), list(outputs), attrs, name)


def write_all(out: Path, sizes) -> list[Path]:
    import onnx
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in sizes:
        for name, m in ((f"concat_{k}.onnx", concat_model(k)), (f"chain_{k}.onnx", chain_model(k))):
            onnx.save(m, out / name)
            paths.append(out / name)
        p = out / f"concat_{k}_int8.tflite"
        p.write_bytes(concat_tflite_int8(k))
        paths.append(p)
    return paths


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for p in write_all(Path(sys.argv[1]), [int(a) for a in sys.argv[2:]]):
        print(p)
