"""The command line as users (and CI jobs) use it."""
import json
import os
import subprocess
import sys

import pytest

from conftest import EXAMPLE_KWS, ROOT, shared_model


def test_version_and_help(edgec_cli):
    r = edgec_cli("--version")
    assert r.returncode == 0 and "edgec" in r.stdout
    for cmd in ("build", "inspect", "targets", "verify"):
        r = edgec_cli(cmd, "--help")
        assert r.returncode == 0, r.stderr
        assert "Usage" in r.stdout


def test_targets_lists_all(edgec_cli):
    r = edgec_cli("targets", "--json")
    names = {t["name"] for t in json.loads(r.stdout)}
    assert {"cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55",
            "riscv32", "host"} <= names


def test_build_writes_complete_bundle(edgec_cli, tmp_path):
    out = tmp_path / "kws"
    r = edgec_cli("build", EXAMPLE_KWS, "--target", "cortex-m4", "-o", out)
    assert r.returncode == 0, r.stderr
    for f in ("model.c", "model.h", "Makefile", "CMakeLists.txt", "edgec.mk", "report.json"):
        assert (out / f).is_file(), f
    rep = json.loads((out / "report.json").read_text())
    # kernels that write their output over a dying input (depthwise, 1x1) beat the
    # lifetime bound of separate buffers
    assert 0 < rep["arena_bytes"] < rep["arena_lower_bound"] == 16_000
    assert any(L["inplace"] for L in rep["layers"])
    assert rep["weights_bytes"] == sum(L["weights_bytes"] for L in rep["layers"])
    assert all("macs" in L for L in rep["layers"])
    h = (out / "model.h").read_text()
    assert f"#define MODEL_ARENA_SIZE {rep['arena_bytes']}" in h


def test_bundle_builds_with_its_own_makefile_and_cmake(edgec_cli, tmp_path):
    out = tmp_path / "b"
    assert edgec_cli("build", EXAMPLE_KWS, "--target", "host", "-o", out).returncode == 0
    r = subprocess.run(["make", "-C", str(out), "CFLAGS=-std=c99 -O1 -Wall -Wextra -Werror"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "libmodel.a").exists()
    if subprocess.run(["which", "cmake"], capture_output=True).returncode == 0:
        r = subprocess.run(["cmake", "-S", str(out), "-B", str(tmp_path / "cb")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["cmake", "--build", str(tmp_path / "cb")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_build_is_deterministic_across_processes(edgec_cli, tmp_path):
    outs = []
    for seed in ("1", "12345"):
        out = tmp_path / f"b{seed}"
        r = edgec_cli("build", EXAMPLE_KWS, "-o", out, env={"PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        outs.append(out)
    files_a = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    assert files_a == files_b
    for f in files_a:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


@pytest.mark.parametrize("content,needle", [
    (b"", "empty file"),
    (b"\x00\x01\x02garbage" * 10, "unknown model format"),
    (b"TFL", "unknown model format"),
])
def test_bad_files_one_line_exit_2(edgec_cli, tmp_path, content, needle):
    p = tmp_path / "m.bin"
    p.write_bytes(content)
    out = tmp_path / "out"
    r = edgec_cli("build", p, "-o", out)
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_truncated_tflite(edgec_cli, tmp_path):
    data = EXAMPLE_KWS.read_bytes()
    p = tmp_path / "t.tflite"
    p.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    r = edgec_cli("build", p, "-o", out)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_debug_shows_traceback(edgec_cli, tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"\xff\xfe garbage")
    r = edgec_cli("build", p, "--debug")
    assert r.returncode == 2
    assert "Traceback" in r.stderr


def test_unknown_target(edgec_cli):
    r = edgec_cli("build", EXAMPLE_KWS, "--target", "pdp11")
    assert r.returncode == 2 and "unknown target" in r.stderr


def test_dynamic_batch_defaults_to_1_other_dims_need_input_shape(edgec_cli, tmp_path):
    """A leading dynamic batch dimension becomes 1 with a note; any other dynamic
    dimension still needs --input-shape."""
    import json

    import onnx
    m = shared_model("onnx/tfl_helloworld.onnx")   # input [N, 1]
    r = edgec_cli("build", m, "-o", tmp_path / "o", "--target", "host")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["inputs"][0]["shape"] == [1, 1]
    assert any("dynamic batch dimension 'N' set to 1" in n for n in rep["notes"]), rep["notes"]
    assert "note: input 'dense_2_input': dynamic batch dimension" in r.stdout
    r = edgec_cli("build", m, "-o", tmp_path / "o4", "--input-shape", "4x1", "--target", "host")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o4" / "report.json").read_text())["inputs"][0]["shape"] == [4, 1]
    model = onnx.load(m)
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "F"   # [N, F]: not only the batch
    p = tmp_path / "nf.onnx"
    onnx.save(model, p)
    r = edgec_cli("build", p, "-o", tmp_path / "o2")
    assert r.returncode == 2 and "--input-shape" in r.stderr


def test_unsupported_ops_listed_at_once(edgec_cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Unique", ["x"], ["a"]),
             helper.make_node("NonMaxSuppression", ["a", "a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    p = tmp_path / "u.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    r = edgec_cli("build", p, "-o", tmp_path / "o")
    assert r.returncode == 2
    assert "Unique" in r.stderr and "NonMaxSuppression" in r.stderr
    r = edgec_cli("inspect", p)
    assert r.returncode == 2 and "Unique" in r.stdout and "NonMaxSuppression" in r.stdout


def test_inspect(edgec_cli):
    r = edgec_cli("inspect", EXAMPLE_KWS, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["supported"] and info["macs"] > 2_000_000 and info["parameters"] > 20000
    assert info["source_ops"]["CONV_2D"] == 5


def test_verify_cli_passes_and_fails_honestly(edgec_cli, tmp_path):
    r = edgec_cli("verify", EXAMPLE_KWS, "--target", "host", "-n", "3", "--layers")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bit-exact" in r.stdout and "PASS" in r.stdout


def test_python_api(tmp_path):
    import edgec
    path, bundle = edgec.build(EXAMPLE_KWS, tmp_path / "api", target="host", name="kws")
    assert (path / "kws.c").exists() and (path / "kws.h").exists()
    assert "int kws_invoke(" in (path / "kws.h").read_text()
