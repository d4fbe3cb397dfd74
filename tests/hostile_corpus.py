"""The hostile and broken model corpus, generated (no binary blobs of unknown origin).

    python tests/hostile_corpus.py OUT_DIR     # writes the files and OUT_DIR/MANIFEST.json

Every entry is one model file (plus, for external-data cases, the files next to it
and one *outside* the model's directory that must never be read).  ``expect`` is

* ``"error"``: a malformed or impossible model: ``edgec build`` must exit 2 with one
  line on stderr, no traceback, quickly, with bounded memory and nothing written;
* ``"ok"``: a valid model with hostile names (comment terminators, quotes, newlines,
  preprocessor directives, very long names) or an unusual size: it must build, and no
  model-supplied string may reach the generated C outside a sanitized comment (every
  hostile name carries the marker ``PWNED``).

Models are built with the onnx helpers and edgec's own TFLite writer from small
valid bases, then broken on purpose.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

MARK = "PWNED"
HOSTILE_NAMES = [
    f"*/ int {MARK}_a; /*",
    f"\"{MARK}\"); system(\"rm -rf /\"); (\"",
    f"line1\n#include <stdio.h>\n#define {MARK} 1\nline2",
    f"#pragma {MARK}",
    f"??/ trigraph {MARK} ??=",
    f"back\\slash {MARK}\\",
    f"\\\n{MARK} continued",
    f"unicode \u2028 \u202e {MARK} \u00e9\u4e2d",
    f"tab\tcr\r{MARK}\x0bvt",
    f"{MARK} " + "*/" * 700,            # a long name ending in comment terminators
    f"// {MARK} line comment",
    f"'{MARK}' `{MARK}` $({MARK})",
]


@dataclass
class Entry:
    name: str                 # file name inside the corpus directory
    expect: str               # "error" | "ok"
    why: str
    args: list = field(default_factory=list)   # extra CLI arguments
    outside: str = ""         # a file outside the model dir that must not be read
    says: str = ""            # for "error": what the one line must mention


# --- valid bases --------------------------------------------------------------------

def onnx_base(names=None, opset=17):
    """x[1,3,8,8] -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> Softmax."""
    from onnx import TensorProto, helper, numpy_helper
    n = names or {}
    nm = lambda k: n.get(k, k)  # noqa: E731
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.3, nm("w")),
        numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32) * 0.1, nm("b")),
        numpy_helper.from_array(rng.normal(size=(4, 5)).astype(np.float32), nm("fc_w")),
        numpy_helper.from_array(rng.normal(size=(5,)).astype(np.float32), nm("fc_b")),
    ]
    nodes = [
        helper.make_node("Conv", [nm("x"), nm("w"), nm("b")], [nm("c")], name=nm("conv"),
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", [nm("c")], [nm("r")], name=nm("relu")),
        helper.make_node("GlobalAveragePool", [nm("r")], [nm("p")], name=nm("pool")),
        helper.make_node("Flatten", [nm("p")], [nm("f")], name=nm("flatten")),
        helper.make_node("Gemm", [nm("f"), nm("fc_w"), nm("fc_b")], [nm("g")], name=nm("gemm")),
        helper.make_node("Softmax", [nm("g")], [nm("y")], name=nm("softmax"), axis=-1),
    ]
    g = helper.make_graph(nodes, nm("graph"),
                          [helper.make_tensor_value_info(nm("x"), TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info(nm("y"), TensorProto.FLOAT, [1, 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name=nm("producer"))
    m.ir_version = 8
    return m


def tflite_graph(names=None):
    """An int8 graph: CONV_2D (per-channel) -> FULLY_CONNECTED -> SOFTMAX."""
    import edgec.ops  # noqa: F401  (the operators' shape rules, which Graph.add_node asks)
    from edgec.ir.graph import Graph, QuantParams
    n = names or {}
    nm = lambda k: n.get(k, k)  # noqa: E731
    rng = np.random.default_rng(1)
    g = Graph(nm("model"))
    g.add_tensor(nm("x"), (1, 6, 6, 2), "int8", quant=QuantParams([0.05], [-3]))
    g.inputs = [nm("x")]
    g.add_tensor(nm("w"), (3, 3, 3, 2), "int8", rng.integers(-127, 128, (3, 3, 3, 2)).astype(np.int8),
                 QuantParams(np.array([0.01, 0.02, 0.015], np.float32), np.zeros(3, np.int64), 0))
    g.add_tensor(nm("b"), (3,), "int32", np.array([10, -20, 30], np.int32))
    g.add_node("Conv", [nm("x"), nm("w"), nm("b")], [nm("c")],
               dict(layout="NHWC", strides=[1, 1], dilations=[1, 1], pads=[1, 1, 1, 1], group=1,
                    act=[0.0, float("inf")]))
    g.tensors[nm("c")].quant = QuantParams([0.04], [-128])
    g.add_node("Reshape", [nm("c")], [nm("flat")], {"shape": [1, 108]})
    g.add_tensor(nm("fw"), (4, 108), "int8", rng.integers(-127, 128, (4, 108)).astype(np.int8),
                 QuantParams([0.01], [0]))
    g.add_node("FullyConnected", [nm("flat"), nm("fw")], [nm("f")], {"keep_dims": False, "act": None})
    g.tensors[nm("f")].quant = QuantParams([0.2], [5])
    g.add_node("Softmax", [nm("f")], [nm("y")], {"axis": -1, "beta": 1.0})
    g.tensors[nm("y")].quant = QuantParams([1 / 256], [-128])
    g.outputs = [nm("y")]
    return g


def tflite_bytes(g=None, mutate=None) -> bytes:
    """Serialize with edgec's writer; ``mutate(writer)`` breaks it just before."""
    from edgec.exporters.tflite import EXPORTERS, Writer
    g = g or tflite_graph()
    w = Writer(g)
    for n in g.nodes:
        EXPORTERS[n.op](w, n)
    for name in g.inputs + g.outputs:
        w.tensor(name)
    if mutate:
        mutate(w)
    return w.finish()


