"""int8 RSQRT (ops/qrsqrt.py) bit for bit with the TFLite Micro interpreter: every int8
input level at or above the input zero point under several quantizations, compiled on the
host (both kernel modes); below the zero point TFLite Micro's Invoke fails and edgec gives
127; int16 refused."""
import numpy as np
import pytest

from tflite_builder import ModelBuilder
from edgec.commands import reference
from edgec.ir.errors import UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram


def _model(in_scale, in_zp, out_scale, out_zp, dtype="int8", n=256) -> bytes:
    b = ModelBuilder()
    x = b.tensor([1, n], dtype, scale=in_scale, zero_point=in_zp)
    y = b.tensor([1, n], dtype, scale=out_scale, zero_point=out_zp)
    b.op("RSQRT", [x], [y])
    return b.finish([x], [y])


# (input scale, input zero point, output scale, output zero point): LayerNorm-like variances,
# tiny and huge scales (outputs saturating at either end), zero points at both ends
CASES = [(0.05, -128, 0.02, -100), (0.001, -128, 0.5, -128), (1e-5, -128, 3.0, -128),
         (0.37, -20, 0.01, 0), (4.0, 0, 0.002, -128), (1000.0, -128, 1e-4, 5),
         (0.0123, 100, 0.5, 120), (2e-3, 40, 0.25, -60)]


@pytest.mark.parametrize("in_scale,in_zp,out_scale,out_zp", CASES)
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_every_level_bit_exact_with_tflite_micro(in_scale, in_zp, out_scale, out_zp, optimize, tmp_path):
    levels = np.arange(in_zp, 128, dtype=np.int8).reshape(1, -1)   # TFLite Micro's domain
    data = _model(in_scale, in_zp, out_scale, out_zp, n=levels.size)
    want = reference.run_tflm(data, [[levels]])[0][0][0]
    assert len(np.unique(want)) > 1   # not all saturated
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host", optimize=optimize))
    assert [n.op for n in g.nodes] == ["QRsqrt"]
    np.testing.assert_array_equal(interp.run(g, [levels])[g.outputs[0]], want)
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[levels]])
    np.testing.assert_array_equal(outs[0][0], want)


def test_below_zero_point_tflite_micro_fails_and_edgec_gives_127(tmp_path):
    data = _model(0.05, 0, 0.02, -100, n=128)
    below = np.arange(-128, 0, dtype=np.int8).reshape(1, 128)
    with pytest.raises(RuntimeError):
        reference.run_tflm(data, [[below]])
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host"))
    np.testing.assert_array_equal(interp.run(g, [below])[g.outputs[0]], np.full((1, 128), 127))
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[below]])
    np.testing.assert_array_equal(outs[0][0], np.full((1, 128), 127))


def test_int16_rsqrt_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model(1 / 4096, 0, 1 / 4096, 0, dtype="int16", n=8))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "RSQRT[int16]" in e.value.items
