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
from edgec.ir.errors import EdgecError


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
    with pytest.raises(EdgecError, match="No space left on device"):
        edgec.build(EXAMPLE_KWS, out, target="cortex-m4", name="other")
    monkeypatch.undo()
    assert calls["n"] == 3
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_new_bundle_replaces_previous_completely(tmp_path):
    """A rebuild replaces the previous bundle and what its own Makefile built in it."""
    import edgec
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host", name="first")
    for product in ("libfirst.a", "first.o", "firmware.elf", "firmware.map"):
        (out / product).write_bytes(b"a build product")
    edgec.build(EXAMPLE_KWS, out, target="host", name="second")
    names = sorted(p.name for p in out.iterdir())
    assert "first.c" not in names and "second.c" in names
    assert not {"libfirst.a", "first.o", "firmware.elf", "firmware.map"} & set(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_manifest_lists_every_file_edgec_wrote(tmp_path):
    import hashlib
    import json

    import edgec
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="cortex-m4", firmware=True)
    man = json.loads((out / ".edgec-manifest.json").read_text())
    tree = _tree(out)
    assert man["schema"] == "edgec-manifest/1"
    assert man["files"] == {k: hashlib.sha256(v).hexdigest() for k, v in tree.items()
                            if k != ".edgec-manifest.json"}
    assert {"model.c", "report.json", "Makefile", "firmware/main.c"} <= set(man["files"])
    # what the bundle's Makefile builds in it: its `make clean` list, the same words
    assert man["build_products"] == ["*.o", "firmware.elf", "firmware.map", "libmodel.a"]
    assert "\trm -f *.o libmodel.a firmware.elf firmware.map\n" in tree["Makefile"].decode()


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("edgec: error: "), r.stderr
    return lines[0]


def _dirs(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_dir() or p.is_symlink())


@pytest.mark.parametrize("what", ["file", "subfolder", "changed", "symlink", "older_bundle", "no_manifest",
                                  "bad_manifest"])
