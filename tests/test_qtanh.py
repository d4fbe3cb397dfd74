"""int8 TANH (ops/qtanh.py) bit for bit with the TFLite Micro interpreter: every int8 input
level under several input quantizations, compiled on the host in both kernel modes and
once on cortex-m4 in QEMU; an output zero point other than 0 and int16 refused."""
import numpy as np
import pytest

from conftest import have
from test_qlogistic import LEVELS, _model
from edgec.commands import reference
from edgec.commands.verify import verify
from edgec.ir.errors import EdgecError, UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram

CASES = [(0.001, 0), (0.02, -5), (0.0625, 10), (0.1, -128), (0.37, 127), (3.0, 0), (10.0, 1), (1e-6, 3)]


@pytest.mark.parametrize("in_scale,in_zp", CASES)
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_every_level_bit_exact_with_tflite_micro(in_scale, in_zp, optimize, tmp_path):
    data = _model(in_scale, in_zp, out_zp=0, op="TANH")
    want = reference.run_tflm(data, [[LEVELS]])[0][0][0]
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host", optimize=optimize))
    assert [n.op for n in g.nodes] == ["QTanh"]
    np.testing.assert_array_equal(interp.run(g, [LEVELS])[g.outputs[0]], want)
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[LEVELS]])
    np.testing.assert_array_equal(outs[0][0], want)


@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")),
                    reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_cortex_m4_matches_tflite_micro(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(0.05, -3, out_zp=0, shape=(1, 4, 4, 8), op="TANH"))
    res = verify(path, target="cortex-m4", n=20, layers=True)
    assert res.ok and all(c.exact for c in res.outputs)


def test_output_zero_point_other_than_0_is_refused(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(0.05, 0, out_zp=5, op="TANH"))
    with pytest.raises(EdgecError, match="TANH output zero point 5"):
        compile_full(path, Options(target="host"))


def test_int16_tanh_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(1 / 4096, 0, out_zp=0, dtype="int16", op="TANH"))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "TANH[int16]" in e.value.items
