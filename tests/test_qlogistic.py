"""int8 LOGISTIC (ops/qlogistic.py) bit for bit with the TFLite Micro interpreter: every
int8 input level under several input quantizations, compiled on the host (both kernel
modes) and once on cortex-m4 in QEMU; wrong output quantization and int16 refused."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, have
from tflite_builder import ModelBuilder
from edgec.commands import reference
from edgec.commands.verify import verify
from edgec.ir.errors import EdgecError, UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram

LEVELS = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _model(in_scale, in_zp, out_zp=-128, dtype="int8", shape=(1, 256), op="LOGISTIC") -> bytes:
    b = ModelBuilder()
    x = b.tensor(list(shape), dtype, scale=in_scale, zero_point=in_zp)
    y = b.tensor(list(shape), dtype, scale=1 / 256 if op == "LOGISTIC" else 1 / 128, zero_point=out_zp)
    b.op(op, [x], [y])
    return b.finish([x], [y])


# input scales from tiny (everything in the linear middle) to huge (everything saturates)
CASES = [(0.001, 0), (0.02, -5), (0.0625, 10), (0.1, -128), (0.37, 127), (3.0, 0), (10.0, 1), (1e-6, 3)]


@pytest.mark.parametrize("in_scale,in_zp", CASES)
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_every_level_bit_exact_with_tflite_micro(in_scale, in_zp, optimize, tmp_path):
    data = _model(in_scale, in_zp)
    want = reference.run_tflm(data, [[LEVELS]])[0][0][0]   # (outputs per sample, _)
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host", optimize=optimize))
    assert [n.op for n in g.nodes] == ["QLogistic"]
    ref = interp.run(g, [LEVELS])[g.outputs[0]]
    np.testing.assert_array_equal(ref, want)
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[LEVELS]])
    np.testing.assert_array_equal(outs[0][0], want)


@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")),
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_cortex_m4_matches_tflite_micro(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(0.05, -3, shape=(1, 4, 4, 8)))
    res = verify(path, target="cortex-m4", n=20, layers=True)
    assert res.ok, res.to_json() if hasattr(res, "to_json") else res
    assert all(c.exact for c in res.outputs)


def test_output_zero_point_other_than_minus_128_is_refused(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(0.05, 0, out_zp=0))
    with pytest.raises(EdgecError, match="zero point 0"):
        compile_full(path, Options(target="host"))
    r = subprocess.run([sys.executable, "-m", "edgec", "build", str(path), "--target", "host",
                        "-o", str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "LOGISTIC output zero point 0" in r.stderr and not (tmp_path / "out").exists()


def test_int16_logistic_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(1 / 4096, 0, out_zp=0, dtype="int16"))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "LOGISTIC[int16]" in e.value.items
