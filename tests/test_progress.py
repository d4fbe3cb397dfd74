"""Long work shows a progress bar on a terminal, and nothing when the output is not a
terminal or the command prints JSON."""
import os
import pty
import select
import subprocess
import sys

import numpy as np
import pytest

import hostile_corpus
from conftest import ROOT, have


def _run(args, tty: bool, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120", TERM="xterm")
    if not tty:
        p = subprocess.run([sys.executable, "-m", "edgec", *map(str, args)], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=600)
        return p.returncode, p.stdout + p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "edgec", *map(str, args)], cwd=cwd, env=env,
                         stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 600)
        if not r:
            p.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:   # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    p.wait()
    os.close(master)
    return p.returncode, out.decode("utf-8", "replace")


def test_calibration_and_evaluation_progress(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(hostile_corpus.onnx_base().SerializeToString())
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.normal(size=(40, 1, 3, 8, 8)).astype(np.float32))
    args = ["quantize", model, "--calibration", tmp_path / "cal.npz", "--eval", tmp_path / "cal.npz",
            "-o", tmp_path / "q.tflite"]
    rc, out = _run(args, tty=True, cwd=tmp_path)
    assert rc == 0, out[-1500:]
    assert "calibration" in out and "evaluation" in out and "40/40" in out, out[-1500:]
    rc, out = _run(args, tty=False, cwd=tmp_path)
    assert rc == 0, out[-1500:]
    assert "40/40" not in out and "\x1b[" not in out


def test_conformance_progress_only_on_a_terminal(tmp_path):
    args = ["conformance", "-k", "^test_relu$", "-j", "1"]
    rc, out = _run(args, tty=True, cwd=tmp_path)
    assert rc == 0, out[-1500:]
    assert "ONNX node tests" in out, out[-800:]
    rc, out = _run([*args, "--json"], tty=True, cwd=tmp_path)
    assert rc == 0 and "ONNX node tests" not in out, out[-800:]


def test_qemu_run_of_many_samples_shows_progress(tmp_path):
    """The firmware writes each sample's outputs as it goes; the bar follows that file."""
    if not (have("qemu-system-arm") and have("arm-none-eabi-gcc")):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    model = tmp_path / "m.onnx"
    model.write_bytes(hostile_corpus.onnx_base().SerializeToString())
    args = ["verify", model, "--target", "cortex-m4", "-n", "300"]
    rc, out = _run(args, tty=True, cwd=tmp_path)
    assert rc == 0, out[-1500:]
    assert "cortex-m4 in QEMU" in out and "/300" in out, out[-1500:]
    rc, out = _run(args, tty=False, cwd=tmp_path)
    assert rc == 0, out[-1500:]
    assert "in QEMU" not in out and "\x1b[" not in out
