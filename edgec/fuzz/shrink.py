"""Shrinking a failing fuzz case to a small model that still fails the same way.

Greedy, on the model's own structure (ONNX ModelProto or edgec IR for int8):

1. keep a single graph output (the first one that still fails) and drop what it
   does not need;
2. for every node, last first: *skip* it (its consumers read its first input
   instead, when shape and type agree) or *cut* above it (its output becomes a
   new graph input fed with the values the reference computed there), then drop
   dead nodes, constants and inputs;
3. repeat until nothing changes.

A candidate is kept only when it still fails with the same status (a mismatch
stays a mismatch, an edgec error stays an edgec error) and the reference still
accepts it.
"""
from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np

from .runner import Case, Outcome, RefRunner, check_cases

MAX_STEPS = 200

_counter = itertools.count()


def shrink_case(o: Outcome, ref: RefRunner, work: Path, max_steps: int = MAX_STEPS) -> Case:
    status = o.status
    steps = [0]

    def fails(c: Case) -> bool:
        if steps[0] >= max_steps:
            return False
        steps[0] += 1
        try:
            res = check_cases([c], ref, work / f"s{next(_counter)}")[0]
        except Exception:  # noqa: BLE001 - a candidate the pipeline cannot even run
            return False
        return res.status == status

    shr = _OnnxShrinker(o.case, ref) if o.case.kind == "onnx" else _Int8Shrinker(o.case, ref)
    best = o.case
    # 1. one output
    for k in range(shr.n_outputs(best)):
        c = shr.keep_output(best, k)
        if c is not None and fails(c):
            best = c
            break
    # 2./3. remove nodes until a fixpoint
    changed = True
    while changed and steps[0] < max_steps:
        changed = False
        for idx in reversed(range(shr.n_nodes(best))):
            if idx >= shr.n_nodes(best):
                continue
            for how in ("skip", "cut"):
                c = shr.remove_node(best, idx, how)
                if c is not None and fails(c):
                    best = c
                    changed = True
                    break
    return best


# --- ONNX -----------------------------------------------------------------------------

class _OnnxShrinker:
    def __init__(self, case: Case, ref: RefRunner):
        self.ref = ref

    @staticmethod
    def _case(old: Case, m, samples) -> Case:
        c = Case(old.kind, old.seed, old.index, m.SerializeToString(), samples,
                 [n.op_type for n in m.graph.node], proto=m, variant=old.variant)
        return c

    def n_outputs(self, c: Case) -> int:
        return len(c.proto.graph.output)

    def n_nodes(self, c: Case) -> int:
        return len(c.proto.graph.node)

    def _clean(self, m, samples):
        """Drop dead nodes, unused initializers and inputs (and their sample arrays)."""
        g = m.graph
        need = {o.name for o in g.output}
        keep = []
        for n in reversed(list(g.node)):
            if any(o in need for o in n.output):
                keep.append(n)
                need.update(i for i in n.input if i)
        keep.reverse()
        del g.node[:]
        g.node.extend(keep)
        inits = [t for t in g.initializer if t.name in need]
        del g.initializer[:]
        g.initializer.extend(inits)
        idx = [k for k, vi in enumerate(g.input) if vi.name in need]
        if not idx:
            return None
        ins = [g.input[k] for k in idx]
        del g.input[:]
        g.input.extend(ins)
        return [[s[k] for k in idx] for s in samples]

    def keep_output(self, c: Case, k: int):
        m = copy.deepcopy(c.proto)
        out = m.graph.output[k]
        del m.graph.output[:]
        m.graph.output.append(out)
        samples = self._clean(m, c.samples)
        return None if samples is None else self._case(c, m, samples)

    def _shapes(self, m):
        import onnx
        from onnx import shape_inference
        inf = shape_inference.infer_shapes(m)
        out = {}
        for vi in list(inf.graph.value_info) + list(inf.graph.input) + list(inf.graph.output):
            tt = vi.type.tensor_type
            out[vi.name] = (tt.elem_type, tuple(d.dim_value for d in tt.shape.dim))
        del onnx
        return out

    def _values(self, c: Case, name: str):
        """The reference's values of tensor ``name`` for every sample."""
        from onnx import helper
        m = copy.deepcopy(c.proto)
        elem, shape = self._shapes(m)[name]
        del m.graph.output[:]
        m.graph.output.append(helper.make_tensor_value_info(name, elem, shape))
        tmp = Case(c.kind, c.seed, c.index, m.SerializeToString(), c.samples, variant=c.variant)
        return [s[0] for s in self.ref.run(tmp)], elem, shape

    def remove_node(self, c: Case, idx: int, how: str):
        from onnx import helper
        m = copy.deepcopy(c.proto)
        g = m.graph
        n = g.node[idx]
        if len(n.output) != 1:
            return None
        y = n.output[0]
        try:
            shapes = self._shapes(m)
        except Exception:  # noqa: BLE001
            return None
        if y not in shapes:
            return None
        samples = [list(s) for s in c.samples]
        if how == "skip":
            x = n.input[0] if n.input else ""
            if not x or shapes.get(x) != shapes[y]:
                return None
            new = x
        else:
            try:
                vals, elem, shape = self._values(c, y)
            except Exception:  # noqa: BLE001
                return None
            new = y + "_in"
            g.input.append(helper.make_tensor_value_info(new, elem, shape))
            for s, v in zip(samples, vals):
                s.append(np.asarray(v))
        del g.node[idx]
        for other in g.node:
            for k, i in enumerate(other.input):
                if i == y:
                    other.input[k] = new
        for o in g.output:
            if o.name == y:
                if how == "cut" or new in {vi.name for vi in g.input} or \
                        new in {t.name for t in g.initializer}:
                    return None  # the output would be a graph input: nothing left to compute
                o.name = new
        samples = self._clean(m, samples)
        if samples is None or not g.node:
            return None
        return self._case(c, m, samples)


