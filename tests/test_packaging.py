"""edgec as a user installs it: `pip install .` (not editable) into a fresh venv, then
run from a directory outside the source tree, with nothing of the checkout on the path.

The venv reaches the already installed dependencies through a .pth line to this
interpreter's site-packages (so the test needs no download); a .pth line adds a path,
it does not run the .pth files in it, so the editable install of the checkout stays
invisible.  The test checks that the edgec it runs is the venv's copy.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import EXAMPLE_KWS, ROOT, have


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    d = tmp_path_factory.mktemp("pkg")
    v = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(v)], check=True)
    py = v / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "edgec_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # pip of the test interpreter installs into the venv (--python); build without
    # isolation with the hatchling the dev extra installs
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-build-isolation", str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    work = d / "work"
    work.mkdir()
    return v, work


def _run(venv, *args, timeout=600):
    v, work = venv
    env = {k: val for k, val in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{v / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(a) for a in args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_installed_copy_is_used(venv):
    v, _ = venv
    r = _run(venv, v / "bin" / "python", "-c",
             "import edgec, edgec.ir.templating as t; print(edgec.__file__); print(t.TEMPLATES); print(t.TARGETS)")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert all(Path(p).is_relative_to(v) for p in lines), lines
    assert not any(Path(p).is_relative_to(ROOT) for p in lines), lines


def test_targets_build_verify_from_the_wheel(venv):
    v, work = venv
    edgec = v / "bin" / "edgec"
    r = _run(venv, edgec, "targets", "--json")
    assert r.returncode == 0, r.stderr
    for t in ("cortex-m4", "cortex-m55", "riscv32", "host"):
        assert f'"{t}"' in r.stdout
    model = work / "kws.tflite"
    shutil.copy(EXAMPLE_KWS, model)
    r = _run(venv, edgec, "verify", model, "--target", "host", "-n", "2")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    if not (have("arm-none-eabi-gcc") and have("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed (make deps-apt)")
    r = _run(venv, edgec, "build", model, "--target", "cortex-m4", "--firmware", "-o", "out")
    assert r.returncode == 0, r.stderr
    r = _run(venv, "make", "-C", "out", "firmware", "run")
    assert r.returncode == 0 and "EDGEC-RESULT PASS" in r.stdout, r.stdout[-1500:] + r.stderr[-1500:]
    r = _run(venv, edgec, "verify", model, "--target", "cortex-m4", "-n", "2")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
