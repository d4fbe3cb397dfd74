"""Magnitude pruning (``--prune``): the smallest weights of Conv / FullyConnected
layers become exactly zero.

``--prune 0.5`` prunes every layer to 50% zeros (each layer ranks its own
weights); ``--prune global:0.5`` ranks all layers' weights together (one
threshold: layers with small weights lose more); ``--prune fc1=0.7`` prunes the
named layer (node name, output tensor or op type), and several specs combine.
Float weights rank by ``|w|``; int8 weights by ``|w - zero_point| * scale`` (per
channel), and a pruned int8 weight becomes the zero point.  Biases are kept.

The pruned graph is the reference of the compiled model: the backend stores
sparse layers compactly (``edgec.backends.sparse``) and its kernels are bit-exact
with it.  Pruning without retraining costs accuracy; ``--eval`` measures how much.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.errors import EdgecError
from ..ir.graph import Graph, Node


@dataclass
class PruneConfig:
    every: float | None = None              # each layer to this sparsity
    global_: float | None = None            # one magnitude threshold over all layers
    layers: dict = field(default_factory=dict)   # layer -> sparsity

    @classmethod
    def parse(cls, specs) -> "PruneConfig":
        cfg = cls()
        for spec in specs:
            for part in str(spec).split(","):
                part = part.strip()
                if not part:
                    continue
                if "=" in part:
                    name, v = part.rsplit("=", 1)
                    cfg.layers[name.strip()] = _fraction(v, part)
                elif part.startswith("global:"):
                    cfg.global_ = _fraction(part[len("global:"):], part)
                else:
                    cfg.every = _fraction(part, part)
        if cfg.every is not None and cfg.global_ is not None:
            raise EdgecError("--prune: give either a sparsity for every layer or global:S, not both")
        if cfg.every is None and cfg.global_ is None and not cfg.layers:
            raise EdgecError("--prune needs a sparsity, e.g. 0.5, global:0.5 or LAYER=0.7")
        return cfg

    def to_json(self) -> dict:
        d: dict = {}
        if self.every is not None:
            d["every_layer"] = self.every
        if self.global_ is not None:
            d["global"] = self.global_
        if self.layers:
            d["layers"] = dict(sorted(self.layers.items()))
        return d


def _fraction(v, spec) -> float:
    try:
        f = float(v)
    except ValueError:
        raise EdgecError(f"--prune {spec!r}: {v!r} is not a number") from None
    if not 0.0 <= f < 1.0:
        raise EdgecError(f"--prune {spec!r}: the sparsity must be in [0, 1)")
    return f


def prunable(g: Graph, n: Node) -> bool:
    if n.op not in ("Conv", "FullyConnected") or len(n.inputs) < 2:
        return False
    w = g.tensors[n.inputs[1]]
    if not w.is_const or w.dtype not in ("float32", "int8"):
        return False
    return w.dtype == "float32" or (w.quant is not None and np.unique(w.quant.zero_point).size == 1)


def _magnitude(w) -> np.ndarray:
    if w.dtype == "float32":
        return np.abs(w.data.astype(np.float64))
    q = w.quant
    shape = [1] * w.rank
    if q.axis is not None:
        shape[q.axis] = -1
    return np.abs(w.data.astype(np.float64) - q.zero_point.reshape(shape)) * \
        q.scale.astype(np.float64).reshape(shape)


def _zero(w):
    return 0 if w.dtype == "float32" else int(w.quant.zero_point[0])


def _match(n: Node, name: str) -> bool:
    return name in (n.name, *n.outputs) or n.op.lower() == name.lower()


def prune(g: Graph, cfg: PruneConfig) -> tuple[Graph, dict]:
    g = g.copy()
    g.fold_constants = False
    cands = [n for n in g.nodes if prunable(g, n)]
    if not cands:
        raise EdgecError("--prune: the model has no Conv or FullyConnected layer with constant weights")
    for name in cfg.layers:
        if not any(_match(n, name) for n in cands):
            raise EdgecError(f"--prune {name}=...: no such Conv/FullyConnected layer "
                             f"(layers: {', '.join(n.name for n in cands[:12])})")
    target: dict[int, float] = {}
    for n in cands:
        if cfg.every is not None:
            target[id(n)] = cfg.every
        for name, f in cfg.layers.items():
            if _match(n, name):
                target[id(n)] = f
    masks: dict[int, np.ndarray] = {}
    if cfg.global_ is not None:
        mags = [_magnitude(g.tensors[n.inputs[1]]).reshape(-1) for n in cands if id(n) not in target]
        pool = [n for n in cands if id(n) not in target]
        if mags:
            allm = np.concatenate(mags)
            k = int(np.floor(cfg.global_ * allm.size))
            drop = np.zeros(allm.size, bool)
            if k:
                drop[np.argsort(allm, kind="stable")[:k]] = True
            pos = 0
            for n, m in zip(pool, mags):
                masks[id(n)] = drop[pos:pos + m.size].reshape(g.tensors[n.inputs[1]].shape)
                pos += m.size
    for n in cands:
        if id(n) in target:
            m = _magnitude(g.tensors[n.inputs[1]]).reshape(-1)
            k = int(np.floor(target[id(n)] * m.size))
            drop = np.zeros(m.size, bool)
            if k:
                drop[np.argsort(m, kind="stable")[:k]] = True
            masks[id(n)] = drop.reshape(g.tensors[n.inputs[1]].shape)
    layers = []
    total = zeros = 0
    for n in cands:
        w = g.tensors[n.inputs[1]]
        z = _zero(w)
        before = int(np.count_nonzero(w.data == z))
        if id(n) in masks:
            data = np.where(masks[id(n)], np.asarray(z, w.data.dtype), w.data)
            n.inputs[1] = g.add_const(data, n.inputs[1] + "_pruned", quant=w.quant,
                                      dtype=w.dtype)
            g.tensors[n.inputs[1]].origin = w.origin
            after = int(np.count_nonzero(data == z))
            layers.append({"name": n.name, "op": n.op, "weights": int(w.size), "zeros_before": before,
                           "zeros": after, "sparsity": round(after / w.size, 4)})
        else:
            after = before
        total += w.size
        zeros += after
    g.remove_dead()
    g.validate()
    how = (f"global:{cfg.global_}" if cfg.global_ is not None else
           f"{cfg.every} per layer" if cfg.every is not None else "")
    extra = ", ".join(f"{k}={v}" for k, v in sorted(cfg.layers.items()))
    desc = (f"prune (magnitude, {'; '.join(x for x in (how, extra) if x)}: {len(layers)} layers, "
            f"{zeros:,} of {total:,} weights zero ({100.0 * zeros / max(total, 1):.1f}%))")
    g.meta.transforms = [*g.meta.transforms, desc]
    info = {"layers": layers, "weights": int(total), "zeros": int(zeros),
            "sparsity": round(zeros / max(total, 1), 4)}
    return g, info
