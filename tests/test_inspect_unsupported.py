"""`edgec inspect` and `build` list every unsupported operator variant of a model at once,
from one pass, whatever order the operators come in (issue 17): a refused operator's
outputs stay declared as the flatbuffer declares them, so the operators after it are
still imported and checked."""
import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tflite_builder import ModelBuilder  # noqa: E402

from edgec.frontends import tflite as fe  # noqa: E402
from edgec.ir.errors import EdgecError, UnsupportedError  # noqa: E402

# int8 variants edgec has no kernel for (importers refusing the type: float-only
# importers, and the float-only unary rule's check of the input type)
REFUSED = ("SQRT", "GELU", "EXP", "LOG")
# LOG has no importer at all: listed by its name alone, in the same pass
NO_IMPORTER = {"LOG"}


def listed(op: str) -> str:
    return op if op in NO_IMPORTER else f"{op}[int8]"


def _chain(order, relu_between=True, bad_after=None) -> bytes:
    """x -> order[0] -> (RELU) -> order[1] -> ... -> y, all int8 [1, 8]."""
    b = ModelBuilder()
    x = b.tensor([1, 8], "int8", scale=0.05, zero_point=-3, name="x")
    cur = x
    for k, op in enumerate(order):
        y = b.tensor([1, 8], "int8", scale=0.1, zero_point=2, name=f"{op.lower()}_out")
        ins = [cur]
        b.op(op, ins, [y])
        cur = y
        if relu_between and k < len(order) - 1:
            r = b.tensor([1, 8], "int8", scale=0.1, zero_point=2, name=f"relu_{k}")
            b.op("RELU", [cur], [r])
            cur = r
        if bad_after == k:
            # a RESHAPE to a shape of another size: a genuine model error
            bad = b.tensor([1, 3], "int8", scale=0.1, zero_point=2, name="bad")
            shape = b.tensor([2], "int32", data=[1, 3])
            b.op("RESHAPE", [cur, shape], [bad])
            cur = bad
    return b.finish([x], [cur])


ORDERS = [("SQRT", "GELU", "LOG", "EXP"),
          ("EXP", "LOG", "GELU", "SQRT"),
          ("LOG", "EXP", "SQRT", "GELU"),
          ("GELU", "SQRT", "EXP", "LOG")]


def test_every_refused_int8_op_is_refused_alone():
    """Each operator the tests chain is refused on its own (else the list tests nothing)."""
    for op in REFUSED:
        with pytest.raises(UnsupportedError) as e:
            fe.from_bytes(_chain([op]))
        assert e.value.items == [listed(op)]


@pytest.mark.parametrize("order", list(itertools.permutations(REFUSED[:4])) + ORDERS[2:],
                         ids=lambda o: "-".join(o))
def test_one_pass_lists_all(order):
    for relu in (True, False):
        with pytest.raises(UnsupportedError) as e:
            fe.from_bytes(_chain(order, relu_between=relu))
        assert e.value.items == sorted(listed(op) for op in order)


def test_model_error_still_stops_with_one_line():
    """A genuine error (a RESHAPE changing the element count) is reported, not hidden by
    the unsupported operators before it, when it does not read what they compute..."""
    b = ModelBuilder()
    x = b.tensor([1, 8], "int8", scale=0.05, zero_point=-3, name="x")
    r = b.tensor([1, 8], "int8", scale=0.1, zero_point=2)
    b.op("SQRT", [x], [r])
    bad = b.tensor([1, 3], "int8", scale=0.05, zero_point=-3)
    b.op("RESHAPE", [x, b.tensor([2], "int32", data=[1, 3])], [bad])
    with pytest.raises(EdgecError) as e:
        fe.from_bytes(b.finish([x], [r, bad]))
    assert not isinstance(e.value, UnsupportedError)
    assert "operator 1 (RESHAPE)" in str(e.value) and "\n" not in str(e.value)
    # ... as without the unsupported operator
    b = ModelBuilder()
    x = b.tensor([1, 8], "int8", scale=0.05, zero_point=-3, name="x")
    bad = b.tensor([1, 3], "int8", scale=0.05, zero_point=-3)
    b.op("RESHAPE", [x, b.tensor([2], "int32", data=[1, 3])], [bad])
    with pytest.raises(EdgecError) as e:
        fe.from_bytes(b.finish([x], [bad]))
    assert not isinstance(e.value, UnsupportedError) and "operator 0 (RESHAPE)" in str(e.value)
    # downstream of a refused operator, the error may stem from what that operator left
    # out: the operators are listed, the rest of the pass goes on
    with pytest.raises(UnsupportedError) as e:
        fe.from_bytes(_chain(["SQRT", "GELU", "EXP"], bad_after=0))
    assert e.value.items == ["EXP[int8]", "GELU[int8]", "SQRT[int8]"]


@pytest.mark.parametrize("order", ORDERS[:2], ids=lambda o: "-".join(o))
def test_cli_inspect_and_build_list_all(edgec_cli, tmp_path, order):
    p = tmp_path / "four.tflite"
    p.write_bytes(_chain(order))
    names = [listed(op) for op in order]
    r = edgec_cli("inspect", p)
    assert r.returncode == 2, r.stdout + r.stderr
    assert all(n in r.stdout for n in names), r.stdout
    r = edgec_cli("inspect", p, "--json")
    import json
    assert json.loads(r.stdout)["unsupported"] == sorted(names)
    out = tmp_path / "o"
    r = edgec_cli("build", p, "-o", out)
    assert r.returncode == 2 and not out.exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and all(n in lines[0] for n in names), r.stderr


def _onnx_four(path):
    """Four nodes edgec refuses (their shape or repeats computed from a graph input),
    one reading a refused node's output, and a node it compiles."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    r = helper.make_tensor_value_info("r", TensorProto.INT64, [2])
    nodes = [helper.make_node("Reshape", ["x", "s"], ["a"]), helper.make_node("Relu", ["a"], ["a2"]),
             helper.make_node("Expand", ["x", "s"], ["b"]), helper.make_node("Tile", ["x", "r"], ["c"]),
             helper.make_node("ConstantOfShape", ["s"], ["d"]), helper.make_node("Relu", ["x"], ["e"])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a2", "b", "c", "d", "e")]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x, s, r], outs),
                                opset_imports=[helper.make_opsetid("", 17)]), path)


def test_onnx_one_pass_lists_all(tmp_path, edgec_cli):
    from edgec.frontends import onnx as onnx_fe
    p = tmp_path / "four.onnx"
    _onnx_four(p)
    names = ["ConstantOfShape with a computed shape", "Expand with a computed shape",
             "Reshape with a computed shape", "Tile with a computed repeats"]
    with pytest.raises(UnsupportedError) as e:
        onnx_fe.load(p)
    assert e.value.items == names
    assert e.value.needs_const == ["r", "s"]   # every input to bind, not only the first's
    r = edgec_cli("inspect", p)
    assert r.returncode == 2 and all(n in r.stdout for n in names), r.stdout
    r = edgec_cli("build", p, "-o", tmp_path / "o")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and all(n in lines[0] for n in names), r.stderr
