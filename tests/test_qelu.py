"""int8 ELU (ops/qelu.py) bit for bit with the TFLite Micro interpreter: every int8 input
level under many input and output quantizations (ties that round half away from zero,
outputs that clamp at both ends, inputs deep in exp's tail), compiled on the host in both
kernel modes and once on cortex-m4 in QEMU; scales whose table leaves int32, and int16,
refused."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, have
from test_qhardswish import _model
from test_qlogistic import LEVELS
from edgec.commands import reference
from edgec.commands.verify import verify
from edgec.ir.errors import EdgecError, UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram

# (input scale, input zero point, output scale, output zero point)
CASES = [
    (0.02, 0, 0.02, 0),
    (0.0473, -128, 0.0229, -128),
    (0.1, 17, 0.05, -40),
    (0.5, 0, 1.0, 0),             # every other positive level a tie: half away from zero
    (0.37, 127, 0.0078, 127),     # everything at or below zero: exp's side, clamped
    (3.0, -5, 0.0236, 100),       # large inputs: exp(d) - 1 is -1, positives clamp
    (1e-6, 3, 1e-5, 0),           # tiny inputs: exp(d) - 1 close to d
    (0.01, 0, 10.0, 0),           # output step far above the input's
    (0.0117, -77, 0.00391, 128 - 200),
    (7.3e-3, 91, 3.1e-2, -17),
]


@pytest.mark.parametrize("in_scale,in_zp,out_scale,out_zp", CASES)
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_every_level_bit_exact_with_tflite_micro(in_scale, in_zp, out_scale, out_zp, optimize, tmp_path):
    data = _model(in_scale, in_zp, out_scale, out_zp, op="ELU")
    want = reference.run_tflm(data, [[LEVELS]])[0][0][0]
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host", optimize=optimize))
    assert [n.op for n in g.nodes] == ["QElu"]
    np.testing.assert_array_equal(interp.run(g, [LEVELS])[g.outputs[0]], want)
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[LEVELS]])
    np.testing.assert_array_equal(outs[0][0], want)


def test_many_random_quantizations_match_tflite_micro(tmp_path):
    """The float32 table under 150 random quantizations: all 256 levels each, no level off."""
    rng = np.random.default_rng(17)
    path = tmp_path / "m.tflite"
    for _ in range(150):
        in_scale = float(10 ** rng.uniform(-5, 1.5))
        out_scale = float(in_scale * 10 ** rng.uniform(-2, 3))
        in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
        data = _model(in_scale, in_zp, out_scale, out_zp, op="ELU")
        path.write_bytes(data)
        _, g = compile_full(path, Options(target="host"))
        np.testing.assert_array_equal(interp.run(g, [LEVELS])[g.outputs[0]],
                                      reference.run_tflm(data, [[LEVELS]])[0][0][0],
                                      err_msg=f"{in_scale} {in_zp} {out_scale} {out_zp}")


def test_ties_round_half_away_from_zero():
    data = _model(0.5, 0, 1.0, 0, op="ELU")
    got = reference.run_tflm(data, [[LEVELS]])[0][0][0].ravel()
    # 0.5 -> 1, 1.5 -> 2 (half to even would give 0 and 2)
    assert got[128 + 1] == 1 and got[128 + 3] == 2 and got[128 + 5] == 3


@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")),
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_cortex_m4_matches_tflite_micro(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(0.05, -3, 0.04, 7, shape=(1, 4, 4, 8), op="ELU"))
    res = verify(path, target="cortex-m4", n=20, layers=True)
    assert res.ok and all(c.exact for c in res.outputs)


def test_scales_whose_table_leaves_int32_are_refused(tmp_path):
    """127 * 100 / 1e-9 does not fit int32: TFLite Micro's float to int conversion is
    undefined there (x86 and Cortex-M give different tables); edgec refuses, exit 2."""
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(100.0, 0, 1e-9, 0, op="ELU"))
    with pytest.raises(EdgecError, match="outside int32"):
        compile_full(path, Options(target="host"))
    r = subprocess.run([sys.executable, "-m", "edgec", "build", str(path), "--target", "host",
                        "-o", str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "ELU input scale 100" in r.stderr and not (tmp_path / "out").exists()


def test_int16_elu_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(1 / 4096, 0, 1 / 4096, 0, dtype="int16", op="ELU"))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "ELU[int16]" in e.value.items
