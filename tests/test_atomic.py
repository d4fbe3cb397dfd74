"""Determinism and atomicity of bundles: byte-identical across processes and hash
seeds; a failed, interrupted or killed build never leaves a half-written output
directory, and a previous bundle at the same path survives it; a directory that is
not a bundle is never replaced."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hostile_corpus
from conftest import EXAMPLE_KWS, MLPERF, ROOT, ONNX_MODELS


def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _cli(args, cwd=None, env=None, timeout=600):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "edgec", *map(str, args)], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout)


def _hostile_onnx(tmp: Path) -> Path:
    p = tmp / "hostile_names.onnx"
    hn = {k: hostile_corpus.HOSTILE_NAMES[i % len(hostile_corpus.HOSTILE_NAMES)] + k
          for i, k in enumerate(["x", "w", "c", "r", "g", "y", "conv", "graph"])}
    p.write_bytes(hostile_corpus.onnx_base(hn).SerializeToString())
    return p


MODELS = {
    "kws-int8-cortex-m4": (lambda t: EXAMPLE_KWS, ["--target", "cortex-m4"]),
    "mnist-onnx-host": (lambda t: ONNX_MODELS / "mnist-8.onnx", ["--target", "host"]),
    "ad01-float-m0plus": (lambda t: MLPERF / "ad01_fp32.tflite", ["--target", "cortex-m0plus", "--no-fit-check"]),
    "hostile-names": (_hostile_onnx, ["--target", "host", "--name", "net"]),
    "fuzz-regression": (lambda t: ROOT / "tests" / "fuzz_regressions" / "int8-s1-i21.tflite", []),
}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_byte_identical_across_processes_and_hash_seeds(case, tmp_path):
    make, args = MODELS[case]
    model = make(tmp_path)
    trees = []
    for seed, sub in (("1", "a"), ("987654", "elsewhere/b")):
        cwd = tmp_path / f"cwd{seed}"
        cwd.mkdir()
        out = cwd / sub
        r = _cli(["build", model, "-o", out, *args], cwd=cwd, env={"PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        trees.append(_tree(out))
    assert trees[0].keys() == trees[1].keys()
    for f in trees[0]:
        assert trees[0][f] == trees[1][f], f"{f} differs between the two processes"
    for f, data in trees[0].items():  # no absolute paths of the build machine
        assert str(tmp_path).encode() not in data, f"{f} holds a build path"


def test_failed_generation_keeps_previous_bundle(tmp_path, monkeypatch):
    import edgec
    from edgec import ops
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host")
    before = _tree(out)
    conv = ops.get("Conv")

    def boom(k):
        raise RuntimeError("emit failed half way through the model")
    monkeypatch.setattr(type(conv), "emit", lambda self, k: boom(k))
    with pytest.raises(RuntimeError):
        edgec.build(EXAMPLE_KWS, out, target="host")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_write_keeps_previous_bundle(tmp_path, monkeypatch):
    import edgec
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host")
    before = _tree(out)
    real = Path.write_bytes
    calls = {"n": 0}

    def flaky(self, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(OSError):
        edgec.build(EXAMPLE_KWS, out, target="cortex-m4", name="other")
    monkeypatch.undo()
    assert calls["n"] == 3
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_new_bundle_replaces_previous_completely(tmp_path):
    import edgec
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host", name="first")
    (out / "libfirst.a").write_bytes(b"a build product")
    edgec.build(EXAMPLE_KWS, out, target="host", name="second")
    names = sorted(p.name for p in out.iterdir())
    assert "first.c" not in names and "libfirst.a" not in names and "second.c" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_fallback_without_atomic_exchange(tmp_path, monkeypatch):
    """Where renameat2 is missing, two renames: same result, nothing left over."""
    import edgec
    from edgec import bundle
    monkeypatch.setattr(bundle, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host", name="first")
    edgec.build(EXAMPLE_KWS, out, target="host", name="second")
    assert (out / "second.c").exists() and not (out / "first.c").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("what", ["user_dir", "file", "dot"])
def test_never_replaces_what_is_not_a_bundle(tmp_path, what):
    """`-o .` or `-o ~/project` must not delete the user's files."""
    proj = tmp_path / "project"
    proj.mkdir()
    (proj / "main.c").write_text("int main(void) { return 0; }\n")
    target = {"user_dir": proj, "file": proj / "main.c", "dot": "."}[what]
    r = _cli(["build", EXAMPLE_KWS, "-o", target], cwd=proj)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in proj.iterdir()) == ["main.c"]
    assert (proj / "main.c").read_text().startswith("int main")


