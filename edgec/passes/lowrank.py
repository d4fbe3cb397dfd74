"""Low-rank factorization (``--low-rank``): a FullyConnected (ONNX Gemm / MatMul with
constant weights, TFLite FULLY_CONNECTED) or 1x1 Conv with weights ``W`` [N, K]
becomes two thinner layers, ``W ~ B @ A`` with ``A`` [r, K] and ``B`` [N, r]
from the truncated SVD ``W = U S V^T`` (``A = sqrt(S_r) V_r^T``,
``B = U_r sqrt(S_r)``, balanced so both quantize alike).  The first layer keeps
the strides and padding, the second the bias and activation.

``--low-rank 0.9`` keeps, per layer, the smallest rank whose singular values
hold 90% of the energy (sum of squares); ``--low-rank rank:16`` a fixed rank;
``--low-rank fc1=8`` / ``fc1=0.8`` one layer.  A layer is factorized only where
``r * (N + K) < N * K`` (fewer parameters).  Float layers only; quantize after
(``--quantize int8``) for an int8 bundle.  The factorized graph is the reference
of the compiled model; ``--eval`` reports what the approximation costs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.errors import EdgecError
from ..ir.graph import Graph, Node


@dataclass
class LowRankConfig:
    energy: float | None = None
    rank: int | None = None
    layers: dict = field(default_factory=dict)   # layer -> energy (float < 1) or rank (int)

    @classmethod
    def parse(cls, specs) -> "LowRankConfig":
        cfg = cls()
        for spec in specs:
            for part in str(spec).split(","):
                part = part.strip()
                if not part:
                    continue
                if "=" in part:
                    name, v = part.rsplit("=", 1)
                    cfg.layers[name.strip()] = _value(v, part)
                elif part.startswith("rank:"):
                    r = _value(part[len("rank:"):], part)
                    if not isinstance(r, int):
                        raise EdgecError(f"--low-rank {part!r}: a rank is a whole number")
                    cfg.rank = r
                else:
                    e = _value(part, part)
                    if isinstance(e, int) and e != 1:
                        raise EdgecError(f"--low-rank {part!r}: give the energy kept (0 < E <= 1), "
                                         "rank:R, or LAYER=R")
                    cfg.energy = float(e)
        if cfg.energy is not None and cfg.rank is not None:
            raise EdgecError("--low-rank: give either an energy or rank:R for every layer, not both")
        if cfg.energy is None and cfg.rank is None and not cfg.layers:
            raise EdgecError("--low-rank needs the energy kept (e.g. 0.9), rank:R or LAYER=R")
        return cfg

    def to_json(self) -> dict:
        d: dict = {}
        if self.energy is not None:
            d["energy"] = self.energy
        if self.rank is not None:
            d["rank"] = self.rank
        if self.layers:
            d["layers"] = dict(sorted(self.layers.items()))
        return d


def _value(v, spec):
    v = str(v).strip()
    try:
        if v.isdigit():
            r = int(v)
            if r < 1:
                raise ValueError
            return r
        f = float(v)
    except ValueError:
        raise EdgecError(f"--low-rank {spec!r}: {v!r} is not an energy (0 < E <= 1) or a rank") from None
    if not 0.0 < f <= 1.0:
        raise EdgecError(f"--low-rank {spec!r}: the energy kept must be in (0, 1]")
    return f


def _weights_2d(g: Graph, n: Node) -> np.ndarray | None:
    """[N, K] weights of a float FullyConnected or 1x1 ungrouped Conv, else None."""
    if len(n.inputs) < 2:
        return None
    w = g.tensors[n.inputs[1]]
    x = g.tensors[n.inputs[0]]
    if not w.is_const or w.dtype != "float32" or x.dtype != "float32":
        return None
    if n.input(2) and not g.tensors[n.inputs[2]].is_const:
        return None
    if n.op == "FullyConnected":
        return w.data.astype(np.float64)
    if n.op == "Conv" and n.attrs["group"] == 1:
        if n.attrs["layout"] == "NCHW" and w.shape[2:] == (1, 1):
            return w.data.reshape(w.shape[0], w.shape[1]).astype(np.float64)
        if n.attrs["layout"] == "NHWC" and w.shape[1:3] == (1, 1):
            return w.data.reshape(w.shape[0], w.shape[3]).astype(np.float64)
    return None


def _match(n: Node, name: str) -> bool:
    return name in (n.name, *n.outputs) or n.op.lower() == name.lower()


def choose_rank(s: np.ndarray, spec) -> tuple[int, float]:
    """Rank for singular values ``s`` under ``spec`` (energy float or rank int), and the energy kept."""
    e = s.astype(np.float64) ** 2
    total = float(e.sum()) or 1.0
    cum = np.cumsum(e) / total
    if isinstance(spec, int):
        r = max(1, min(spec, s.size))
    else:
        r = int(np.searchsorted(cum, spec - 1e-12) + 1)
        r = max(1, min(r, s.size))
    return r, float(cum[r - 1])


def factorize(g: Graph, cfg: LowRankConfig) -> tuple[Graph, dict]:
    g = g.copy()
    g.fold_constants = False
    cands = [n for n in g.nodes if n.op in ("FullyConnected", "Conv") and _weights_2d(g, n) is not None]
    for name in cfg.layers:
        if not any(_match(n, name) for n in cands):
            raise EdgecError(f"--low-rank {name}=...: no float FullyConnected or 1x1 Conv layer of that name "
                             f"(layers: {', '.join(n.name for n in cands[:12])})")
    if not cands:
        raise EdgecError("--low-rank: the model has no float FullyConnected or 1x1 Conv layer "
                         "(int8 models: factorize the float model, then --quantize int8)")
    layers, skipped = [], []
    before = after = 0
    for n in cands:
        spec = cfg.rank if cfg.rank is not None else cfg.energy
        for name, v in cfg.layers.items():
            if _match(n, name):
                spec = v
        W = _weights_2d(g, n)
        N, K = W.shape
        before += N * K
        if spec is None:
            after += N * K
            continue
        U, s, Vt = np.linalg.svd(W, full_matrices=False)
        r, kept = choose_rank(s, spec)
        if r * (N + K) >= N * K:
            after += N * K
            skipped.append({"name": n.name, "rank": r, "reason": f"rank {r} saves nothing for {N}x{K}"})
            continue
        root = np.sqrt(s[:r])
        A = (root[:, None] * Vt[:r]).astype(np.float32)          # [r, K]
        B = (U[:, :r] * root[None, :]).astype(np.float32)        # [N, r]
        _split(g, n, A, B)
        after += r * (N + K)
        layers.append({"name": n.name, "op": n.op, "shape": [N, K], "rank": r,
                       "energy_kept": round(kept, 6), "weights_before": N * K,
                       "weights_after": r * (N + K)})
    g.topo_sort()
    g.remove_dead()
    g.validate()
    how = (f"rank {cfg.rank}" if cfg.rank is not None else
           f"{cfg.energy:g} of the energy" if cfg.energy is not None else "")
    extra = ", ".join(f"{k}={v}" for k, v in sorted(cfg.layers.items()))
    desc = (f"low_rank (SVD, {'; '.join(x for x in (how, extra) if x)}: {len(layers)} layers factorized, "
            f"{before:,} -> {after:,} weights in those layers' candidates "
            f"({100.0 * (1 - after / max(before, 1)):.1f}% fewer))")
    g.meta.transforms = [*g.meta.transforms, desc]
    return g, {"layers": layers, "skipped": skipped, "weights_before": int(before),
               "weights_after": int(after)}


def _split(g: Graph, n: Node, A: np.ndarray, B: np.ndarray) -> None:
    from .. import ops
    r = A.shape[0]
    x, y = n.inputs[0], n.outputs[0]
    mid = g.unique_name(y + "_lowrank")
    first, second = dict(n.attrs), dict(n.attrs)
    first["act"] = None
    if n.op == "FullyConnected":
        wa, wb = A, B
    else:
        nchw = n.attrs["layout"] == "NCHW"
        wa = A.reshape(r, A.shape[1], 1, 1) if nchw else A.reshape(r, 1, 1, A.shape[1])
        wb = B.reshape(B.shape[0], r, 1, 1) if nchw else B.reshape(B.shape[0], 1, 1, r)
        second.update(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
    a_name = g.add_const(wa, n.inputs[1] + "_u")
    b_name = g.add_const(wb, n.inputs[1] + "_v")
    n1 = Node(n.op, [x, a_name], [mid], first, n.name + "_a")
    n2 = Node(n.op, [mid, b_name] + ([n.inputs[2]] if n.input(2) else []), [y], second, n.name + "_b")
    if n.op == "FullyConnected" and not n.attrs.get("keep_dims"):
        n2.attrs["keep_dims"] = False
    ops.infer_node(g, n1)
    ops.infer_node(g, n2)
    i = g.nodes.index(n)
    g.nodes[i:i + 1] = [n1, n2]
