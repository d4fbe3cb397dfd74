"""Every golden bundle (tests/golden.py) is byte-identical with its record: a
restructuring of edgec keeps the C, the build files and the report of the MLPerf Tiny
models in each kernel mode, trees, BNN, sparse, TVM, TFLM and fuzz-regression bundles.
A deliberate change re-records them (``python tests/golden.py --write``) in its commit."""
import os
import subprocess
import sys

from conftest import ROOT


def test_golden_bundles_are_byte_identical():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "golden.py")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "bundles byte-identical" in r.stdout, r.stdout[-2000:]
