"""The arena planner as a unit: buffers with lifetimes in, offsets out."""
import random

import pytest

from edgec import memory
from edgec.memory import Buffer


def test_chain_reaches_lower_bound():
    sizes = [100, 300, 50, 300, 20, 200]
    bufs = [Buffer(i, s, i, i + 1) for i, s in enumerate(sizes)]
    p = memory.plan(bufs, alignment=1)
    memory.check_plan(bufs, p.offsets)
    assert p.lower_bound == max(a + b for a, b in zip(sizes, sizes[1:]))
    assert p.size == p.lower_bound


def test_disjoint_lifetimes_share_memory():
    bufs = [Buffer("a", 64, 0, 0), Buffer("b", 64, 1, 1), Buffer("c", 64, 2, 2)]
    p = memory.plan(bufs, alignment=16)
    assert p.size == 64
    assert len(set(p.offsets.values())) == 1


def test_overlapping_lifetimes_never_share():
    bufs = [Buffer("a", 10, 0, 5), Buffer("b", 10, 2, 3), Buffer("c", 10, 3, 9)]
    p = memory.plan(bufs, alignment=4)
    memory.check_plan(bufs, p.offsets)
    assert p.size >= p.lower_bound == 30


def test_alignment_respected():
    bufs = [Buffer(i, 3 + i, i, i + 2) for i in range(8)]
    p = memory.plan(bufs, alignment=16)
    assert all(o % 16 == 0 for o in p.offsets.values())


@pytest.mark.parametrize("seed", range(30))
def test_random_graphs_are_valid_and_near_bound(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    bufs = []
    for i in range(n):
        a = rng.randint(0, 30)
        bufs.append(Buffer(i, rng.randint(1, 5000), a, a + rng.randint(0, 6)))
    p = memory.plan(bufs, alignment=1)
    memory.check_plan(bufs, p.offsets)
    lb = memory.lower_bound(bufs)
    assert p.lower_bound == lb
    assert lb <= p.size
    # greedy plans on random interval graphs stay within 1.5x of the bound
    assert p.size <= 1.5 * lb


def test_check_plan_detects_overlap():
    bufs = [Buffer("a", 10, 0, 1), Buffer("b", 10, 1, 2)]
    with pytest.raises(AssertionError):
        memory.check_plan(bufs, {"a": 0, "b": 5})


def test_empty():
    p = memory.plan([])
    assert p.size == 0 and p.lower_bound == 0
