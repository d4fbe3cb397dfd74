"""Differential fuzzing (edgec.fuzz): a short bounded run, the saved regressions,
and the shrinker."""
import os

import numpy as np
import pytest

from conftest import ROOT
from edgec.fuzz.campaign import fuzz
from edgec.fuzz.runner import Case, Outcome, RefRunner, check_cases, check_file, save_regression

REGRESSIONS = sorted(p for p in (ROOT / "tests" / "fuzz_regressions").glob("*")
                     if p.suffix in (".onnx", ".tflite"))


@pytest.fixture(scope="module")
def ref():
    r = RefRunner()
    yield r
    r.close()


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.name)
def test_regression(path, ref, tmp_path):
    """Each shrunk model the fuzzer once failed on now matches the reference (built
    with AddressSanitizer and UBSan)."""
    o = check_file(path, ref, tmp_path, sanitize=True)
    assert o.status == "ok", f"{o.status}: {o.detail}"


def test_short_fuzz_run(tmp_path):
    """The CI run: random float ONNX and int8 TFLite graphs, compiled with sanitizers and
    cross-compiled for Cortex-M4, compared with onnxruntime / TFLite Micro.  Set
    EDGEC_FUZZ_SEED to explore other graphs."""
    seed = int(os.environ.get("EDGEC_FUZZ_SEED", "20261128"))
    graphs = int(os.environ.get("EDGEC_FUZZ_GRAPHS", "60"))
    rep = fuzz(graphs=graphs, seed=seed, batch=30, time_limit=120, sanitize=True, cross=True,
               save_dir=tmp_path / "failures")
    msg = "\n".join(f"{o.case.name} [{o.status}] {o.detail} (ops {o.case.ops}); saved in "
                    f"{tmp_path / 'failures'}" for o in rep.failures + rep.invalid)
    assert not rep.failures and not rep.invalid, msg
    assert rep.graphs >= min(graphs, 20) * 2, rep.summary()


def _tanh_chain():
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Tanh", ["b"], ["c"]), helper.make_node("Abs", ["c"], ["d"]),
             helper.make_node("Sigmoid", ["x"], ["e"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                          [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3, 4]),
                           helper.make_tensor_value_info("d", TensorProto.FLOAT, [3, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    return Case("onnx", 0, 0, m.SerializeToString(), [[rng.uniform(-1, 1, (3, 4)).astype(np.float32)]
                                                      for _ in range(2)],
                [n.op_type for n in nodes], proto=m)


def test_shrinker_reduces_an_injected_bug(monkeypatch, ref, tmp_path):
    """With a wrong C expression for Tanh, the fuzzer's check fails and the shrinker
    cuts the graph down to the Tanh node alone; the saved regression fails while the
    bug is there and passes without it."""
    from edgec.fuzz.shrink import shrink_case
    from edgec.ops import unary
    case = _tanh_chain()
    assert check_cases([case], ref, tmp_path / "a")[0].status == "ok"
    bad = list(unary.UNARY["Tanh"])
    bad[2] = "(tanh{f}({x}) * 1.01f)"
    monkeypatch.setitem(unary.UNARY, "Tanh", tuple(bad))
    o = check_cases([case], ref, tmp_path / "b")[0]
    assert o.status == "mismatch", o.detail
    small = shrink_case(o, ref, tmp_path / "c")
    assert small.ops == ["Tanh"], small.ops
    path = save_regression(Outcome(small, o.status, o.detail), tmp_path / "saved")
    assert check_file(path, ref, tmp_path / "d").status == "mismatch"
    monkeypatch.undo()
    assert check_file(path, ref, tmp_path / "e").status == "ok"
