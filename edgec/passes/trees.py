"""``--tree-features int8|int16``: integer features and thresholds for tree ensembles.

Every feature a tree ensemble reads gets an affine 8- or 16-bit grid, computed
per feature from its thresholds and, when calibration rows are given (the
training set, ``--tree-calibration``), their range: ``level(x) = clamp(floor((x
- lo) * inv + 0.5), 0, top)`` (NaN gets the level above ``top``).  Each
threshold becomes an integer ``k`` with "go left iff ``level(x) <= k``" (GTE/GT
nodes swap their children), chosen so that:

* without calibration data, the integer boundary is the grid boundary nearest
  to the threshold: a decision can change only for inputs within half a step
  (``1 / inv``) of a threshold of their feature;
* with calibration data, ``k`` is chosen inside the interval that keeps the
  decision of every calibration value of that feature (all rows, whether or not
  they reach the node).  When that interval exists for every node, the
  quantized ensemble takes exactly the float ensemble's path, hence gives the
  same outputs, on every calibration row: this exhaustive check is the proof,
  and edgec reports it (or the number of decisions it could not keep).

The tree kernel quantizes the used features of each row on entry, so the
model's inputs stay float; flash holds one byte (or two) per threshold instead
of four, plus ``lo``/``inv`` per used feature.
"""
from __future__ import annotations

import numpy as np

from .. import data
from ..ir.errors import EdgecError
from ..ir.graph import Graph
from ..ops import trees as T


def _levels(x: np.ndarray, lo: np.float32, inv: np.float32, top: int) -> np.ndarray:
    return data.feature_levels(np.asarray(x).reshape(-1), lo, inv, int(np.log2(top + 2)))


# Grid candidates tried per feature when calibration data is given: step scale
# (1 + eps) and offset (fraction of a step), the first one being the plain grid.
GRID_EPS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05)
GRID_OFFSETS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)


def _grid(th: np.ndarray, vals: np.ndarray, top: int, tdt, f: int):
    """(lo, inv) of one feature's grid: spans its thresholds with one step of margin on
    each side (values beyond the extreme thresholds clamp to the end levels, which keeps
    their decisions).  With calibration values, among a few slightly coarser or shifted
    grids, the one where the fewest thresholds share a grid cell with calibration values
    on both of their sides."""
    if th.size == 0:
        lo0, hi0 = 0.0, 1.0
    else:
        lo0, hi0 = float(th.min()), float(th.max())
    span = hi0 - lo0
    base = span / (top - 2) if span > 0 else max(abs(lo0), 1.0) * 2.0 ** -10

    def make(eps, off):
        step = base * (1 + eps)
        lo = np.float32(lo0 - step * (1 + off))
        inv = np.float32(1.0 / step)
        return lo, inv

    best = make(0.0, 0.0)
    if vals.size and th.size:
        uv = np.unique(vals)
        tt = np.unique(th)
        # the calibration values just below/at and just above each threshold
        ia = np.searchsorted(uv, tt.astype(tdt).astype(np.float64), side="right") - 1
        has_pair = (ia >= 0) & (ia + 1 < len(uv))
        a = uv[ia[has_pair]]
        b = uv[ia[has_pair] + 1]
        if a.size:
            tp = tt[has_pair]
            best_key = None
            for eps in GRID_EPS:
                for off in GRID_OFFSETS:
                    if off > (top - 2) * eps / (1 + eps) + 1e-12 and off > 0:
                        continue     # the shifted grid would not reach the top threshold
                    lo, inv = make(eps, off)
                    la = _levels(a, lo, inv, top)
                    lb = _levels(b, lo, inv, top)
                    conf = int(np.count_nonzero(la == lb))
                    # where the integer boundaries land: as near the thresholds as allowed
                    pos = (tp - float(lo)) * float(inv)
                    k = np.clip(np.floor(pos), la, np.maximum(la, lb - 1))
                    dist = float(np.abs(pos - (k + 0.5)).sum()) / float(inv)
                    key = (conf, dist)
                    if best_key is None or key < best_key:
                        best_key, best = key, (lo, inv)
    lo, inv = best
    if not np.isfinite(inv) or inv <= 0 or not np.isfinite(lo):
        raise EdgecError(f"feature {f}: cannot build an integer grid for its range")
    return lo, inv


