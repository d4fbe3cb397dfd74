"""Calibration for post-training quantization: data in, value ranges out.

* :func:`get_dataset` gets the calibration samples: a file read by :mod:`edgec.data`
  (every array checked against the model's inputs, one clear line when they do not
  fit), arrays, or ``random`` when asked for explicitly.
* :func:`collect` runs the float graph with edgec's reference interpreter
  (:mod:`edgec.ops.interp`) over the calibration samples and records, for every
  activation tensor, its exact min/max and a bounded random sample of its values.
* :func:`choose_range` turns those statistics into a real range ``[lo, hi]``
  with one of :data:`METHODS`: ``minmax`` (what the TFLite converter does),
  ``percentile`` (clip the tails), ``mse`` (the clipping range that minimizes the
  int8 quantization error on the recorded values) or ``entropy`` (the KL-divergence
  threshold of TensorRT's calibrator, per sign).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import data
from ..ir import dtypes, progress
from ..data import Dataset
from ..ir.errors import EdgecError
from ..ir.graph import Graph

METHODS = ("minmax", "percentile", "mse", "entropy")
# Values kept per tensor for the histogram-based methods (over all samples).
POOL_SIZE = 1 << 18
DEFAULT_PERCENTILE = 99.99
RANDOM_SAMPLES = 32


def random_dataset(g: Graph, n: int = RANDOM_SAMPLES, seed: int = 0) -> Dataset:
    """Uniform random inputs in [-1, 1]: no calibration at all, only for trying things."""
    for name in g.inputs:
        t = g.tensors[name]
        if not dtypes.is_float(t.dtype):
            raise EdgecError(f"--calibration random: input {name!r} is {t.dtype}, not float")
    return Dataset(data.random_samples(g, n, seed), "random", notes=[
        f"RANDOM calibration: {n} samples uniform in [-1, 1]; the ranges say nothing about real data"])


def get_dataset(g: Graph, source, what: str = "calibration", max_samples: int | None = None,
                seed: int = 0) -> Dataset:
    """``source``: a path, ``"random"``, a :class:`~edgec.data.Dataset`, or arrays (one
    batch per input); NaN and infinities are refused (they would make every range useless)."""
    if source is None:
        raise EdgecError(
            "full-integer quantization needs calibration data: pass --calibration data.npz "
            "(or a directory of .npy files) with typical inputs, ~100-500 samples; "
            "--calibration random quantizes with random inputs, which is not a calibration")
    if isinstance(source, str) and source == "random":
        return random_dataset(g, min(max_samples or RANDOM_SAMPLES, RANDOM_SAMPLES), seed)
    return data.load(g, source, what, max_samples=max_samples, allow_nan=False)


# --- statistics -------------------------------------------------------------

@dataclass
class TensorStats:
    lo: float = float("inf")
    hi: float = -float("inf")
    pool: list = field(default_factory=list)
    count: int = 0

    def values(self) -> np.ndarray:
        return np.concatenate(self.pool) if self.pool else np.zeros(0, np.float32)


def collect(g: Graph, samples, keep_values: bool = True, seed: int = 0) -> dict[str, TensorStats]:
    """Run the float graph over ``samples``; statistics of every float activation."""
    from ..ops import interp
    rng = np.random.default_rng(seed)
    per_sample = max(64, POOL_SIZE // max(len(samples), 1))
    stats: dict[str, TensorStats] = {}
    names = [nm for nm, t in g.tensors.items() if not t.is_const and t.dtype == "float32"]
    for s in progress.track(samples, "calibration"):
        env = interp.run(g, s, keep_all=True)
        for nm in names:
            v = env.get(nm)
            if v is None:
                continue
            v = np.asarray(v, np.float32).reshape(-1)
            if v.size == 0:
                continue
            st = stats.setdefault(nm, TensorStats())
            st.lo = min(st.lo, float(v.min()))
            st.hi = max(st.hi, float(v.max()))
            st.count += v.size
            if keep_values:
                if v.size > per_sample:
                    v = v[rng.choice(v.size, per_sample, replace=False)]
                st.pool.append(v.copy())
    return stats


# --- range selection --------------------------------------------------------

def _qerr(v: np.ndarray, lo: float, hi: float, levels: int = 256) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return float(np.mean(v.astype(np.float64) ** 2))
    scale = (hi - lo) / (levels - 1)
    zp = np.round(-lo / scale)
    q = np.clip(np.round(v / scale) + zp, 0, levels - 1)
    return float(np.mean((v - (q - zp) * scale) ** 2))


def _mse_range(v: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    if v.size == 0:
        return lo, hi
    if v.size > 1 << 15:
        v = v[np.random.default_rng(0).choice(v.size, 1 << 15, replace=False)]
    best = (_qerr(v, lo, hi), lo, hi)
    for a in np.linspace(0.1, 1.0, 46):
        # shrink both ends together, and each end alone
        for clo, chi in ((lo * a, hi * a), (lo, hi * a), (lo * a, hi)):
            e = _qerr(v, clo, chi)
            if e < best[0]:
                best = (e, clo, chi)
    return best[1], best[2]


def _kl_threshold(mag: np.ndarray, amax: float, bins: int = 2048, levels: int = 128) -> float:
    """TensorRT-style entropy calibration of one sign's magnitudes: the clipping
    threshold whose ``levels``-level quantized distribution is closest (KL) to the data's."""
    if mag.size < 16 or amax <= 0:
        return amax
    hist, edges = np.histogram(mag, bins=bins, range=(0.0, amax))
    hist = hist.astype(np.float64)
    best_kl, best_i = np.inf, bins
    for i in range(levels, bins + 1, 8):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()
        if p.sum() == 0:
            continue
        # merge the first i bins into `levels` bins, then expand back over non-empty bins
        idx = (np.arange(i) * levels) // i
        q_sum = np.bincount(idx, weights=hist[:i], minlength=levels)
        nonzero = (hist[:i] > 0).astype(np.float64)
        q_cnt = np.bincount(idx, weights=nonzero, minlength=levels)
        q = np.where(nonzero > 0, q_sum[idx] / np.maximum(q_cnt[idx], 1), 0.0)
        pn = p / p.sum()
        qs = q.sum()
        if qs == 0:
            continue
        qn = q / qs
        mask = pn > 0
        kl = float(np.sum(pn[mask] * np.log(pn[mask] / np.maximum(qn[mask], 1e-12))))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(edges[best_i]) if best_i < len(edges) else amax


def choose_range(st: TensorStats, method: str = "minmax",
                 percentile: float = DEFAULT_PERCENTILE) -> tuple[float, float]:
    lo, hi = st.lo, st.hi
    if not np.isfinite(lo) or not np.isfinite(hi):
        return 0.0, 0.0
    if method == "minmax":
        return lo, hi
    v = st.values()
    if v.size == 0:
        return lo, hi
    if method == "percentile":
        p_hi = float(np.percentile(v, percentile)) if hi > 0 else hi
        p_lo = float(np.percentile(v, 100.0 - percentile)) if lo < 0 else lo
        return min(p_lo, 0.0) if lo < 0 else lo, max(p_hi, 0.0) if hi > 0 else hi
    if method == "mse":
        return _mse_range(v, lo, hi)
    if method == "entropy":
        # one-sided tensors (after ReLU) get all 256 levels, two-sided ones about half each
        levels = 128 if lo < 0 < hi else 256
        nhi = _kl_threshold(v[v > 0], hi, levels=levels) if hi > 0 else hi
        nlo = -_kl_threshold(-v[v < 0], -lo, levels=levels) if lo < 0 else lo
        return nlo, nhi
    raise EdgecError(f"unknown calibration method {method!r} (one of: {', '.join(METHODS)})")
