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


# --- the shared kernels' p[] (templates/runtime/ref_s8.c) -------------------------

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from edgec.ir.graph import Graph, QuantParams  # noqa: E402
from edgec.ops import conv, shared  # noqa: E402

REF_S8 = Path(__file__).resolve().parent.parent / "templates" / "runtime" / "ref_s8.c"
# loop variables of the C's stride products: which dimension each walks
DIMS = {"b": "n", "oy": "h", "iy": "h", "ox": "w", "ix": "w", "oc": "c", "ic": "c", "ic0": "c",
        "c": "c"}
# the C's short local names for table entries
ALIASES = {"pc": "per_channel", "cip": "count_include_pad"}


def _c_table(text: str, fn: str) -> list[str]:
    """The ``/* p: ... */`` index table written above kernel ``fn``."""
    m = re.search(r"/\* p:((?:(?!\*/).)*)\*/\s*EDGEC_KERNEL void " + fn + r"\(", text, re.S)
    assert m, f"no p[] table above {fn}"
    return m.group(1).replace("*", " ").split()


def _c_uses(text: str, fn: str) -> dict[int, set[str]]:
    """Index -> the names the kernel's body gives p[index]: a local's name
    (``const int NAME = p[i]``), or ``x<dim>`` / ``y<dim>`` for an element stride
    (``VAR * p[i]`` inside an index of x or y)."""
    start = text.index(f"EDGEC_KERNEL void {fn}(")
    body = text[start:text.index("\n}\n", start)]
    uses: dict[int, set[str]] = {}
    for m in re.finditer(r"p\[(\d+)\]", body):
        i = int(m.group(1))
        decl = re.search(r"(?:\bint\s+|,\s*)(\w+)\s*=\s*$", body[:m.start()])
        stmt = body[:m.start()][max(body.rfind(";", 0, m.start()), body.rfind("{", 0, m.start())) + 1:]
        if decl:
            name = ALIASES.get(decl.group(1), decl.group(1))
        else:
            var = re.search(r"(\w+)\s*\*\s*$", body[:m.start()])
            assert var and var.group(1) in DIMS, f"{fn}: p[{i}] used as {stmt.strip()!r}"
            name = ("y" if re.search(r"\by\[", stmt) else "x") + DIMS[var.group(1)]
        uses.setdefault(i, set()).add(name)
    return uses


@pytest.mark.parametrize("fn", ["edgec_ref_conv", "edgec_ref_fc", "edgec_ref_pool"])
def test_shared_kernel_reads_p_as_its_table_says(fn):
    text = REF_S8.read_text()
    table = _c_table(text, fn)
    uses = _c_uses(text, fn)
    assert uses, fn
    for i, names in sorted(uses.items()):
        assert i < len(table), f"{fn} reads p[{i}], its table has {len(table)} entries"
        assert names == {table[i]}, f"{fn}: p[{i}] is {table[i]} in the table, used as {names}"


def test_conv_params_pack_in_the_order_the_c_reads():
    table = _c_table(REF_S8.read_text(), "edgec_ref_conv")
    assert [c for _, c in shared.p_names(conv.ConvParams)] == table


def _q(scale, zp=0, axis=None):
    return QuantParams(np.asarray(scale, np.float32).reshape(-1), np.asarray(zp, np.int64).reshape(-1), axis)


def test_conv_prepare_packs_its_geometry():
    """A real node: the packed values sit where the C table names them."""
    g = Graph()
    g.add_tensor("x", (1, 7, 6, 4), "int8", quant=_q(0.05, 3))
    w = np.arange(5 * 3 * 2 * 4, dtype=np.int64).reshape(5, 3, 2, 4) % 11 - 5
    g.add_const(w.astype(np.int8), "w", quant=_q(np.linspace(0.01, 0.02, 5), np.zeros(5), 0))
    g.add_tensor("y", (1, 4, 3, 5), "int8", quant=_q(0.1, -2))
    n = g.add_node("Conv", ["x", "w"], ["y"], dict(layout="NHWC", strides=[2, 2], dilations=[1, 1],
                                                   pads=[1, 0, 1, 1], group=1, act=None))
    cp = conv.prepare(g, n)
    p = dict(zip(_c_table(REF_S8.read_text(), "edgec_ref_conv"), shared.pack(cp)))
    assert (p["N"], p["H"], p["W"], p["C"], p["O"], p["KH"], p["KW"]) == (1, 7, 6, 4, 5, 3, 2)
    assert (p["OH"], p["OW"], p["sh"], p["pt"], p["pl"]) == (4, 3, 2, 1, 0)
    assert (p["in_off"], p["out_off"], p["per_channel"]) == (-3, -2, 1)
    assert (p["xn"], p["xh"], p["xw"], p["xc"]) == (7 * 6 * 4, 6 * 4, 4, 1)
    assert (p["yn"], p["yh"], p["yw"], p["yc"]) == (4 * 3 * 5, 3 * 5, 5, 1)
    m, s = conv.requant_params(g, n)
    assert (cp.m == m).all() and (cp.s == s).all()