def test_rebuild_refuses_what_edgec_did_not_write(tmp_path, what):
    """Only an empty directory or one holding exactly its manifest's files (and their
    build products) is replaced; otherwise one line naming what edgec did not write."""
    out = tmp_path / "out"
    assert _cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host"]).returncode == 0
    (out / "libmodel.a").write_bytes(b"built by the bundle's Makefile: edgec's")
    named = {"file": "my_app.c", "subfolder": "app/", "changed": "model.h", "symlink": "data",
             "older_bundle": "older edgec", "no_manifest": "CMakeLists.txt", "bad_manifest": ".edgec-manifest.json"}[what]
    if what == "file":
        (out / "my_app.c").write_text("int main(void) { return 0; }\n")
    elif what == "subfolder":
        (out / "app").mkdir()
        (out / "app" / "notes.txt").write_text("mine\n")
    elif what == "changed":
        with open(out / "model.h", "a") as f:
            f.write("/* my change */\n")
    elif what == "symlink":
        (out / "data").symlink_to(tmp_path)
    elif what == "older_bundle":  # report.json says edgec, but there is no manifest
        (out / ".edgec-manifest.json").unlink()
    elif what == "no_manifest":  # C files of unknown origin
        (out / ".edgec-manifest.json").unlink()
        (out / "report.json").unlink()
    else:
        (out / ".edgec-manifest.json").write_text("{}")
    before, dirs = _tree(out), _dirs(out)
    r = _cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host"])
    line = _one_line(r)
    assert named in line and ("--force" in line)
    assert _tree(out) == before and _dirs(out) == dirs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_keeps_the_users_files(tmp_path):
    """--force: edgec's files (changed or not, and its build products) are replaced, the
    user's files, folders and links stay as they are (the same inodes)."""
    import json
    out = tmp_path / "out"
    assert _cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host", "--name", "first"]).returncode == 0
    (out / "my_app.c").write_text("int main(void) { return 0; }\n")
    (out / "app").mkdir()
    (out / "app" / "notes.txt").write_text("mine\n")
    (out / ".git" / "objects").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / ".git" / "objects" / "ab").write_bytes(b"\x78\x01object")
    os.chmod(out / ".git" / "objects" / "ab", 0o444)
    (out / "link").symlink_to("my_app.c")
    (out / "first.h").write_text("/* changed: edgec's file, replaced under --force */\n")
    (out / "libfirst.a").write_bytes(b"a build product")
    inode = (out / "my_app.c").stat().st_ino
    r = _cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host", "--name", "second", "--force"])
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".edgec-manifest.json", ".git", "CMakeLists.txt", "Makefile", "app", "edgec.mk",
                            "link", "my_app.c", "report.json", "second.c", "second.h"])
    assert (out / "my_app.c").stat().st_ino == inode
    assert (out / "app" / "notes.txt").read_text() == "mine\n"
    assert (out / ".git" / "objects" / "ab").read_bytes() == b"\x78\x01object"
    assert os.readlink(out / "link") == "my_app.c"
    assert "my_app.c" not in json.loads((out / ".edgec-manifest.json").read_text())["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # the user's files are still not edgec's
    assert "my_app.c" in _one_line(_cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host", "--name", "second"]))


def test_force_never_replaces_a_users_directory(tmp_path):
    out = tmp_path / "out"
    assert _cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host", "--name", "first"]).returncode == 0
    (out / "second.c").mkdir()  # where the new bundle writes a file
    (out / "second.c" / "mine.txt").write_text("mine\n")
    before, dirs = _tree(out), _dirs(out)
    r = _cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host", "--name", "second", "--force"])
    assert "second.c" in _one_line(r)
    assert _tree(out) == before and _dirs(out) == dirs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_without_atomic_exchange(tmp_path, monkeypatch):
    import edgec
    from edgec.ir import bundle
    monkeypatch.setattr(bundle, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host", name="first")
    (out / "my_app.c").write_text("int main(void) { return 0; }\n")
    with pytest.raises(EdgecError, match="my_app.c"):
        edgec.build(EXAMPLE_KWS, out, target="host", name="second")
    edgec.build(EXAMPLE_KWS, out, target="host", name="second", force=True)
    assert (out / "second.c").exists() and not (out / "first.c").exists() and (out / "my_app.c").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("late", ["file", "dir_in_the_way"])
def test_files_saved_while_the_bundle_is_written_are_not_lost(tmp_path, monkeypatch, late):
    """Between edgec's last look at the directory and the swap, the user saves a file
    there: it is linked into the new bundle; what cannot be placed stays aside."""
    import edgec
    from edgec.ir import bundle
    out = tmp_path / "out"
    edgec.build(EXAMPLE_KWS, out, target="host")
    real = bundle._exchange

    def saving_meanwhile(a, b):
        if late == "file":
            (out / "notes.txt").write_text("saved meanwhile\n")
        else:
            (out / "model.c").unlink()
            (out / "model.c").mkdir()
            (out / "model.c" / "mine.txt").write_text("saved meanwhile\n")
        return real(a, b)
    monkeypatch.setattr(bundle, "_exchange", saving_meanwhile)
    edgec.build(EXAMPLE_KWS, out, target="host")
    if late == "file":
        assert (out / "notes.txt").read_text() == "saved meanwhile\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    else:
        assert (out / "model.c").is_file()
        kept = [p for p in tmp_path.iterdir() if p.name.startswith(".out.kept-")]
        assert len(kept) == 1 and (kept[0] / "model.c" / "mine.txt").read_text() == "saved meanwhile\n"


@pytest.mark.parametrize("case", ["dangling_link", "through_dangling_link", "parent_is_a_file", "proc",
                                  "proc_self", "sys"])
def test_output_paths_edgec_does_not_write_to(tmp_path, case):
    """One line, exit 2, nothing written anywhere (not at a dangling link's target)."""
    (tmp_path / "link").symlink_to(tmp_path / "nowhere" / "deep")
    (tmp_path / "file").write_text("x")
    out = {"dangling_link": tmp_path / "link", "through_dangling_link": tmp_path / "link" / "out",
           "parent_is_a_file": tmp_path / "file" / "out", "proc": Path("/proc/edgec-test-out"),
           "proc_self": Path("/proc/self/cwd/out"), "sys": Path("/sys/fs/cgroup/edgec-test/out")}[case]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _one_line(_cli(["build", EXAMPLE_KWS, "-o", out, "--target", "host"], cwd=cwd))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "file", "link"]
    assert list(cwd.iterdir()) == [] and not Path("/sys/fs/cgroup/edgec-test").exists()


def _without_root_powers():
    """As root, a child process without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (dropped
    from the bounding set before exec): file modes apply to it as to anyone."""
    if os.geteuid() != 0:
        return
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities")
def test_output_where_the_parent_is_not_writable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        for out in (locked / "out", locked / "a" / "b" / "out"):
            try:
                r = subprocess.run([sys.executable, "-m", "edgec", "build", str(EXAMPLE_KWS), "-o", str(out),
                                    "--target", "host"], cwd=tmp_path, capture_output=True, text=True,
                                   timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                   preexec_fn=_without_root_powers)
            except subprocess.SubprocessError as e:
                pytest.skip(f"cannot drop root's file powers here: {e}")
            assert "permission denied" in _one_line(r)
            assert list(locked.iterdir()) == []
    finally:
        os.chmod(locked, 0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked"]


def test_write_file_is_atomic(tmp_path, monkeypatch):
    """Other outputs (quantize -o, size -o, explore -o) go through bundle.write_file."""
    from edgec.ir import bundle
    f = tmp_path / "model.tflite"
    bundle.write_file(f, b"old")
    assert f.read_bytes() == b"old"

    def fail(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(bundle.os, "replace", fail)
    with pytest.raises(EdgecError, match="No space left"):
        bundle.write_file(f, b"new")
    monkeypatch.undo()
    assert f.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    (tmp_path / "link").symlink_to(tmp_path / "gone" / "x.json")
    with pytest.raises(EdgecError, match="does not exist"):
        bundle.write_file(tmp_path / "link", "{}")
    with pytest.raises(EdgecError, match="/proc"):
        bundle.write_file("/proc/edgec-test.json", "{}")
    assert not (tmp_path / "gone").exists()


def test_fallback_without_atomic_exchange(tmp_path, monkeypatch):
    """Where renameat2 is missing, two renames: same result, nothing left over."""
    import edgec
    from edgec.ir import bundle
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
    big = ["--no-fit-check"]  # VWW float is larger than a Cortex-M4's typical RAM; only its size matters here
    assert _cli(["build", model, "-o", ref, "--name", "new", *big]).returncode == 0
    full = time.monotonic() - t0
    new = _tree(ref)
    rng = random.Random(5)
    seen = set()
    tmpdir = tmp_path / "tmpdir"  # SIGKILLed edgecs leave their private TMPDIR here
    tmpdir.mkdir()
    for k in range(6):
        p = subprocess.Popen([sys.executable, "-m", "edgec", "build", str(model), "-o", str(out),
                              "--name", "new", *big],
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
