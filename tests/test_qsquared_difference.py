"""int8 SQUARED_DIFFERENCE (ops/qsquared_difference.py) bit for bit with the TFLite Micro
interpreter: random inputs, equal shapes and broadcasts (a scalar, a row, a column, both
sides), several quantizations, compiled on the host (both kernel modes); int16 refused."""
import numpy as np
import pytest

from tflite_builder import ModelBuilder
from edgec.commands import reference
from edgec.ir.errors import UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram


def _model(sa, sb, q1, q2, qo, dtype="int8") -> bytes:
    b = ModelBuilder()
    x1 = b.tensor(list(sa), dtype, scale=q1[0], zero_point=q1[1])
    x2 = b.tensor(list(sb), dtype, scale=q2[0], zero_point=q2[1])
    y = b.tensor(list(np.broadcast_shapes(sa, sb)), dtype, scale=qo[0], zero_point=qo[1])
    b.op("SQUARED_DIFFERENCE", [x1, x2], [y])
    return b.finish([x1, x2], [y])


SHAPES = [((2, 3, 16), (2, 3, 16)), ((1, 4, 4, 8), (1,)), ((1, 4, 4, 8), (8,)),
          ((3, 1, 5), (1, 4, 1)), ((2, 6, 1), (2, 1, 7))]
# (input 1, input 2, output) quantizations: equal scales, a larger second scale, extreme
# ratios (outputs saturating), zero points at both ends
QUANTS = [((0.05, -3), (0.05, -3), (0.01, -128)), ((0.02, 10), (0.3, -128), (30.0, -100)),
          ((1e-3, 127), (0.04, 0), (0.05, 5)), ((0.7, -128), (0.7, 127), (40.0, -128))]


@pytest.mark.parametrize("optimize", ["speed", "size"])
@pytest.mark.parametrize("q", QUANTS, ids=range(len(QUANTS)))
@pytest.mark.parametrize("sa,sb", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bit_exact_with_tflite_micro(sa, sb, q, optimize, tmp_path):
    rng = np.random.default_rng(abs(hash((sa, sb))) % 2**32)
    samples = [[rng.integers(-128, 128, size=sa).astype(np.int8),
                rng.integers(-128, 128, size=sb).astype(np.int8)] for _ in range(3)]
    data = _model(sa, sb, *q)
    want = [o[0] for o in reference.run_tflm(data, samples)[0]]
    assert len(np.unique(np.concatenate([w.ravel() for w in want]))) > 1   # not all saturated
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    bundle, g = compile_full(path, Options(target="host", optimize=optimize))
    assert [n.op for n in g.nodes] == ["QSquaredDifference"]
    for s, w in zip(samples, want):
        np.testing.assert_array_equal(interp.run(g, s)[g.outputs[0]], w)
    outs, _ = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run(samples)
    for o, w in zip(outs, want):
        np.testing.assert_array_equal(o[0], w)


def test_int16_squared_difference_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model((1, 8), (1, 8), (1 / 4096, 0), (1 / 4096, 0), (1 / 4096, 0), dtype="int16"))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "SQUARED_DIFFERENCE[int16]" in e.value.items
