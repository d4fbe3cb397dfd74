"""int8 HARD_SWISH (ops/qhardswish.py) bit for bit with the TFLite Micro interpreter: every
int8 input level under input and output quantizations that take each path of the int16
arithmetic (reluish left shift, right shift, a right shift of 16 or more; output exponents
from 0 to below -16; zero points at both ends), compiled on the host in both kernel modes
and once on cortex-m4 in QEMU; an output scale TFLite Micro refuses, and int16, refused."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, have
from test_qlogistic import LEVELS
from tflite_builder import ModelBuilder
from edgec.commands import reference
from edgec.commands.verify import verify
from edgec.ir.errors import EdgecError, UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram


def _model(in_scale, in_zp, out_scale, out_zp, dtype="int8", shape=(1, 256), op="HARD_SWISH") -> bytes:
    b = ModelBuilder()
    x = b.tensor(list(shape), dtype, scale=in_scale, zero_point=in_zp)
    y = b.tensor(list(shape), dtype, scale=out_scale, zero_point=out_zp)
    b.op(op, [x], [y])
    return b.finish([x], [y])


# (input scale, input zero point, output scale, output zero point)
CASES = [
    (0.02, 0, 0.02, 0),           # the converter's usual: output range about the input's
    (0.0473, -128, 0.0229, -128),
    (0.1, 17, 0.05, -40),
    (0.37, 127, 0.37 * 2.7, 5),
    (3.0, -5, 0.0236, 127),       # output scale just above input / 128: exponent 0
    (10.0, 1, 1.0, -3),           # reluish multiplier above 1: saturating left shifts
    (1e-6, 3, 1e-5, 0),           # reluish right shift of 16 or more (int16 mask wraps)
    (0.01, 0, 10.0, 0),           # output right shift of 16 or more
    (0.001, -20, 0.1, 100),
]


@pytest.mark.parametrize("in_scale,in_zp,out_scale,out_zp", CASES)
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_every_level_bit_exact_with_tflite_micro(in_scale, in_zp, out_scale, out_zp, optimize, tmp_path):
    data = _model(in_scale, in_zp, out_scale, out_zp)
    want = reference.run_tflm(data, [[LEVELS]])[0][0][0]
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host", optimize=optimize))
    assert [n.op for n in g.nodes] == ["QHardSwish"]
    np.testing.assert_array_equal(interp.run(g, [LEVELS])[g.outputs[0]], want)
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[LEVELS]])
    np.testing.assert_array_equal(outs[0][0], want)


def test_outputs_are_hard_swish():
    """The table is hard-swish (not only TFLite Micro's numbers): within an output step."""
    data = _model(0.05, 0, 0.03, -20)
    got = reference.run_tflm(data, [[LEVELS]])[0][0][0].astype(np.float64).ravel()
    x = LEVELS.ravel().astype(np.float64) * 0.05
    want = x * np.clip(x + 3, 0, 6) / 6
    np.testing.assert_allclose((got + 20) * 0.03, np.clip(want, -108 * 0.03, 147 * 0.03), atol=0.03)


@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")),
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_cortex_m4_matches_tflite_micro(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(0.05, -3, 0.04, 7, shape=(1, 4, 4, 8)))
    res = verify(path, target="cortex-m4", n=20, layers=True)
    assert res.ok and all(c.exact for c in res.outputs)


def test_output_scale_tflite_micro_refuses_is_refused(tmp_path):
    """An output multiplier of 1 or more (output scale <= input scale / 128): TFLite Micro's
    Prepare fails, edgec says why in one line, exit 2, writing nothing."""
    data = _model(0.5, 0, 0.5 / 200, 0)
    with pytest.raises(RuntimeError):
        reference.run_tflm(data, [[LEVELS]])
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    with pytest.raises(EdgecError, match="HARD_SWISH output scale"):
        compile_full(path, Options(target="host"))
    r = subprocess.run([sys.executable, "-m", "edgec", "build", str(path), "--target", "host",
                        "-o", str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "HARD_SWISH output scale" in r.stderr and not (tmp_path / "out").exists()


def test_int16_hard_swish_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(1 / 4096, 0, 1 / 4096, 0, dtype="int16"))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "HARD_SWISH[int16]" in e.value.items
