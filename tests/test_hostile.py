"""Hostile and broken inputs (tests/hostile_corpus.py): every malformed file makes
``edgec build`` exit 2 with one line on stderr, without a traceback, in under 10 s
and bounded memory, writing nothing outside (and no half of) the output directory;
valid models with hostile names build, and no model-supplied string reaches the
generated C outside a sanitized comment."""
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hostile_corpus
from conftest import ROOT
from measure import run_measured

TIME_LIMIT = 10.0           # seconds per file
MEMORY_LIMIT = 1 << 30      # peak RSS per run (bytes)
ADDRESS_SPACE = 6 << 30     # hard cap: a runaway allocation fails instead of swapping


def run_cli(args, cwd: Path, tmpdir: Path, timeout: float = 60):
    """Run ``python -m edgec ARGS``; returns (rc, stdout, stderr, seconds, peak RSS bytes)."""
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(ROOT))
    rc, so, se, _, wall, rss = run_measured([sys.executable, "-m", "edgec", *args], cwd, env, timeout,
                                            ADDRESS_SPACE)
    return rc, so, se, wall, rss


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile") / "corpus"
    entries = hostile_corpus.build(d)
    return d, entries


def _snapshot(d: Path):
    return sorted((str(p.relative_to(d)), p.stat().st_size if p.is_file() and not p.is_symlink() else -1)
                  for p in d.rglob("*"))


def _check(corpus_dir: Path, e, work: Path) -> dict:
    """Build one corpus entry in a fresh working directory and collect what happened."""
    cwd = work / "cwd"
    tmp = work / "tmp"
    cwd.mkdir(parents=True)
    tmp.mkdir()
    before = _snapshot(corpus_dir)
    out = cwd / "out"
    rc, so, se, secs, rss = run_cli(["build", corpus_dir / e.name, "-o", out, "--target", "host", *e.args],
                                    cwd, tmp)
    res = {"name": e.name, "expect": e.expect, "says": e.says, "rc": rc, "stderr": se, "seconds": secs, "rss": rss,
           "cwd": sorted(p.name for p in cwd.iterdir()), "tmp": sorted(p.name for p in tmp.iterdir()),
           "corpus_changed": _snapshot(corpus_dir) != before, "out": out}
    return res


def _run_all(corpus_dir, entries, work, which):
    todo = [e for e in entries if e.expect == which]
    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(lambda ie: _check(corpus_dir, ie[1], work / f"{which}{ie[0]}"), enumerate(todo)))


def test_corpus_is_large_and_generated(corpus):
    d, entries = corpus
    assert len([e for e in entries if e.expect == "error"]) >= 90
    assert json.loads((d / "MANIFEST.json").read_text())[0]["name"] == entries[0].name


def test_malformed_inputs_exit_2_one_line(corpus, tmp_path):
    d, entries = corpus
    results = _run_all(d, entries, tmp_path, "error")
    bad = []
    for r in results:
        lines = r["stderr"].strip().splitlines()
        problems = []
        if r["rc"] != 2:
            problems.append(f"exit {r['rc']}")
        if len(lines) != 1 or not lines[0].startswith("edgec: error: "):
            problems.append(f"{len(lines)} stderr lines")
        elif r["says"] not in lines[0]:
            problems.append(f"the message does not say {r['says']!r}")
        if "Traceback" in r["stderr"]:
            problems.append("traceback")
        if r["seconds"] > TIME_LIMIT:
            problems.append(f"{r['seconds']:.1f} s")
        if r["rss"] > MEMORY_LIMIT:
            problems.append(f"{r['rss'] >> 20} MB")
        if r["cwd"] or r["tmp"]:
            problems.append(f"left files: cwd {r['cwd']} tmp {r['tmp']}")
        if r["corpus_changed"]:
            problems.append("wrote into the model directory")
        if problems:
            bad.append(f"{r['name']}: {', '.join(problems)}: {r['stderr'].strip()[:300]}")
    slowest = max(results, key=lambda r: r["seconds"])
    biggest = max(results, key=lambda r: r["rss"])
    print(f"\n{len(results)} malformed files, all exit 2; slowest {slowest['name']} "
          f"{slowest['seconds']:.2f} s; largest peak RSS {biggest['name']} {biggest['rss'] >> 20} MB")
    assert not bad, "\n".join(bad)


def test_external_data_never_read_outside(corpus):
    d, entries = corpus
    outside = [e for e in entries if e.outside]
    assert len(outside) >= 10
    for e in outside:
        assert not Path(e.outside).is_relative_to(d)