# --- the corpus ----------------------------------------------------------------------

def build(out: Path) -> list[Entry]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []

    def put(name: str, data: bytes, expect: str, why: str, **kw) -> None:
        (out / name).write_bytes(data)
        entries.append(Entry(name, expect, why, **kw))

    def put_model(name, m, expect, why, **kw):
        put(name, m.SerializeToString(), expect, why, **kw)

    base = onnx_base()
    base_b = base.SerializeToString()
    tfl = tflite_bytes()
    rng = np.random.default_rng(1234)

    # -- not a model at all ---------------------------------------------------------
    put("empty.onnx", b"", "error", "empty file")
    put("empty.tflite", b"", "error", "empty file")
    for frac in (0.1, 0.5, 0.9):
        put(f"truncated_{int(frac * 100)}.onnx", base_b[: int(len(base_b) * frac)], "error",
            f"ONNX model cut at {int(frac * 100)}%")
        put(f"truncated_{int(frac * 100)}.tflite", tfl[: int(len(tfl) * frac)], "error",
            f"TFLite model cut at {int(frac * 100)}%")
    put("truncated_last_byte.onnx", base_b[:-1], "error", "ONNX model without its last byte")
    put("wrong_magic.tflite", tfl[:4] + b"XXXX" + tfl[8:], "error", "TFLite without 'TFL3'")
    put("png_header.onnx", b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 500, dtype=np.uint8)),
        "error", "a PNG header named .onnx")
    for k, size in enumerate((17, 1000, 100_000)):
        put(f"random_{size}.onnx", bytes(rng.integers(0, 256, size, dtype=np.uint8)), "error",
            f"{size} random bytes named .onnx")
        body = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        body[4:8] = b"TFL3"
        put(f"random_{size}.tflite", bytes(body), "error", f"{size} random bytes with the TFL3 mark")
    put("random_1000.bin", bytes(rng.integers(0, 256, 1000, dtype=np.uint8)), "error",
        "random bytes, unknown suffix")

    # -- valid protobufs that are not models ----------------------------------------------
    t = numpy_helper.from_array(np.ones((2, 2), np.float32), "t")
    put("tensorproto.onnx", t.SerializeToString(), "error", "a serialized TensorProto")
    put("graphproto.onnx", base.graph.SerializeToString(), "error", "a GraphProto, not a ModelProto")
    put("nodeproto.onnx", base.graph.node[0].SerializeToString(), "error", "a NodeProto")
    m = onnx.ModelProto()
    m.ir_version = 8
    m.producer_name = "no graph"
    put_model("model_without_graph.onnx", m, "error", "ModelProto without a graph")
    m = onnx_base()
    m.ir_version = 0
    put_model("ir_version_0.onnx", m, "error", "ir_version 0")

    # -- huge, negative and zero dimensions --------------------------------------------------
    def with_input_dims(dims):
        m = onnx_base()
        d = m.graph.input[0].type.tensor_type.shape.dim
        for k, v in enumerate(dims):
            d[k].dim_value = v
        return m
    put_model("input_dim_2pow40.onnx", with_input_dims([1, 3, 1 << 40, 8]), "error",
              "input dimension 2^40")
    put_model("input_dim_int64_max.onnx", with_input_dims([1, 3, (1 << 63) - 1, 8]), "error",
              "input dimension 2^63-1")
    put_model("input_dim_negative.onnx", with_input_dims([1, 3, -8, 8]), "error", "negative dimension")
    put_model("input_dim_zero.onnx", with_input_dims([1, 3, 0, 8]), "error", "zero dimension")
    m = onnx_base()
    del m.graph.initializer[0].dims[:]
    m.graph.initializer[0].dims.extend([1 << 20, 1 << 20, 3, 3])
    put_model("initializer_dims_huge_no_data.onnx", m, "error", "initializer of 2^40 floats, 432 bytes")
    m = onnx_base()
    del m.graph.initializer[0].dims[:]
    m.graph.initializer[0].dims.extend([-4, 3, 3, 3])
    put_model("initializer_dims_negative.onnx", m, "error", "initializer with a negative dimension")

    def single(op, inputs, attrs=None, inits=(), in_shape=(2, 3), opset=17, out_shape=None):
        nodes = [helper.make_node(op, inputs, ["y"], **(attrs or {}))]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])

    def i64(name, v):
        return numpy_helper.from_array(np.array(v, np.int64), name)

    put_model("reshape_huge.onnx", single("Reshape", ["x", "s"], inits=[i64("s", [1 << 40, 1 << 20])]),
              "error", "Reshape to 2^60 elements")
    put_model("constantofshape_huge.onnx", single("ConstantOfShape", ["s"], inits=[i64("s", [1 << 30, 1 << 30])]),
              "error", "ConstantOfShape of 2^60 elements")
    put_model("expand_huge.onnx", single("Expand", ["x", "s"], inits=[i64("s", [1 << 31, 1 << 20, 3])]),
              "error", "Expand to 2^51 x 3")
    put_model("tile_huge.onnx", single("Tile", ["x", "s"], inits=[i64("s", [1 << 30, 1 << 30])]),
              "error", "Tile by 2^30 x 2^30")
    put_model("pad_huge.onnx", single("Pad", ["x", "s"], inits=[i64("s", [0, 0, 1 << 40, 1 << 40])]),
              "error", "Pad by 2^40")
    put_model("range_huge.onnx", single("Range", ["a", "b", "c"], inits=[
        numpy_helper.from_array(np.array(0, np.int64), "a"), numpy_helper.from_array(np.array(1 << 50, np.int64), "b"),
        numpy_helper.from_array(np.array(1, np.int64), "c")]), "error", "Range of 2^50 elements")

    # -- graph structure ------------------------------------------------------------------------
    nodes = [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Add", ["x", "a"], ["y"])]
    g = helper.make_graph(nodes, "cyc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    put_model("cycle.onnx", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "error",
              "two nodes feeding each other")
    nodes = [helper.make_node("Add", ["x", "y"], ["y"])]
    g = helper.make_graph(nodes, "self", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    put_model("self_loop.onnx", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "error",
              "a node reading its own output")
    m = onnx_base()
    m.graph.node[1].output[0] = "c"  # Relu writes the tensor Conv writes
    put_model("tensor_produced_twice.onnx", m, "error", "two nodes write one tensor")
    m = onnx_base()
    m.graph.initializer.append(numpy_helper.from_array(np.zeros(4, np.float32), "b"))
    put_model("duplicate_initializer.onnx", m, "error", "two initializers named 'b'")
    m = onnx_base()
    m.graph.input.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]))
    put_model("duplicate_input.onnx", m, "error", "two graph inputs named 'x'")
    m = onnx_base()
    m.graph.node[2].input[0] = "nowhere"
    put_model("dangling_input.onnx", m, "error", "a node reads a tensor nothing produces")
    m = onnx_base()
    m.graph.output[0].name = "never_computed"
    put_model("output_never_computed.onnx", m, "error", "a graph output nothing computes")
    put_model("name_20kb.onnx", onnx_base({"r": "r" * 20_000}), "error", "a tensor name of 20,000 characters")

    # -- initializer data that does not match its shape -----------------------------------------
    m = onnx_base()
    m.graph.initializer[1].raw_data = b"\x00" * 3
    put_model("raw_data_short.onnx", m, "error", "raw_data of 3 bytes for 4 floats")
    m = onnx_base()
    m.graph.initializer[1].raw_data = b"\x00" * 400
    put_model("raw_data_long.onnx", m, "error", "raw_data of 400 bytes for 4 floats")
    m = onnx_base()
    t = m.graph.initializer[1]
    t.ClearField("raw_data")
    t.float_data.extend([1.0, 2.0, 3.0])
    put_model("float_data_count.onnx", m, "error", "3 float_data values for 4 floats")
    m = onnx_base()
    m.graph.initializer[1].data_type = 8  # STRING
    put_model("string_initializer.onnx", m, "error", "a string initializer feeding Conv")
    m = onnx_base()
    m.graph.initializer[1].data_type = 999
    put_model("unknown_element_type.onnx", m, "error", "element type 999")

    # -- external data ----------------------------------------------------------------------------
    secret = out.parent / f"{out.name}_outside_secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())

    def ext(name, location, offset=None, length=None, why="", write=None):
        m = onnx_base()
        t = m.graph.initializer[1]
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        if write:
            write()
        put_model(name, m, "error", why, outside=str(secret))

    rel = "../" + secret.name
    ext("external_dotdot.onnx", rel, why="external data ../ outside the model directory")
    ext("external_absolute.onnx", str(secret), why="external data at an absolute path")
    ext("external_etc_passwd.onnx", "/etc/passwd", why="external data /etc/passwd")
    ext("external_sub_dotdot.onnx", "sub/../../" + secret.name, why="sub/../../ escapes the directory")
    link = out / "ext_link.bin"
    if not link.is_symlink():
        link.symlink_to(secret)
    ext("external_symlink.onnx", "ext_link.bin", why="a symlink in the model directory to a file outside")
    (out / "ext_small.bin").write_bytes(b"\x00" * 8)
    ext("external_offset_beyond.onnx", "ext_small.bin", offset=1 << 40, length=16,
        why="external offset past the end of the file")
    ext("external_length_beyond.onnx", "ext_small.bin", offset=0, length=1 << 40,
        why="external length past the end of the file")
    ext("external_negative_offset.onnx", "ext_small.bin", offset=-8, length=16, why="negative offset")
    ext("external_bad_offset.onnx", "ext_small.bin", offset="0x10", why="offset that is not a number")
    ext("external_short_data.onnx", "ext_small.bin", offset=0, length=8,
        why="external data of 8 bytes for 4 floats")
    ext("external_missing.onnx", "no_such_file.bin", why="external data file missing")
    ext("external_directory.onnx", ".", why="external data location is the directory itself")
    ext("external_nul.onnx", "ext_small.bin\x00../../x", why="a NUL byte in the location")
    ext("external_nul_inside.onnx", "ext_small.bin\x00", why="a NUL byte in a location inside the directory")
    # protobuf hands a string field that is not UTF-8 over as bytes (found by the mutation run)
    m = onnx_base()
    t = m.graph.initializer[1]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "ext_small.bin"
    put("external_location_not_utf8.onnx", m.SerializeToString().replace(b"ext_small.bin", b"ext_small\xbebin"),
        "error", "an external data location that is not UTF-8", says="not a file name")

    # -- semantic errors in valid protobufs ---------------------------------------------------------
    put_model("opset_99999.onnx", onnx_base(opset=99999), "error", "opset 99999")
    m = onnx_base()
    m.graph.node[1].domain = "evil.domain"
    put_model("unknown_domain.onnx", m, "error", "an operator from an unknown domain")
    m = onnx_base()
    for a in m.graph.node[0].attribute:
        if a.name == "pads":
            a.ints[:] = [1, 1, 1]
    put_model("conv_pads_wrong_length.onnx", m, "error", "Conv pads of length 3")
    m = onnx_base()
    m.graph.node[0].attribute.append(helper.make_attribute("strides", [1, 1, 1]))
    put_model("conv_strides_wrong_length.onnx", m, "error", "Conv strides of length 3")
    m = onnx_base()
    m.graph.node[2].op_type = "MaxPool"
    m.graph.node[2].attribute.extend([helper.make_attribute("kernel_shape", [2, 2]),
                                      helper.make_attribute("strides", [1])])
    put_model("maxpool_strides_wrong_length.onnx", m, "error", "MaxPool strides of length 1")
    m = onnx_base()
    m.graph.node[0].attribute.append(helper.make_attribute("group", 0))
    put_model("conv_group_0.onnx", m, "error", "Conv group 0")
    m = onnx_base()
    m.graph.node[0].attribute.append(helper.make_attribute("strides", [0, -1]))
    put_model("conv_strides_0.onnx", m, "error", "Conv strides 0 and -1")
    m = onnx_base()
    m.graph.node[0].attribute.append(helper.make_attribute("kernel_shape", [30, 30]))
    put_model("conv_kernel_mismatch.onnx", m, "error", "kernel_shape contradicting the weights")
    put_model("transpose_bad_perm.onnx", single("Transpose", ["x"], {"perm": [0, 0]}), "error",
              "Transpose perm [0, 0]")
    put_model("reshape_two_minus_one.onnx", single("Reshape", ["x", "s"], inits=[i64("s", [-1, -1])]),
              "error", "Reshape with two -1")
    put_model("concat_axis_7.onnx", single("Concat", ["x", "x"], {"axis": 7}), "error", "Concat axis 7")
    put_model("softmax_axis_10.onnx", single("Softmax", ["x"], {"axis": 10}), "error", "Softmax axis 10")
    put_model("gather_index_out_of_range.onnx", single("Gather", ["x", "i"], {"axis": 1},
                                                        inits=[i64("i", [7])]), "error",
              "Gather with a constant index 7 into 3")
    put_model("slice_step_0.onnx", single("Slice", ["x", "a", "b", "c", "d"],
                                          inits=[i64("a", [0]), i64("b", [2]), i64("c", [1]), i64("d", [0])]),
              "error", "Slice with step 0")
    put_model("split_wrong_sizes.onnx", single("Split", ["x", "s"], {"axis": 1}, inits=[i64("s", [2, 2])]),
              "error", "Split sizes 2+2 of a dimension of 3")
    put_model("matmul_mismatch.onnx", single("MatMul", ["x", "x"]), "error", "MatMul [2,3] x [2,3]")
    put_model("squeeze_non_one.onnx", single("Squeeze", ["x", "a"], inits=[i64("a", [1])]), "error",
              "Squeeze a dimension of 3")
    put_model("unsqueeze_repeated.onnx", single("Unsqueeze", ["x", "a"], inits=[i64("a", [0, 0])]),
              "error", "Unsqueeze with a repeated axis")
    put_model("flatten_axis_9.onnx", single("Flatten", ["x"], {"axis": 9}), "error", "Flatten axis 9")
    put_model("cast_to_string.onnx", single("Cast", ["x"], {"to": 8}), "error", "Cast to string")
    # subgraphs nested deeper than protobuf's recursion limit (encoded by hand: the onnx
    # helpers cannot build it)
    inner = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "leaf",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]).SerializeToString()
    for _ in range(300):
        inner = _nest_if(inner)
    model = _ld(7, inner) + _varint_field(1, 8) + _ld(8, _varint_field(2, 17))
    put("nested_subgraphs_300.onnx", model, "error",
        "If subgraphs nested 300 deep (over protobuf's recursion limit)")
    # a local function that calls itself
    f = helper.make_function("local", "Rec", ["x"], ["y"], [helper.make_node("Rec", ["x"], ["y"], domain="local")],
                             [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    g = helper.make_graph([helper.make_node("Rec", ["x"], ["y"], domain="local")], "rec",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                          functions=[f])
    put_model("recursive_function.onnx", m, "error", "a model-local function that calls itself")

    # -- TFLite: out-of-range offsets, indices and buffers ---------------------------------------------
    def tb(name, mutate, why, expect="error", g=None, **kw):
        put(name, tflite_bytes(g, mutate), expect, why, **kw)

    def op0(w):
        return w.operators[0]
    tb("tfl_input_index_999.tflite", lambda w: op0(w)["inputs"].__setitem__(0, 999),
       "operator input tensor index 999")
    tb("tfl_input_index_negative.tflite", lambda w: op0(w)["inputs"].__setitem__(0, -7),
       "operator input tensor index -7")
    tb("tfl_output_index_999.tflite", lambda w: op0(w)["outputs"].__setitem__(0, 999),
       "operator output tensor index 999")
    tb("tfl_opcode_index_99.tflite", lambda w: op0(w).__setitem__("opcode", 99), "opcode index 99")
    tb("tfl_buffer_index_999.tflite", lambda w: _t(w, "w").__setitem__("buffer", 999),
       "weights in buffer 999 of 9")
    tb("tfl_buffer_short.tflite", lambda w: w.buffers.__setitem__(_t(w, "w")["buffer"], b"\x01" * 7),
       "weights buffer of 7 bytes")
    tb("tfl_buffer_outside_file.tflite",
       lambda w: w.buffers.__setitem__(_t(w, "w")["buffer"], ("external", 1 << 30, 54)),
       "weights at offset 2^30 outside the file")
    tb("tfl_shape_negative.tflite", lambda w: _t(w, "x").__setitem__("shape", [1, -6, 6, 2]),
       "input shape [1, -6, 6, 2]")
    tb("tfl_shape_huge.tflite", lambda w: _t(w, "x").__setitem__("shape", [1, 1 << 30, 1 << 30, 2]),
       "input shape [1, 2^30, 2^30, 2]")
    tb("tfl_no_inputs_to_conv.tflite", lambda w: op0(w).__setitem__("inputs", []), "CONV_2D without inputs")
    tb("tfl_subgraph_input_999.tflite", lambda w: setattr(w, "subgraph_inputs", [999]), "subgraph input 999")
    tb("tfl_no_outputs.tflite", lambda w: setattr(w, "subgraph_outputs", []), "subgraph without outputs")
    put("tfl_no_subgraphs.tflite", _tfl_no_subgraphs(), "error", "a model without subgraphs")
    tb("tfl_stride_0.tflite", lambda w: op0(w)["options"][1].__setitem__("StrideH", 0), "CONV_2D stride 0")
    tb("tfl_options_type_mismatch.tflite",
       lambda w: op0(w).__setitem__("options", ("Pool2DOptions", {"FilterWidth": 99, "FilterHeight": 99})),
       "CONV_2D with a Pool2DOptions table")
    tb("tfl_unknown_builtin.tflite", lambda w: w.opcodes.__setitem__(op0(w)["opcode"], ("BUILTIN_9999", 1)),
       "builtin operator code 9999")
    tb("tfl_scale_nan.tflite", lambda w: _t(w, "x").__setitem__("quant", _quant([float("nan")], [0])),
       "input quantization scale NaN")
    tb("tfl_scale_negative.tflite", lambda w: _t(w, "x").__setitem__("quant", _quant([-0.5], [0])),
       "input quantization scale -0.5")
    tb("tfl_quant_axis_7.tflite", lambda w: setattr(_t(w, "w")["quant"], "axis", 7),
       "per-channel quantization along axis 7 of a 4-D tensor")
    tb("tfl_cycle.tflite", _tfl_cycle, "two operators feeding each other")
    tb("tfl_tensor_written_twice.tflite", lambda w: w.operators[1]["outputs"].__setitem__(
        0, w.operators[0]["outputs"][0]), "two operators write one tensor")

    # -- budgets (edgec.ir.limits): small files that ask for minutes or gigabytes ---------------------------
    def fn_doubling(levels: int):
        """Local functions f1..fL, each calling the previous one twice: 2^(L-1) inlined nodes."""
        fs = [helper.make_function("local", "f0", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                   [helper.make_opsetid("", 17)])]
        for i in range(1, levels):
            fs.append(helper.make_function("local", f"f{i}", ["x"], ["y"], [
                helper.make_node(f"f{i - 1}", ["x"], ["a"], domain="local"),
                helper.make_node(f"f{i - 1}", ["a"], ["y"], domain="local")], [helper.make_opsetid("", 17)]))
        gr = helper.make_graph([helper.make_node(f"f{levels - 1}", ["x"], ["y"], domain="local")], "fns",
                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
        m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                              functions=fs)
        m.ir_version = 8
        return m
    put_model("functions_2e20_nodes.onnx", fn_doubling(21), "error",
              "local functions each calling the previous twice: 2^20 inlined nodes (limit nodes)")
    put_model("functions_2e40_nodes.onnx", fn_doubling(41), "error", "the same doubling to 2^40 nodes")
    fl = [helper.make_node("ConstantOfShape", ["s"], [f"y{i}"],
                           value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])) for i in range(3)]
    put_model("constant_of_shape_2e24_x3.onnx", helper.make_model(helper.make_graph(
        fl, "cos", [], [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1 << 24]) for i in range(3)],
        [numpy_helper.from_array(np.array([1 << 24], np.int64), "s")]),
        opset_imports=[helper.make_opsetid("", 17)]), "error",
        "ConstantOfShape([2^24]) as three graph outputs: 192 MB of constants from 300 bytes (limit fold_bytes)")
    # a Tile of a constant into a graph output: folding it would pass fold_bytes, so it stays an operator
    tile = helper.make_graph(
        [helper.make_node("Tile", ["c", "reps"], ["y"]), helper.make_node("Relu", ["x"], ["z"])], "tile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1 << 23]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(np.ones(4, np.float32), "c"),
         numpy_helper.from_array(np.array([1 << 21], np.int64), "reps")])
    put_model("tile_to_32mb_output.onnx", helper.make_model(tile, opset_imports=[helper.make_opsetid("", 17)]),
              "ok", "Tile of 16 bytes into a 32 MB graph output: computed at run time, not folded")

    def external(dims, entries, fname, data_len=None):
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims, data_location=TensorProto.EXTERNAL)
        for k, v in entries:
            e = t.external_data.add()
            e.key, e.value = k, v
        if data_len is not None:
            with open(out / fname, "wb") as f:
                f.truncate(data_len)   # sparse: no real disk space
        n = int(np.prod(dims))
        return helper.make_model(helper.make_graph(
            [helper.make_node("Add", ["x", "w"], ["y"])], "ext",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)], [t]),
            opset_imports=[helper.make_opsetid("", 17)]) if n else None
    put_model("external_1gib_for_4_floats.onnx", external([4], [("location", "ext_1gib.bin")], "ext_1gib.bin",
                                                           1 << 30), "error",
              "4 floats whose external data file (no length given) holds 1 GiB: refused before reading")
    put_model("external_length_mismatch.onnx", external([4], [("location", "ext_1gib.bin"), ("length", "64")],
                                                        "ext_1gib.bin"), "error",
              "external data length 64 for 4 floats")
    put_model("external_256mb_tensor.onnx", external([1 << 26], [("location", "ext_1gib.bin"),
                                                                  ("length", str(1 << 28))], "ext_1gib.bin"),
              "error", "a 256 MB external initializer (limit constant_bytes), refused before reading")

    # -- TFLite parameters no kernel can take (they used to build, or exit 3) ------------------------
    def zp(tensor, value):
        def m(w):
            q = _t(w, tensor)["quant"]
            _t(w, tensor)["quant"] = _quant(q.scale, [value] * q.scale.size)
        return m
    tb("tfl_zero_point_2pow40.tflite", zp("x", 1 << 40), "input zero point 2^40 (the C did not compile)",
       says="zero point 1099511627776 outside -128..127")
    tb("tfl_zero_point_1000.tflite", zp("c", 1000), "int8 activation zero point 1000",
       says="zero point 1000 outside -128..127")
    tb("tfl_zero_point_minus_129.tflite", zp("f", -129), "int8 activation zero point -129",
       says="zero point -129 outside -128..127")
    tb("tfl_bias_zero_point_3.tflite", lambda w: _t(w, "b").__setitem__("quant", _quant([0.0005] * 3, [3] * 3)),
       "int32 bias with zero point 3 (TFLite requires 0)", says="zero point 3 (must be 0)")
    tb("tfl_bias_scale_nan.tflite", lambda w: _t(w, "b").__setitem__("quant", _quant([float("nan")] * 3, [0] * 3)),
       "int32 bias with NaN scales", says="quantization scale [nan")
    for label, beta in (("nan", float("nan")), ("inf", float("inf")), ("negative", -1.0)):
        tb(f"tfl_softmax_beta_{label}.tflite",
           lambda w, b=beta: w.operators[-1]["options"][1].__setitem__("Beta", b),
           f"SOFTMAX beta {beta}", says="Softmax beta")
    tb("tfl_padding_7.tflite", lambda w: op0(w)["options"][1].__setitem__("Padding", 7),
       "CONV_2D padding enum 7 (SAME is 0, VALID 1)", says="padding 7 is not one of")
    tb("tfl_fused_activation_9.tflite", lambda w: op0(w)["options"][1].__setitem__("FusedActivationFunction", 9),
       "fused activation enum 9", says="fused activation 9 is not one of")
    tb("tfl_fc_bias_length.tflite",
       lambda w: w.operators[2]["inputs"].append(w.const("fc_b", np.array([1, 2], np.int32), "int32")),
       "FULLY_CONNECTED bias of 2 values for 4 outputs", says="bias of shape [2] for 4 output channels")
    tb("tfl_conv_bias_length.tflite",
       lambda w: op0(w)["inputs"].__setitem__(2, w.const("cb", np.array([1, 2], np.int32), "int32")),
       "CONV_2D bias of 2 values for 3 filters", says="bias of shape [2] for 3 output channels")
    tb("tfl_dilation_2pow31.tflite", lambda w: op0(w)["options"][1].__setitem__("DilationHFactor", (1 << 31) - 1),
       "CONV_2D dilation 2^31-1 (SAME padding: the C's window arithmetic overflowed int)",
       says="dilation 2147483647")

    # -- ONNX attributes of the wrong type or value ------------------------------------------------
    m = onnx_base()
    m.graph.node[1].op_type = "LeakyRelu"
    m.graph.node[1].attribute.append(helper.make_attribute("alpha", [1, 2]))
    put_model("leakyrelu_alpha_ints.onnx", m, "error", "LeakyRelu alpha given as INTS",
              says="attribute 'alpha' is INTS, expected FLOAT")
    m = onnx_base()
    m.graph.node[0].attribute.append(helper.make_attribute("auto_pad", "SAME_SIDEWAYS"))
    put_model("conv_auto_pad_bogus.onnx", m, "error", "Conv auto_pad 'SAME_SIDEWAYS'",
              says="attribute 'auto_pad' 'SAME_SIDEWAYS' is not one of")
    m = onnx_base()
    m.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.zeros(3, np.float32), "b"))
    put_model("conv_bias_length.onnx", m, "error", "Conv bias of 3 values for 4 filters",
              says="bias of shape [3] for 4 output channels")
    m = onnx_base()
    m.graph.node.insert(4, helper.make_node("Cast", ["f"], ["f64"], to=TensorProto.INT64))
    m.graph.node[5].op_type = "MatMul"
    m.graph.node[5].input[:] = ["f64", "fc_w"]
    put_model("matmul_mixed_types.onnx", m, "error", "MatMul of int64 and float inputs (the C did not "
              "compile)", says="must have the same element type")
    f32 = lambda name, v: numpy_helper.from_array(np.asarray(v, np.float32), name)  # noqa: E731
    put_model("batchnorm_mean_length.onnx", single(
        "BatchNormalization", ["x", "s", "b", "m", "v"], in_shape=(2, 3, 4), inits=[
            f32("s", [1, 1, 1]), f32("b", [0, 0, 0]), f32("m", [0, 0]), f32("v", [1, 1, 1])]),
        "error", "BatchNormalization mean of 2 values for 3 channels", says="mean of shape [2] for 3")
    put_model("string_labels_dims.onnx", _labels_model(3, [2]), "error",
              "a string label table of 3 strings declared [2]", says="3 strings for its shape [2]")
    put_model("zipmap_label_count.onnx", _stump_classifier(zipmap_labels=[0, 1, 2]), "error",
              "ZipMap with 3 labels for 2 class columns", says="ZipMap: 3 class labels")
    put_model("tree_cycle.onnx", _stump_classifier(false_child=0), "error",
              "a tree whose node 0 is its own false child", says="points to itself")

    # -- valid models with hostile names: must build, names only in sanitized comments ------------------
    hn = {k: HOSTILE_NAMES[i % len(HOSTILE_NAMES)] + f" {k}" for i, k in enumerate(
        ["x", "w", "b", "c", "r", "p", "f", "fc_w", "fc_b", "g", "y", "conv", "relu", "pool", "flatten",
         "gemm", "softmax", "graph", "producer"])}
    put_model("hostile_names.onnx", onnx_base(hn), "ok", "every name hostile")
    put_model("hostile_name_4000.onnx", onnx_base({"r": f"{MARK} */" + "#" * 3990 + "*/"}), "ok",
              "a 4,000-character name of comment terminators")
    put("hostile_names.tflite", tflite_bytes(tflite_graph({
        k: HOSTILE_NAMES[i % len(HOSTILE_NAMES)] + f" {k}" for i, k in enumerate(
            ["model", "x", "w", "b", "c", "flat", "fw", "f", "y"])})), "ok", "every tensor name hostile")
    put("hostile_name_20kb.tflite", tflite_bytes(tflite_graph({"c": f"{MARK} */ " * 2500})), "ok",
        "a 20 KB tensor name (TFLite names are cut to 256 characters)")
    put(f"{MARK} ??= #define \"x\" \\.tflite", tfl, "ok", "a hostile file name (the model name comes from it)")
    put("hostile_cli_name.onnx", base_b, "ok", "a hostile --name",
        args=["--name", "*/ evil\n#include <x> \"q\""])
    # a long chain: compile time must stay linear
    nodes = [helper.make_node("Relu" if i % 2 else "Neg", [f"t{i}"], [f"t{i + 1}"]) for i in range(5000)]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("t5000", TensorProto.FLOAT, [4])])
    put_model("chain_5000_nodes.onnx", helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              "ok", "5,000 nodes in a chain")

    (out / "MANIFEST.json").write_text(json.dumps([asdict(e) for e in entries], indent=1) + "\n")
    return entries


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(field: int, v: int) -> bytes:
    return _varint(field << 3) + _varint(v)


