"""Compression beyond int8, as one step of the compiler: low-rank factorization,
magnitude pruning and binarization of a lowered graph (before quantization).

    cfg = CompressConfig(prune=PruneConfig.parse(["0.5"]))
    g2, info = apply(lower(load("model.onnx")), cfg)

``apply`` runs, in this order, :func:`edgec.passes.lowrank.factorize`,
:func:`edgec.passes.prune.prune` and :func:`edgec.passes.binarize.binarize`,
then the default passes again; ``info`` says per technique what was done (it
goes into report.json's ``compression``) and counts the parameters before and
after.  Sparse *storage* of the weights is the backend's choice
(:mod:`edgec.backends.sparse`), not a graph transformation: it changes bytes,
not values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import Graph
from .binarize import BinarizeConfig
from .lowrank import LowRankConfig
from .prune import PruneConfig


@dataclass
class CompressConfig:
    low_rank: LowRankConfig | None = None
    prune: PruneConfig | None = None
    binarize: BinarizeConfig | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.low_rank, self.prune, self.binarize))

    def to_json(self) -> dict:
        d = {}
        if self.low_rank is not None:
            d["low_rank"] = self.low_rank.to_json()
        if self.prune is not None:
            d["prune"] = self.prune.to_json()
        if self.binarize is not None:
            d["binarize"] = self.binarize.to_json()
        return d


def parameters(g: Graph) -> dict:
    """Weights of the model's layers: elements, non-zero ones, and the bits they take as
    stored in the graph (binary weights 1 bit, int8 8, float 32; before sparse storage;
    biases and other constants counted apart in ``constants``)."""
    weights = bits = other = nonzero = 0
    for n in g.nodes:
        if n.op in ("Conv", "FullyConnected", "BinaryConv", "BinaryFullyConnected", "MatMul"):
            for i in n.inputs[1:2]:
                t = g.tensors.get(i)
                if t is None or not t.is_const:
                    continue
                if n.op.startswith("Binary"):
                    C = int(n.attrs["channels_in"])
                    cnt = t.size // t.shape[-1] * C
                    weights += cnt
                    bits += cnt
                    nonzero += cnt
                else:
                    weights += t.size
                    bits += t.size * 8 * t.data.dtype.itemsize
                    zero = int(t.quant.zero_point[0]) if t.quant is not None and t.dtype != "float32" else 0
                    nonzero += int(np.count_nonzero(t.data != zero))
    for name, t in g.tensors.items():
        if t.is_const:
            other += t.size
    return {"weights": int(weights), "nonzero_weights": int(nonzero), "weight_bits": int(bits),
            "constants": int(other)}


def apply(g: Graph, cfg: CompressConfig) -> tuple[Graph, dict]:
    from .. import passes
    from . import binarize, lowrank, prune
    info: dict = {"parameters_before": parameters(g)}
    if cfg.low_rank is not None:
        g, info["low_rank"] = lowrank.factorize(g, cfg.low_rank)
    if cfg.prune is not None:
        g, info["prune"] = prune.prune(g, cfg.prune)
    if cfg.binarize is not None:
        g, info["binarize"] = binarize.binarize(g, cfg.binarize)
    g = passes.optimize(g)
    info["parameters_after"] = parameters(g)
    b, a = info["parameters_before"], info["parameters_after"]
    info["weights_cut"] = round(1.0 - a["weights"] / b["weights"], 4) if b["weights"] else 0.0
    info["weight_bits_cut"] = round(1.0 - a["weight_bits"] / b["weight_bits"], 4) if b["weight_bits"] else 0.0
    return g, info


def zeros_fraction(g: Graph) -> float:
    tot = z = 0
    for n in g.nodes:
        if n.op in ("Conv", "FullyConnected") and len(n.inputs) > 1 and g.tensors[n.inputs[1]].is_const:
            t = g.tensors[n.inputs[1]]
            zero = 0 if t.quant is None else int(t.quant.zero_point[0])
            tot += t.size
            z += int(np.count_nonzero(t.data == zero))
    return z / tot if tot else 0.0