def feature_quant(ens: T.Ensemble, bits: int, cal: np.ndarray | None = None,
                  grid: dict | None = None, direct: bool = False) -> T.FeatureQuant:
    """Grid and integer thresholds for ``ens`` (``cal``: calibration rows [R, F] of the
    ensemble's input, or None; ``grid``: {feature: (lo, inv)} shared with other
    ensembles; ``direct``: the input holds the levels, every feature keeps its index)."""
    if bits not in (8, 16):
        raise EdgecError("integer tree features are 8 or 16 bits")
    if np.any((ens.mode == T.EQ) | (ens.mode == T.NEQ)):
        raise EdgecError("--tree-features: the ensemble has EQ/NEQ (categorical) splits, "
                         "which need the exact feature values; compile it with float features")
    top = (1 << bits) - 2
    if direct:
        used = np.arange(len(grid), dtype=np.int64)
    else:
        used = np.unique(ens.feature).astype(np.int64)
    U = len(used)
    col = {int(f): u for u, f in enumerate(used)}
    tdt = np.float32 if ens.tdtype == "float32" else np.float64
    lo = np.zeros(U, np.float32)
    inv = np.ones(U, np.float32)
    cal_cols = {}
    for u, f in enumerate(used.tolist()):
        th = ens.threshold[ens.feature == f]
        vals = np.zeros(0)
        if cal is not None:
            v = np.asarray(cal[:, f], np.float64)
            vals = v[np.isfinite(v)]
            cal_cols[u] = vals
        if grid is not None:
            lo[u], inv[u] = grid[f]
        else:
            lo[u], inv[u] = _grid(th[np.isfinite(th)], vals, top, tdt, f)
    NI = ens.n_internal
    feat = np.array([col[int(f)] for f in ens.feature], np.int64)
    qthr = np.zeros(NI, np.int64)
    swapped = (ens.mode == T.GTE) | (ens.mode == T.GT)
    nan_left = ens.missing ^ swapped
    flips_total = 0
    unkept = 0
    worst_steps = 0.0
    lev_cache: dict[int, np.ndarray] = {}
    for i in range(NI):
        u = int(feat[i])
        t = float(ens.threshold[i])
        le = int(ens.mode[i]) in (T.LEQ, T.GT)          # predicate "x <= t" (else "x < t")
        pos = (t - float(lo[u])) * float(inv[u])
        if not np.isfinite(pos):
            k0 = top if t > 0 else 0
        else:
            k0 = int(np.clip(np.floor(pos), 0, top))
        k = k0
        if u in cal_cols and cal_cols[u].size:
            vals = cal_cols[u]
            if u not in lev_cache:
                lev_cache[u] = _levels(vals, lo[u], inv[u], top)
            L = lev_cache[u]
            vt = vals.astype(tdt)
            P = vt <= tdt(t) if le else vt < tdt(t)
            kmin = int(L[P].max()) if P.any() else 0
            kmax = int(L[~P].min()) - 1 if (~P).any() else top
            if kmin <= kmax:
                k = int(np.clip(k0, kmin, kmax))
            else:
                best = None
                for cand in range(max(kmax, 0), min(kmin, top) + 1):
                    fl = int(np.count_nonzero(P & (L > cand)) + np.count_nonzero(~P & (L <= cand)))
                    if best is None or fl < best[0]:
                        best = (fl, cand)
                flips_total += best[0]
                unkept += 1
                k = best[1]
        qthr[i] = k
        if np.isfinite(pos):
            worst_steps = max(worst_steps, abs(pos - (k + 0.5)))
    fq = T.FeatureQuant(bits=bits, used=used, lo=lo, inv=inv, feature=feat, qthreshold=qthr,
                        swapped=swapped, nan_left=nan_left, direct=direct)
    stats = {"bits": bits, "used_features": int(len(np.unique(ens.feature))),
             "input": "integer levels" if direct else "float, quantized on entry",
             "max_threshold_shift_steps": round(worst_steps, 3)}
    if cal is not None:
        R = int(cal.shape[0])
        stats.update({"calibration_rows": R, "nodes": NI,
                      "nodes_with_changed_decisions": unkept,
                      "changed_decisions": flips_total})
        a = T.evaluate(ens, cal)
        b = T.evaluate(ens, data.feature_levels(cal, lo, inv, bits) if direct else cal, fq)
        if ens.kind == "classifier":
            stats["calibration_labels_changed"] = int(np.count_nonzero(a[0] != b[0]))
        stats["calibration_max_output_change"] = float(np.nanmax(np.abs(
            a[-1].astype(np.float64) - b[-1].astype(np.float64)), initial=0.0))
        stats["proof"] = ("every node keeps its decision for every calibration value: the integer "
                          "ensemble gives the float ensemble's outputs on all calibration rows"
                          if unkept == 0 else
                          f"{unkept} nodes change {flips_total} decisions on calibration values "
                          "(two calibration values on both sides of a threshold share a grid cell)")
    else:
        stats["proof"] = ("no calibration data: decisions can change only for inputs within half "
                          "a grid step of a threshold of their feature")
    fq.stats = stats
    return fq


