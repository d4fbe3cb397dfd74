"""int8 PRELU (ops/qprelu.py) bit for bit with the TFLite Micro interpreter: random inputs
and alphas under several quantizations and alpha shapes broadcast against the input
(Keras' shared_axes=[1, 2] alpha [1, 1, C], per-channel [C], per-element, one value),
compiled on the host in both kernel modes; int16 refused."""
import numpy as np
import pytest

from tflite_builder import ModelBuilder
from edgec.commands import reference
from edgec.ir.errors import UnsupportedError
from edgec.ops import interp
from edgec.pipeline import Options, compile_full
from edgec.target.emulator import HostProgram


def _model(x_shape, a_shape, alpha, q_in, q_alpha, q_out, dtype="int8") -> bytes:
    b = ModelBuilder()
    x = b.tensor(list(x_shape), dtype, scale=q_in[0], zero_point=q_in[1])
    a = b.tensor(list(a_shape), "int8", data=np.asarray(alpha, dtype=np.int8).reshape(a_shape),
                 scale=q_alpha[0], zero_point=q_alpha[1])
    y = b.tensor(list(x_shape), dtype, scale=q_out[0], zero_point=q_out[1])
    b.op("PRELU", [x, a], [y])
    return b.finish([x], [y])


# (input shape, alpha shape)
SHAPES = [
    ((1, 6, 5, 8), (1, 1, 8)),     # Keras PReLU(shared_axes=[1, 2])
    ((1, 6, 5, 8), (8,)),
    ((1, 4, 3, 5), (4, 3, 5)),     # one alpha per element
    ((2, 3, 7), (3, 1)),           # broadcast over the last axis
    ((1, 40), (1,)),
    ((3, 4, 2, 6), (4, 1, 6)),
]
# (input scale, zp), (alpha scale, zp), (output scale, zp)
QUANTS = [
    ((0.05, -3), (0.01, 0), (0.04, 7)),
    ((0.0473, -128), (0.0039, -128), (0.0229, -128)),
    ((0.3, 20), (0.02, 5), (0.01, -100)),       # outputs clamp at both ends
    ((1e-3, 0), (0.5, -20), (0.2, 3)),          # tiny multipliers
    ((0.1, 127), (0.0078, 0), (0.1, 127)),      # everything at or below the zero point
]


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}-{s[1]}".replace(" ", ""))
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_random_inputs_bit_exact_with_tflite_micro(shapes, optimize, tmp_path):
    x_shape, a_shape = shapes
    rng = np.random.default_rng(len(x_shape) * 100 + len(a_shape))
    path = tmp_path / "m.tflite"
    for q_in, q_alpha, q_out in QUANTS:
        alpha = rng.integers(-128, 128, int(np.prod(a_shape)))
        data = _model(x_shape, a_shape, alpha, q_in, q_alpha, q_out)
        xs = [rng.integers(-128, 128, x_shape).astype(np.int8) for _ in range(3)]
        want = reference.run_tflm(data, [[x] for x in xs])[0]
        path.write_bytes(data)
        bundle, g = compile_full(path, Options(target="host", optimize=optimize))
        assert [n.op for n in g.nodes] == ["QPRelu"]
        outs = HostProgram(bundle.write(tmp_path / "b"), bundle.report, tmp_path / "w").run([[x] for x in xs])[0]
        for x, w, o in zip(xs, want, outs):
            np.testing.assert_array_equal(interp.run(g, [x])[g.outputs[0]], w[0], err_msg=f"{q_in} {q_alpha} {q_out}")
            np.testing.assert_array_equal(o[0], w[0], err_msg=f"C {q_in} {q_alpha} {q_out}")


def test_many_random_quantizations_match_tflite_micro(tmp_path):
    """Every int8 input level against random alphas under 60 random quantizations."""
    rng = np.random.default_rng(17)
    path = tmp_path / "m.tflite"
    x = np.tile(np.arange(-128, 128, dtype=np.int8), 4).reshape(1, 4, 32, 8)
    for _ in range(60):
        q_in = (float(10 ** rng.uniform(-4, 0)), int(rng.integers(-128, 128)))
        q_alpha = (float(10 ** rng.uniform(-4, 0)), int(rng.integers(-128, 128)))
        q_out = (float(q_in[0] * 10 ** rng.uniform(-1.5, 1.5)), int(rng.integers(-128, 128)))
        data = _model(x.shape, (1, 1, 8), rng.integers(-128, 128, 8), q_in, q_alpha, q_out)
        path.write_bytes(data)
        _, g = compile_full(path, Options(target="host"))
        np.testing.assert_array_equal(interp.run(g, [x])[g.outputs[0]],
                                      reference.run_tflm(data, [[x]])[0][0][0],
                                      err_msg=f"{q_in} {q_alpha} {q_out}")


def test_int16_prelu_is_listed_unsupported(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_model((1, 8), (8,), np.arange(8), (1 / 4096, 0), (0.01, 0), (1 / 4096, 0), dtype="int16"))
    with pytest.raises(UnsupportedError) as e:
        compile_full(path, Options(target="host"))
    assert "PRELU[int16]" in e.value.items
