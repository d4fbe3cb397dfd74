"""TFLite fixed-point primitives against their mathematical definitions."""
import math

import numpy as np

from edgec.ir import qmath


def test_quantize_multiplier_roundtrip():
    rng = np.random.default_rng(0)
    for m in np.concatenate([rng.uniform(1e-6, 0.999, 200), rng.uniform(1, 1000, 50)]):
        q, s = qmath.quantize_multiplier(float(m))
        assert (1 << 30) <= q < (1 << 31)
        assert abs(q * 2.0 ** (s - 31) - m) <= m * 2 ** -30


def test_srdhm_matches_definition():
    rng = np.random.default_rng(1)
    a = rng.integers(-(1 << 31), 1 << 31, 1000)
    b = rng.integers(-(1 << 31), 1 << 31, 1000)
    got = qmath.srdhm(a, b)
    for x, y, r in zip(a.tolist(), b.tolist(), got.tolist()):
        ab = x * y
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        expect = int((ab + nudge) / (1 << 31)) if abs(ab + nudge) < (1 << 52) else \
            (ab + nudge) // (1 << 31) if ab + nudge >= 0 else -((-(ab + nudge)) // (1 << 31))
        assert r == expect
    assert qmath.srdhm(-(1 << 31), -(1 << 31)) == (1 << 31) - 1


def test_rounding_divide_by_pot_rounds_half_away():
    x = np.array([5, -5, 6, -6, 7, -7, 4, -4])
    assert qmath.rounding_divide_by_pot(x, 1).tolist() == [3, -3, 3, -3, 4, -4, 2, -2]


def test_exp_on_negative_values_close_to_exp():
    xs = np.linspace(-31.9, 0, 500)
    raw = np.round(xs * (1 << 26)).astype(np.int64)
    got = qmath.exp_on_negative_values(raw, 5) / 2.0 ** 31
    assert np.allclose(got, np.exp(raw / 2.0 ** 26), atol=2e-6)


def test_one_over_one_plus_x():
    xs = np.linspace(0, 0.999, 300)
    raw = np.round(xs * 2.0 ** 31).astype(np.int64)
    got = qmath.one_over_one_plus_x_for_x_in_0_1(raw) / 2.0 ** 31
    assert np.allclose(got, 1 / (1 + raw / 2.0 ** 31), atol=1e-7)


def test_tfl_round():
    assert [qmath.tfl_round(v) for v in (0.5, -0.5, 1.5, -2.5, 2.4)] == [1, -1, 2, -3, 2]
    assert math.isclose(qmath.tfl_round(-0.49), 0)


def test_rounding_divide_by_pot_32_and_beyond():
    x = np.array([-(1 << 31), (1 << 31) - 1, -5, 5, 0])
    assert qmath.rounding_divide_by_pot(x, 32).tolist() == [-1, 0, 0, 0, 0]
    assert qmath.rounding_divide_by_pot(x, 40).tolist() == [0, 0, 0, 0, 0]
