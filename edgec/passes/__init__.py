"""Graph -> Graph transformations.  Each pass is a plain function in its own
module; :func:`optimize` runs the default pipeline.  Every pass keeps the
graph's semantics (bit for bit for integer graphs) and records itself in
``g.meta['passes']``."""
from __future__ import annotations

from ..graph import Graph
from . import fuse


def optimize(g: Graph, options: dict | None = None) -> Graph:
    g = g.copy()
    g.meta.setdefault("passes", [])
    for p in (fuse.fold_batchnorm, fuse.fuse_bias_add, fuse.fuse_activation):
        if p(g):
            g.meta["passes"].append(p.__name__)
    g.remove_dead()
    g.topo_sort()
    g.validate()
    return g