_PAUSED_BUILD = r"""
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
real = pathlib.Path.write_bytes
state = {"n": 0}
def slow(self, data):
    state["n"] += 1
    r = real(self, data)
    if state["n"] == 2:          # two files of the new bundle written: pause here
        marker.write_text("mid-write")
        time.sleep(60)
    return r
pathlib.Path.write_bytes = slow
from edgec.cli import main
sys.argv = ["edgec", "build", sys.argv[2], "-o", sys.argv[3], "--name", "second"]
main()
"""


def _default_signals():
    """The child gets SIGINT / SIGTERM as a foreground command does, whatever this process
    has: under `make test &` SIGINT is ignored here, the child would inherit that, and
    edgec keeps an ignored SIGINT ignored (tests/test_signals.py)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_signal_mid_write_keeps_previous_bundle(tmp_path, sig):
    import edgec
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host", name="first")
    before = _tree(out)
    marker = tmp_path / "marker"
    tmpdir = tmp_path / "tmpdir"  # where a SIGKILLed edgec leaves its private TMPDIR
    tmpdir.mkdir()
    p = subprocess.Popen([sys.executable, "-c", _PAUSED_BUILD, str(marker), str(EXAMPLE_KWS), str(out)],
                         env=dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmpdir)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_default_signals)
    t0 = time.monotonic()
    while not marker.exists():
        assert time.monotonic() - t0 < 60 and p.poll() is None, p.communicate()
        time.sleep(0.05)
    temps = [q for q in tmp_path.iterdir() if q.name.startswith(".out.tmp-")]
    assert len(temps) == 1 and any(temps[0].iterdir()), "the new bundle is being written aside"
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0
    assert _tree(out) == before, "the previous bundle changed"
    left = sorted(q.name for q in tmp_path.iterdir() if q.name not in ("out", "marker", "tmpdir"))
    if sig == "SIGINT":
        assert p.returncode == 130 and "interrupted" in err
        assert not left, f"temporary files left: {left}"
        assert not any(tmpdir.iterdir())
    elif sig == "SIGTERM":
        assert p.returncode == 143
        assert not left, f"temporary files left: {left}"
        assert not any(tmpdir.iterdir())
    else:
        # nothing can clean up after SIGKILL: the hidden temporary directory stays,
        # never a partial `out`
        assert all(q.startswith(".out.tmp-") for q in left)


def test_random_kills_leave_old_or_new_bundle(tmp_path):
    """SIGKILL a real build at random moments: the output directory is always either
    the complete previous bundle or the complete new one."""
    model = MLPERF / "vww_96_float.tflite"
    out = tmp_path / "out"
    assert _cli(["build", EXAMPLE_KWS, "-o", out, "--name", "old"]).returncode == 0
    old = _tree(out)
    ref = tmp_path / "ref"
    t0 = time.monotonic()
    assert _cli(["build", model, "-o", ref, "--name", "new"]).returncode == 0
    full = time.monotonic() - t0
    new = _tree(ref)
    rng = random.Random(5)
    seen = set()
    tmpdir = tmp_path / "tmpdir"  # SIGKILLed edgecs leave their private TMPDIR here
    tmpdir.mkdir()
    for k in range(6):
        p = subprocess.Popen([sys.executable, "-m", "edgec", "build", str(model), "-o", str(out),
                              "--name", "new"],
                             env=dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmpdir)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.1) * full)
        p.kill()
        p.wait()
        now = _tree(out)
        assert now in (old, new), f"kill {k}: a partial bundle ({len(now)} files)"
        seen.add("new" if now == new else "old")
        if now == new:  # start again from the old bundle
            for q in out.iterdir():
                q.unlink()
            for f, data in old.items():
                (out / f).write_bytes(data)