def load_calibration(g: Graph, source) -> list[np.ndarray] | None:
    """Calibration rows [R, F] per input (:func:`edgec.data.load_rows`: arrays, an .npz
    as ``edgec verify --inputs`` takes, or a .csv of rows), or None."""
    if source is None:
        return None
    return data.load_rows(g, source, "tree calibration")


def _tree_input_values(g: Graph, node, cal_inputs: list[np.ndarray]) -> np.ndarray:
    """The ensemble's input for every calibration row (running the nodes before it)."""
    from .. import ops
    target = node.inputs[0]
    if target in g.inputs:
        return cal_inputs[g.inputs.index(target)]
    prod = g.producers()
    need, stack = [], [target]
    seen = set()
    while stack:
        tname = stack.pop()
        p = prod.get(tname)
        if p is None or id(p) in seen:
            continue
        seen.add(id(p))
        need.append(p)
        stack.extend(i for i in p.inputs if i)
    order = [n for n in g.nodes if id(n) in seen]
    R = cal_inputs[0].shape[0]
    # the graph runs on batches of its own input shape: rows in chunks, the last padded
    batch = max(int(np.prod(g.tensors[g.inputs[0]].shape[:-1])), 1)
    rows = []
    for r0 in range(0, R, batch):
        idx = np.minimum(np.arange(r0, r0 + batch), R - 1)
        env = {name: cal_inputs[j][idx].reshape(g.tensors[name].shape)
               for j, name in enumerate(g.inputs)}
        for name, t in g.tensors.items():
            if t.is_const:
                env[name] = t.data
        for n in order:
            ys = ops.get(n.op).reference(g, n, [env[i] if i else None for i in n.inputs])
            for o, y in zip(n.outputs, ys):
                if o:
                    env[o] = np.asarray(y).reshape(g.tensors[o].shape)
        v = env[target]
        v = v.reshape(-1, v.shape[-1])
        rows.append(v[:min(batch, R - r0)] if v.shape[0] == batch else v)
    return np.concatenate(rows)


def quantize_tree_features(g: Graph, dtype: str, calibration=None,
                           quantized_input: bool = False) -> bool:
    bits = {"int8": 8, "int16": 16, "uint8": 8, "uint16": 16}.get(str(dtype))
    if bits is None:
        raise EdgecError(f"--tree-features {dtype!r}: expected float, int8 or int16")
    nodes = [n for n in g.nodes if n.op == "TreeEnsemble"]
    if not nodes:
        return False
    top = (1 << bits) - 2
    cal = load_calibration(g, calibration)
    done = set()
    if quantized_input:
        cons = g.consumers()
        direct = [name for name in g.inputs
                  if cons.get(name) and all(u.op == "TreeEnsemble" for u in cons[name])
                  and g.tensors[name].dtype in ("float32", "float64", "int32", "int64")]
        if not direct:
            raise EdgecError("--quantized-input: no model input feeds only tree ensembles "
                             "(its integer levels would not mean anything to the other operators)")
        g.meta.input_encoding = dict(g.meta.input_encoding)
        for name in direct:
            users = cons[name]
            t = g.tensors[name]
            F = t.shape[-1]
            xcal = None if cal is None else cal[g.inputs.index(name)]
            tdt = np.float64 if any(u.attrs["ensemble"].tdtype == "float64" for u in users) \
                else np.float32
            grid = {}
            for f in range(F):
                th = np.concatenate([u.attrs["ensemble"].threshold[u.attrs["ensemble"].feature == f]
                                     for u in users])
                vals = np.zeros(0)
                if xcal is not None:
                    v = np.asarray(xcal[:, f], np.float64)
                    vals = v[np.isfinite(v)]
                grid[f] = _grid(th[np.isfinite(th)], vals, top, tdt, f)
            for u in users:
                u.attrs = dict(u.attrs)
                u.attrs["fq"] = feature_quant(u.attrs["ensemble"], bits, xcal, grid, direct=True)
                done.add(id(u))
            t.dtype = "uint8" if bits == 8 else "uint16"
            lo = [float(grid[f][0]) for f in range(F)]
            inv = [float(grid[f][1]) for f in range(F)]
            g.meta.input_encoding[name] = {"bits": bits, "top": top, "nan": top + 1,
                                              "lo": lo, "inv": inv}
    for n in nodes:
        if id(n) in done:
            continue
        if not n.attrs["ensemble"].n_internal:
            continue
        x = None if cal is None else _tree_input_values(g, n, cal)
        n.attrs = dict(n.attrs)
        n.attrs["fq"] = feature_quant(n.attrs["ensemble"], bits, x)
    for n in nodes:
        fq = n.attrs.get("fq")
        if fq is None:
            continue
        st = fq.stats
        g.meta.transforms = [*g.meta.transforms,
            f"tree ensemble '{n.name}': {bits}-bit features ({st['used_features']} features, "
            f"{st['input']}); " + st["proof"]]
    return True
