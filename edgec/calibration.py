"""Calibration for post-training quantization: data in, value ranges out.

* :func:`read_dataset` reads ``.npz`` files (one array per model input, optionally
  labels or reference outputs) and directories of ``.npy`` files, and checks
  every array against the model's inputs (shape and dtype) with one clear line
  when they do not fit.
* :func:`collect` runs the float graph with edgec's reference interpreter
  (:mod:`edgec.interp`) over the calibration samples and records, for every
  activation tensor, its exact min/max and a bounded random sample of its values.
* :func:`choose_range` turns those statistics into a real range ``[lo, hi]``
  with one of :data:`METHODS`: ``minmax`` (what the TFLite converter does),
  ``percentile`` (clip the tails), ``mse`` (the clipping range that minimizes the
  int8 quantization error on the recorded values) or ``entropy`` (the KL-divergence
  threshold of TensorRT's calibrator, per sign).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import dtypes
from .errors import EdgecError
from .graph import Graph

METHODS = ("minmax", "percentile", "mse", "entropy")
# Values kept per tensor for the histogram-based methods (over all samples).
POOL_SIZE = 1 << 18
DEFAULT_PERCENTILE = 99.99
LABEL_KEYS = ("y", "labels", "label", "targets")
OUTPUT_KEYS = ("outputs", "y_ref", "reference")
RANDOM_SAMPLES = 32


@dataclass
class Dataset:
    """Samples (list of per-input arrays, float graph's input order) and,
    for evaluation, labels (N,) or reference outputs (list per output, [N, ...])."""

    samples: list
    source: str
    labels: np.ndarray | None = None
    ref_outputs: list | None = None
    notes: list = field(default_factory=list)

    def __len__(self):
        return len(self.samples)


def _squeezed(shape) -> list[int]:
    return [int(d) for d in shape if d != 1]


def fit_array(a: np.ndarray, shape: tuple, dtype: str, what: str, key: str,
              input_name: str) -> np.ndarray:
    """A batch [N, *shape] from ``a`` (which may also be one sample, or a batch
    whose per-sample shape differs only by dimensions of size 1)."""
    a = np.asarray(a)
    shown = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    want = f"[N, {', '.join(str(d) for d in shown)}]"
    if a.dtype.kind not in "fiub":
        raise EdgecError(f"{what}: array {key!r} has dtype {a.dtype}; input {input_name!r} is {dtype}")
    if dtypes.is_float(dtype) and a.dtype.kind != "f":
        raise EdgecError(f"{what}: array {key!r} has dtype {a.dtype} but input {input_name!r} is "
                         f"{dtype} (convert it with .astype(numpy.float32))")
    if not dtypes.is_float(dtype) and a.dtype.kind == "f":
        raise EdgecError(f"{what}: array {key!r} has dtype {a.dtype} but input {input_name!r} is {dtype}")
    if tuple(a.shape) == tuple(shape):
        batch = a[None]
    elif a.ndim >= 1 and a.shape[0] > 0 and _squeezed(a.shape[1:]) == _squeezed(shape):
        batch = a.reshape((a.shape[0],) + tuple(shape))
    else:
        raise EdgecError(f"{what}: array {key!r} has shape {list(a.shape)}, which does not fit "
                         f"input {input_name!r} of shape {list(shape)} (expected {want})")
    if batch.dtype.kind == "f" and not np.all(np.isfinite(batch)):
        raise EdgecError(f"{what}: array {key!r} contains NaN or infinite values")
    return batch.astype(dtypes.np_dtype(dtype), copy=False)


def _input_names(g: Graph, i: int, name: str) -> list[str]:
    t = g.tensors[name]
    keys = [name]
    if t.origin is not None and str(t.origin) != name:
        keys.append(str(t.origin))
    keys += [f"input{i}", f"input_{i}", f"arr_{i}"]
    if len(g.inputs) == 1:
        keys += ["x", "inputs", "input", "data", "images"]
    return keys


def read_dataset(g: Graph, path, what: str = "calibration", max_samples: int | None = None,
                 with_targets: bool = False) -> Dataset:
    """Read ``path`` (.npz, or a directory of .npy files) against ``g``'s inputs."""
    p = Path(path)
    if not p.exists():
        raise EdgecError(f"{what} data: no such file or directory", str(p))
    arrays: dict[str, np.ndarray] = {}
    if p.is_dir():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise EdgecError(f"{what} data: the directory holds no .npy files", str(p))
        if len(g.inputs) != 1:
            raise EdgecError(f"{what} data: a directory of .npy files works for single-input models; "
                             f"this model has {len(g.inputs)} inputs (use an .npz with one array each)",
                             str(p))
        name = g.inputs[0]
        t = g.tensors[name]
        parts = []
        for f in files:
            try:
                a = np.load(f, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise EdgecError(f"{what} data: cannot read {f.name}: {e}", str(p)) from None
            parts.append(fit_array(a, t.shape, t.dtype, what, f.name, name))
        batches = [np.concatenate(parts)]
    else:
        try:
            data = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise EdgecError(f"{what} data: cannot read ({str(e).splitlines()[0][:120]})", str(p)) from None
        if not hasattr(data, "keys"):
            data = {"arr_0": data}  # a plain .npy file
        arrays = {k: data[k] for k in data.keys()}
        target_keys = set(LABEL_KEYS + OUTPUT_KEYS) | {k for k in arrays if k.startswith("output")}
        batches = []
        for i, name in enumerate(g.inputs):
            t = g.tensors[name]
            key = next((k for k in _input_names(g, i, name) if k in arrays), None)
            if key is None:
                rest = [k for k in arrays if k not in target_keys]
                if len(g.inputs) == 1 and len(rest) == 1:
                    key = rest[0]
                else:
                    raise EdgecError(f"{what} data: no array for input {name!r} (arrays: "
                                     f"{', '.join(sorted(arrays)) or 'none'}; name them after the "
                                     "inputs, or 'x' for a single-input model)", str(p))
            batches.append(fit_array(arrays[key], t.shape, t.dtype, what, key, name))
    n = batches[0].shape[0]
    if any(b.shape[0] != n for b in batches):
        raise EdgecError(f"{what} data: the inputs have different numbers of samples "
                         f"({', '.join(str(b.shape[0]) for b in batches)})", str(p))
    if n == 0:
        raise EdgecError(f"{what} data: no samples", str(p))
    ds = Dataset([], str(p))
    if with_targets and arrays:
        lk = next((k for k in LABEL_KEYS if k in arrays), None)
        if lk is not None:
            lab = np.asarray(arrays[lk])
            if lab.ndim == 2 and lab.shape[1] > 1 and lab.dtype.kind == "f":
                lab = lab.argmax(axis=1)  # one-hot
            lab = lab.reshape(-1)
            if lab.shape[0] != n or lab.dtype.kind not in "iu":
                raise EdgecError(f"{what} data: labels {lk!r} must be {n} integers "
                                 f"(got shape {list(np.shape(arrays[lk]))}, dtype {lab.dtype})", str(p))
            ds.labels = lab.astype(np.int64)
        outs = []
        for j, name in enumerate(g.outputs):
            t = g.tensors[name]
            keys = [f"output{j}", f"output_{j}"] + (list(OUTPUT_KEYS) if len(g.outputs) == 1 else [])
            k = next((k for k in keys if k in arrays), None)
            if k is None:
                outs = None
                break
            outs.append(fit_array(arrays[k], t.shape, "float32" if arrays[k].dtype.kind == "f"
                                  else t.dtype, what, k, name).astype(np.float32))
            if outs[-1].shape[0] != n:
                raise EdgecError(f"{what} data: {k!r} has {outs[-1].shape[0]} samples, inputs {n}", str(p))
        ds.ref_outputs = outs or None
    if max_samples is not None and n > max_samples:
        ds.notes.append(f"used the first {max_samples} of {n} samples")
        n = max_samples
    ds.samples = [[b[i] for b in batches] for i in range(n)]
    if ds.labels is not None:
        ds.labels = ds.labels[:n]
    if ds.ref_outputs is not None:
        ds.ref_outputs = [o[:n] for o in ds.ref_outputs]
    return ds


def random_dataset(g: Graph, n: int = RANDOM_SAMPLES, seed: int = 0) -> Dataset:
    """Uniform random inputs in [-1, 1]: no calibration at all, only for trying things."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        s = []
        for name in g.inputs:
            t = g.tensors[name]
            if not dtypes.is_float(t.dtype):
                raise EdgecError(f"--calibration random: input {name!r} is {t.dtype}, not float")
            s.append(rng.uniform(-1.0, 1.0, t.shape).astype(dtypes.np_dtype(t.dtype)))
        samples.append(s)
    return Dataset(samples, "random", notes=[
        f"RANDOM calibration: {n} samples uniform in [-1, 1]; the ranges say nothing about real data"])


def get_dataset(g: Graph, source, what: str = "calibration", max_samples: int | None = None,
                seed: int = 0) -> Dataset:
    """``source``: a path, ``"random"``, a :class:`Dataset`, or arrays (one batch per input)."""
    if isinstance(source, Dataset):
        return source
    if source is None:
        raise EdgecError(
            "full-integer quantization needs calibration data: pass --calibration data.npz "
            "(or a directory of .npy files) with typical inputs, ~100-500 samples; "
            "--calibration random quantizes with random inputs, which is not a calibration")
    if isinstance(source, str) and source == "random":
        return random_dataset(g, min(max_samples or RANDOM_SAMPLES, RANDOM_SAMPLES), seed)
    if isinstance(source, (str, Path)):
        return read_dataset(g, source, what, max_samples)
    arrs = source if isinstance(source, (list, tuple)) else [source]
    if len(arrs) != len(g.inputs):
        raise EdgecError(f"{what} data: {len(arrs)} arrays for {len(g.inputs)} inputs")
    batches = [fit_array(a, g.tensors[nm].shape, g.tensors[nm].dtype, what, f"arr_{i}", nm)
               for i, (a, nm) in enumerate(zip(arrs, g.inputs))]
    n = batches[0].shape[0]
    if max_samples is not None:
        n = min(n, max_samples)
    return Dataset([[b[i] for b in batches] for i in range(n)], "arrays")


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
    from . import interp
    rng = np.random.default_rng(seed)
    per_sample = max(64, POOL_SIZE // max(len(samples), 1))
    stats: dict[str, TensorStats] = {}
    names = [nm for nm, t in g.tensors.items() if not t.is_const and t.dtype == "float32"]
    for s in samples:
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
