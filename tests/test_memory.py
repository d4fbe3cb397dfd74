"""The arena planner as a unit: buffers with lifetimes in, offsets out."""
import random

import pytest

from edgec.backends import memory
from edgec.backends.memory import Buffer


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


def _random_buffers(rng, n, span=40, life=8):
    bufs = []
    for i in range(n):
        a = rng.randint(0, span)
        bufs.append(Buffer(i, rng.choice([0, 16, 32, rng.randint(1, 5000)]), a, a + rng.randint(0, life)))
    return bufs


@pytest.mark.parametrize("seed", range(40))
def test_sweep_is_the_first_fit_order_of_the_search(seed):
    """The near-linear placement of huge graphs gives exactly the search's
    earliest-first / first-fit placement (empty buffers included) when it may look
    at every gap, and a valid plan when it looks at only a few."""
    rng = random.Random(seed)
    bufs = _random_buffers(rng, rng.randint(0, 60))
    base = sorted(bufs, key=lambda b: (b.first, b.last, str(b.key)))
    for alignment in (1, 4, 16):
        full = memory._sweep(base, alignment, gaps=None)
        assert full == memory._place(sorted(base, key=memory._ORDERS["first"]), alignment, "first")
        offsets, size = memory._sweep(base, alignment, gaps=2)
        memory.check_plan(bufs, offsets)
        assert size >= memory.align_up(memory.lower_bound(bufs), alignment)


@pytest.mark.parametrize("seed", range(20))
def test_count_pairs_and_check_plan_agree_with_the_conflict_lists(seed):
    rng = random.Random(seed)
    bufs = _random_buffers(rng, rng.randint(0, 50))
    conf = memory.conflicts(bufs)
    assert memory.count_pairs(bufs) == sum(len(v) for v in conf.values()) // 2
    offsets = memory.plan(bufs, alignment=1).offsets
    for _ in range(20):  # move one buffer onto another: an overlap exactly when both live at once
        bad = dict(offsets)
        a, b = rng.sample(bufs, 2) if len(bufs) >= 2 else (None, None)
        if a is None:
            break
        bad[b.key] = bad[a.key] + rng.randint(0, max(a.size - 1, 0))
        overlap = any(x.size and y.size and bad[x.key] < bad[y.key] + y.size
                      and bad[y.key] < bad[x.key] + x.size for x in bufs for y in conf[id(x)])
        if overlap:
            with pytest.raises(AssertionError):
                memory.check_plan(bufs, bad)
        else:
            memory.check_plan(bufs, bad)


def test_huge_graphs_are_planned_in_near_linear_time():
    """20,000 buffers all live at one step (a Concat of 20,000 inputs: 200 million
    pairs) and a 200,000-buffer chain: the sweep, a valid plan near the lower bound."""
    import time
    wide = [Buffer(i, 32, i, 20_000) for i in range(20_000)]
    chain = [Buffer(i, 32 + 16 * (i % 3), i, i + 1) for i in range(200_000)]
    for bufs, slack in ((wide, 1.0), (chain, 1.5)):
        t0 = time.process_time()
        p = memory.plan(bufs)
        memory.check_plan(bufs, p.offsets)
        assert time.process_time() - t0 < 10
        assert p.order == "sweep/first"
        assert p.lower_bound <= p.size <= slack * p.lower_bound


def test_search_stops_at_the_lower_bound_with_the_same_plan():
    """The search ends at the first order that reaches the lower bound: no later
    order can be smaller, so the plan is the one trying them all gives."""
    rng = random.Random(5)
    for _ in range(30):
        bufs = _random_buffers(rng, rng.randint(1, 40))
        p = memory.plan(bufs, alignment=16)
        best = None
        base = sorted(bufs, key=lambda b: (b.first, b.last, str(b.key)))
        conf = memory.conflicts(base)
        for name, key in memory._ORDERS.items():
            for fit in ("first", "best", "best-end"):
                offsets, size = memory._place(sorted(base, key=key), 16, fit, conf)
                if best is None or size < best[1]:
                    best = (offsets, size, f"{name}/{fit}")
        if best[1] <= memory.align_up(p.lower_bound, 16):
            assert (p.offsets, p.size, p.order) == best