# --- int8 (edgec IR, written as TFLite) -------------------------------------------------------

class _Int8Shrinker:
    def __init__(self, case: Case, ref: RefRunner):
        self.ref = ref

    def _case(self, old: Case, g, samples):
        from ..exporters import tflite as tw
        try:
            data = tw.to_bytes(g)
        except Exception:  # noqa: BLE001
            return None
        return Case(old.kind, old.seed, old.index, data, samples, [n.op for n in g.nodes], graph=g,
                    float_ranges=old.float_ranges, variant=old.variant)

    def n_outputs(self, c: Case) -> int:
        return len(c.graph.outputs)

    def n_nodes(self, c: Case) -> int:
        return len(c.graph.nodes)

    @staticmethod
    def _clean(g, samples):
        old_inputs = list(g.inputs)
        g.remove_dead()
        read = {i for n in g.nodes for i in n.inputs} | set(g.outputs)
        idx = [k for k, name in enumerate(old_inputs) if name in read]
        g.inputs = [old_inputs[k] for k in idx]
        g.remove_dead()
        if not g.inputs or not g.nodes:
            return None
        return [[s[k] for k in idx] for s in samples]

    def keep_output(self, c: Case, k: int):
        g = c.graph.copy()
        g.outputs = [g.outputs[k]]
        samples = self._clean(g, c.samples)
        return None if samples is None else self._case(c, g, samples)

    def remove_node(self, c: Case, idx: int, how: str):
        g = c.graph.copy()
        n = g.nodes[idx]
        y = n.outputs[0]
        samples = [list(s) for s in c.samples]
        if how == "skip":
            x = n.inputs[0]
            tx, ty = g.tensors[x], g.tensors[y]
            if tx.shape != ty.shape or tx.dtype != ty.dtype or tx.is_const:
                return None
            g.nodes.pop(idx)
            if y in g.outputs:
                if x in g.inputs:
                    return None
            g.replace_uses(y, x)
        else:
            vals = self._values(c, y)
            if vals is None:
                return None
            g.nodes.pop(idx)
            g.inputs.append(y)
            for s, v in zip(samples, vals):
                s.append(v)
            if y in g.outputs:
                return None
        samples = self._clean(g, samples)
        if samples is None:
            return None
        try:
            g.validate()
        except Exception:  # noqa: BLE001
            return None
        return self._case(c, g, samples)

    def _values(self, c: Case, name: str):
        g = c.graph.copy()
        g.outputs = [name]
        g.remove_dead()
        tmp = self._case(c, g, c.samples)
        if tmp is None:
            return None
        old_inputs = list(c.graph.inputs)
        idx = [old_inputs.index(i) for i in g.inputs]
        tmp.samples = [[s[k] for k in idx] for s in c.samples]
        try:
            return [np.asarray(s[0]).reshape(g.tensors[name].shape) for s in self.ref.run(tmp)]
        except Exception:  # noqa: BLE001
            return None
