"""Names never reach generated code as code (docs/TRUST.md, "Names").

Hypothesis drives arbitrary text (arbitrary bytes for TFLite, whose names need not be
UTF-8) through every name slot of an ONNX and a TFLite model: graph inputs, outputs,
intermediate and constant tensors, nodes, graph / subgraph names, producer, doc strings,
metadata and the model description.  Each name carries a marker.  For every bundle (the
native backend; the TFLite Micro backend for TFLite):

* the C compiles with -std=c99 -Wall -Wextra -Werror;
* with comments stripped by the preprocessor itself and string literals removed, no
  marker is left: a name appears only inside comments and strings;
* the build files carry no model text at all.

The reproducers of the injection found by the security probe (a name holding ``*\\``,
which an earlier encoder turned into ``*/``) run first as explicit examples.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import hostile_corpus
from edgec.pipeline import Options, compile_full
from edgec.target.toolchain import STRICT

MARK = "QZXMARK"
INJECTION = ('*\\ int system(const char*);__attribute__((constructor)) static void p(void)'
             '{system("touch PWNED");} /\\')
# fragments that mean something to C, the preprocessor, make or a terminal
NASTY = ["*/", "/*", "*\\", "\\*", "//", "\\\n", "\\", "??/", "??=", "\n#include <stdio.h>\n", "\n#define X 1\n",
         '"', "'", "\r", "\x00", "\t", "\x0b", "\x1b[31m", "\u2028", "\u202e", "$(shell id)", "`id`", ";", "#",
         "%", "{", "}", "é", "\U0001f600"]

text_part = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
names = st.lists(text_part, max_size=8).map("".join)


def _marked(s: str, i: int) -> str:
    return f"{MARK}{i}{s}{MARK}"


ONNX_VALUES = ("x", "w", "b", "c", "r", "p", "f", "fc_w", "fc_b", "g", "y")
ONNX_NODES = ("conv", "relu", "pool", "flatten", "gemm", "softmax")


def onnx_model(parts: list[str]):
    """onnx_base with every value, node and graph named after ``parts`` (cycled), plus
    the free-text slots."""
    slots = ONNX_VALUES + ONNX_NODES + ("graph", "producer")
    mapping = {}
    for i, k in enumerate(slots):
        base = _marked(parts[i % len(parts)] if parts else "", i)
        mapping[k] = base
    m = hostile_corpus.onnx_base(mapping)
    m.doc_string = _marked(parts[0] if parts else "", 90)
    m.graph.doc_string = _marked(parts[-1] if parts else "", 91)
    for k, n in enumerate(m.graph.node):
        n.doc_string = _marked(parts[k % len(parts)] if parts else "", 92 + k)
    p = m.metadata_props.add()
    p.key, p.value = _marked("k", 98), _marked(parts[0] if parts else "", 99)
    return m


def tflite_model(parts: list[bytes]) -> bytes:
    """hostile_corpus.tflite_graph with every tensor, the subgraph and the description
    renamed to arbitrary bytes (through the flatbuffer object API)."""
    from ai_edge_litert.tools import flatbuffer_utils as fb
    model = fb.read_model_from_bytearray(bytearray(hostile_corpus.tflite_bytes()))
    mark = MARK.encode()
    pick = (lambda i: parts[i % len(parts)]) if parts else (lambda i: b"")
    model.description = mark + b"d" + pick(0) + mark
    for sg in model.subgraphs:
        sg.name = mark + b"s" + pick(1) + mark
        for i, t in enumerate(sg.tensors):
            t.name = mark + str(i).encode() + pick(i + 2) + mark
    return bytes(fb.convert_object_to_bytearray(model))


def code_outside_comments_and_strings(path: Path, lang: str = "c") -> str:
    """The file's text with comments removed by the preprocessor (no includes are
    read: -fpreprocessed) and string and character literals removed."""
    p = subprocess.run(["gcc", "-fpreprocessed", "-dD", "-E", "-P", "-x", lang, str(path)],
                       capture_output=True, text=True, errors="replace")
    assert p.returncode == 0, f"{path.name}: {p.stderr[:500]}"
    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', '""', p.stdout)


def check_bundle(bundle, tmp: Path, compile_c: bool = True) -> None:
    out = tmp / "b"
    bundle.write(out)
    sources = [f for f in out.rglob("*") if f.suffix in (".c", ".h", ".cc")]
    assert sources
    for f in sources:
        if f.parent == out:   # edgec's own files (not the TVM headers copied beside them)
            assert all(b < 127 for b in f.read_bytes()), f"{f.name}: bytes outside ASCII"
        code = code_outside_comments_and_strings(f, "c++" if f.suffix == ".cc" else "c")
        assert MARK not in code, f"{f.name}: a model name outside comments and strings:\n" + \
            "\n".join(line for line in code.splitlines() if MARK in line)[:600]
    for f in ("Makefile", "CMakeLists.txt", "edgec.mk"):
        assert MARK not in (out / f).read_text(), f"model text in {f}"
    if compile_c:
        for f in out.glob("*.c"):
            r = subprocess.run(["gcc", *STRICT, "-O0", "-I.", "-c", str(f), "-o", str(tmp / "x.o")],
                               capture_output=True, text=True, cwd=out)
            assert r.returncode == 0, f"{f.name}: {r.stderr[:800]}"


SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(parts=st.lists(names, min_size=1, max_size=6))
@example(parts=[INJECTION])
@example(parts=["\\*", "*\\", "/\\\n#include <stdio.h>", "??/\n"])
def test_onnx_names_stay_in_comments(parts, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onnx")
    p = tmp / "m.onnx"
    p.write_bytes(onnx_model(parts).SerializeToString())
    bundle, _ = compile_full(p, Options(target="host", name="m", firmware=False))
    check_bundle(bundle, tmp)


@SETTINGS
@given(parts=st.lists(st.one_of(st.binary(max_size=24), names.map(lambda s: s.encode("utf-8", "surrogatepass"))),
                      min_size=1, max_size=6))
@example(parts=[INJECTION.encode()])
@example(parts=[b"\xff\xfe*\\", b"\\*\xc0", b"\n#include \"/etc/hostname\"\n"])
def test_tflite_names_stay_in_comments(parts, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tfl")
    p = tmp / "m.tflite"
    p.write_bytes(tflite_model(parts))
    bundle, _ = compile_full(p, Options(target="host", name="m"))
    check_bundle(bundle, tmp)
    tflm, _ = compile_full(p, Options(target="host", name="m", backend="tflm"))
    # the TFLM shim is C++ against TFLM's headers: checked as text; the model array compiles
    check_bundle(tflm, tmp / "tflm", compile_c=True)


def test_injection_reproducer_verifies_without_running_anything(tmp_path, edgec_cli):
    """The probe's model: a TFLite input named so that an unsafe encoder closes the
    comment and adds a constructor that runs a command.  verify compiles and runs the
    bundle on the host: it must pass and nothing but the model must run."""
    p = tmp_path / "inj.tflite"
    name = INJECTION.replace("touch PWNED", f"touch {tmp_path}/PWNED")
    p.write_bytes(hostile_corpus.tflite_bytes(hostile_corpus.tflite_graph({"x": name})))
    r = edgec_cli("verify", p, "-n", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.tvm
def test_tvm_backend_never_sees_model_names(tmp_path):
    """TVM writes the names of its relax variables into the C it generates; the backend
    hands it a copy of the model with generated names."""
    pytest.importorskip("tvm")
    bad = 'a\n#include "/etc/hostname"\n' + MARK
    m = hostile_corpus.onnx_base({k: f"{k}{bad}" for k in ONNX_VALUES + ONNX_NODES + ("graph",)})
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    bundle, _ = compile_full(p, Options(target="host", name="m", backend="tvm"))
    check_bundle(bundle, tmp_path)
    assert np.isfinite(bundle.report["arena_bytes"])