def _nest_if(graph: bytes) -> bytes:
    """GraphProto { node: If(c) -> y with then_branch = ``graph`` }."""
    attr = _ld(1, b"then_branch") + _ld(6, graph) + _varint_field(20, 5)
    node = _ld(1, b"c") + _ld(2, b"y") + _ld(4, b"If") + _ld(5, attr)
    return _ld(1, node) + _ld(2, b"nest") + _ld(11, _ld(1, b"c")) + _ld(12, _ld(1, b"y"))


def _t(w, name: str) -> dict:
    """The writer's TFLite tensor record for IR tensor ``name``."""
    return w.tensors[w.tensor(name)]


def _quant(scale, zero_point):
    """QuantParams holding any values (the constructor's checks bypassed)."""
    from edgec.ir.graph import QuantParams
    q = QuantParams([0.05], [0])
    q.scale = np.asarray(scale, np.float32).reshape(-1)
    q.zero_point = np.asarray(zero_point, np.int64).reshape(-1)
    return q


def _labels_model(n_strings: int, dims: list[int]):
    """X[1,3] -> ArgMax -> ArrayFeatureExtractor over a string label table (how
    converters map a class index to its label), the table's dims as given."""
    from onnx import TensorProto, helper
    table = TensorProto(name="labels", data_type=TensorProto.STRING, dims=dims,
                        string_data=[f"c{i}".encode() for i in range(n_strings)])
    nodes = [helper.make_node("ArgMax", ["X"], ["idx"], axis=1, keepdims=0),
             helper.make_node("ArrayFeatureExtractor", ["labels", "idx"], ["y"], domain="ai.onnx.ml")]
    g = helper.make_graph(nodes, "labels", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.STRING, [1])], [table])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])