def test_hostile_names_compile_and_stay_in_comments(corpus, tmp_path):
    d, entries = corpus
    results = _run_all(d, entries, tmp_path, "ok")
    for r in results:
        assert r["rc"] == 0, f"{r['name']}: exit {r['rc']}: {r['stderr'][-500:]}"
        assert r["seconds"] < TIME_LIMIT, f"{r['name']}: {r['seconds']:.1f} s"
        out = r["out"]
        c_files = sorted(out.glob("*.c")) + sorted(out.glob("*.h"))
        assert c_files
        assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", f.stem) for f in c_files), c_files
        for f in c_files:
            # strip comments with the preprocessor itself: what remains is code
            p = subprocess.run(["gcc", "-fpreprocessed", "-dD", "-E", "-P", "-x", "c", str(f)],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            assert hostile_corpus.MARK not in p.stdout, f"{r['name']}: a model name reached {f.name}"
            assert all(ord(ch) < 127 for ch in f.read_text()), f"{f.name}: non-ASCII in the C"
        for f in ("Makefile", "CMakeLists.txt", "edgec.mk"):
            assert hostile_corpus.MARK not in (out / f).read_text(), f"{r['name']}: name in {f}"
        json.loads((out / "report.json").read_text())
        # the C compiles warning-free
        for f in out.glob("*.c"):
            p = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-c", str(f),
                                "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
            assert p.returncode == 0, f"{r['name']}: {p.stderr[:800]}"


def test_hostile_names_verify_against_reference(corpus):
    """The model with every name hostile still computes the right thing."""
    from edgec.commands.verify import verify
    d, _ = corpus
    for name in ("hostile_names.onnx", "hostile_names.tflite"):
        res = verify(d / name, n=2, layers=True, compare_litert=False)
        assert res.ok and res.layers, [c.line() for c in res.outputs + res.layers if not c.ok]


@pytest.mark.parametrize("cmd", ["inspect", "verify"])
def test_other_commands_on_malformed_tflite(corpus, tmp_path, cmd):
    """inspect and verify read models through their own paths: same contract."""
    d, entries = corpus
    bad = []
    for e in entries:
        if e.expect != "error" or not e.name.startswith(("tfl_", "truncated_", "random_")):
            continue
        w = tmp_path / e.name
        w.mkdir()
        rc, so, se, secs, _ = run_cli([cmd, d / e.name], w, w)
        if cmd == "inspect" and rc == 2 and not se.strip() and "unsupported:" in so:
            continue  # inspect lists what it cannot compile on stdout and exits 2
        if rc != 2 or len(se.strip().splitlines()) != 1 or "Traceback" in se or secs > TIME_LIMIT:
            bad.append(f"{e.name}: exit {rc}, {secs:.1f} s: {se.strip()[:300]}")
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    # python tests/test_hostile.py CORPUS_DIR: a table of what edgec does with each file
    d = Path(sys.argv[1])
    entries = [hostile_corpus.Entry(**x) for x in json.loads((d / "MANIFEST.json").read_text())]
    work = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/hostile-work")
    shutil.rmtree(work, ignore_errors=True)
    for which in ("error", "ok"):
        for r in _run_all(d, entries, work, which):
            lines = r["stderr"].strip().splitlines()
            print(f"{r['rc']:>3} {r['seconds']:5.1f}s {r['rss'] >> 20:4d}MB {len(lines)}L {r['name']:<38} "
                  f"{(lines[0] if lines else '')[:150]}")


@pytest.mark.parametrize("kind", ["onnx", "tflite"])
def test_mutated_models_error_cleanly_or_compile(kind, tmp_path):
    """Random byte mutations of a valid model (edgec.fuzz.mutate, in child processes):
    edgec either refuses a mutant with an EdgecError (exit 2) or compiles it to C that
    builds warning-free; never another exception, a crash, a hang or a slow mutant."""
    from edgec.fuzz import mutate
    base = hostile_corpus.onnx_base().SerializeToString() if kind == "onnx" else hostile_corpus.tflite_bytes()
    p = tmp_path / f"base.{kind}"
    p.write_bytes(base)
    seed = int(os.environ.get("EDGEC_MUTATION_SEED", "7"))
    rep = mutate.run([p], count=400, seed=seed, jobs=2, slow=TIME_LIMIT)[p.name]
    assert not rep.failures, rep.failures[:5]
    assert rep.by_status["refused"] > 20 and rep.by_status["ok"] > 5, rep.summary()


def test_verify_survives_a_crashing_reference(tmp_path):
    """The TFLite Micro interpreter aborts the process on an ADD whose output rescale is
    not below 1: verify runs it in a child process and reports a one-line error."""
    from edgec.exporters import tflite as tw
    from edgec.ir.graph import Graph, QuantParams
    g = Graph("abort")
    g.add_tensor("x", (4,), "int8", quant=QuantParams([0.5], [0]))
    g.inputs = ["x"]
    g.add_node("Add", ["x", "x"], ["y"], {"act": None})
    g.tensors["y"].quant = QuantParams([1e-7], [0])
    g.outputs = ["y"]
    p = tw.save(g, tmp_path / "abort.tflite")
    rc, so, se, secs, _ = run_cli(["verify", p, "-n", "2"], tmp_path, tmp_path)
    assert rc == 2 and "reference runtime crashed" in se, (rc, so, se)
    assert len(se.strip().splitlines()) == 1