def _stump_classifier(false_child: int = 2, zipmap_labels=None):
    """A one-split TreeEnsembleClassifier on X[1,2] (two classes), its scores through
    a ZipMap when ``zipmap_labels`` is given."""
    from onnx import TensorProto, helper
    tree = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[false_child, 0, 0],
        class_treeids=[0, 0], class_nodeids=[1, 2], class_ids=[0, 1], class_weights=[1.0, 1.0],
        classlabels_int64s=[0, 1])
    nodes, out = [tree], "scores"
    if zipmap_labels is not None:
        nodes.append(helper.make_node("ZipMap", ["scores"], ["probs"], domain="ai.onnx.ml",
                                      classlabels_int64s=list(zipmap_labels)))
        out = "probs"
    outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [1]),
            helper.make_tensor_value_info(out, TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "stump", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])], outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 9
    return m


def _tfl_no_subgraphs() -> bytes:
    import flatbuffers
    import tflite
    b = flatbuffers.Builder(64)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _tfl_cycle(w):
    # op0 reads op2's output instead of the graph input
    w.operators[0]["inputs"][0] = w.operators[-1]["outputs"][0]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile_corpus.py OUT_DIR")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    es = build(Path(sys.argv[1]))
    print(f"{len(es)} files ({sum(e.expect == 'error' for e in es)} must fail, "
          f"{sum(e.expect == 'ok' for e in es)} must build) in {sys.argv[1]}")
