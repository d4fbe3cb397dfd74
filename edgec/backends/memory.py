"""Static activation-arena planner.

Contract (the TFLite Micro habit: a small unit with buffers in, offsets out):
each buffer has a size in bytes and a lifetime ``[first, last]`` in execution
steps (inclusive).  Two buffers whose lifetimes intersect may not overlap in
memory.  :func:`plan` returns an offset for every buffer and the arena size;
:func:`lower_bound` is the largest sum of sizes of simultaneously live buffers,
which no plan without in-place tricks can beat.

The planner tries several greedy placement orders (largest first, longest-lived
first, earliest first, ...) and keeps the smallest arena: the graphs are small,
so this costs milliseconds and gets within a few bytes of the bound on chains
and residual networks alike.  Its cost grows with the pairs of buffers live at
the same time; a graph with very many of them (thousands of tensors feeding one
Concat, hundreds of thousands of layers) gets one placement by a sweep over
start times instead, near-linear in the number of buffers.
"""
from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass


@dataclass
class Buffer:
    key: object
    size: int
    first: int
    last: int

    def overlaps(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class Plan:
    offsets: dict
    size: int
    lower_bound: int
    order: str


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def lower_bound(buffers: list[Buffer]) -> int:
    """Largest total size of buffers live at the same step."""
    events: dict[int, int] = {}
    for b in buffers:
        events[b.first] = events.get(b.first, 0) + b.size
        events[b.last + 1] = events.get(b.last + 1, 0) - b.size
    live = best = 0
    for t in sorted(events):
        live += events[t]
        best = max(best, live)
    return best


def conflicts(buffers: list[Buffer]) -> dict[int, list[Buffer]]:
    """For every buffer (by ``id``), the buffers whose lifetimes intersect its own.

    A sweep over start times: O(n log n + pairs), so a long chain of layers (few
    buffers alive at once) costs linear time, not quadratic."""
    conf: dict[int, list[Buffer]] = {id(b): [] for b in buffers}
    active: list[tuple[int, int, Buffer]] = []  # heap of (last, tiebreak, buffer)
    for k, b in enumerate(sorted(buffers, key=lambda b: b.first)):
        while active and active[0][0] < b.first:
            heapq.heappop(active)
        for _, _, other in active:
            conf[id(b)].append(other)
            conf[id(other)].append(b)
        heapq.heappush(active, (b.last, k, b))
    return conf


def count_pairs(buffers: list[Buffer]) -> int:
    """How many pairs of buffers have intersecting lifetimes (what :func:`conflicts`
    would list), counted in O(n log n) without listing them."""
    starts = sorted(b.first for b in buffers)
    ends = sorted(b.last for b in buffers)
    # pairs = sum over buffers of the buffers starting no later that have not ended
    # before it starts, minus the buffer itself; ties in start counted once
    total = 0
    for b in buffers:
        total += bisect.bisect_right(starts, b.first) - bisect.bisect_left(ends, b.first)
    ties = 0  # pairs with the same start were counted from both sides
    k = 0
    while k < len(starts):
        j = bisect.bisect_right(starts, starts[k], k)
        ties += (j - k) * (j - k - 1) // 2
        k = j
    return total - len(buffers) - ties


def _place(order: list[Buffer], alignment: int, fit: str = "first",
           conf: dict[int, list[Buffer]] | None = None) -> tuple[dict, int]:
    """Place buffers in the given order.  ``first``: lowest offset that fits;
    ``best``: the smallest gap between live neighbours that fits (ends of the
    gap tried too), else the top."""
    if conf is None:
        conf = conflicts(order)
    placed: dict[int, tuple[int, int]] = {}  # id(buffer) -> (offset, end)
    offsets = {}
    top = 0
    for b in order:
        size = align_up(max(b.size, 1), alignment)
        busy = sorted(placed[id(p)] for p in conf[id(b)] if id(p) in placed)
        gaps = []  # (start, end) free intervals below the highest busy end
        cur = 0
        for o, e in busy:
            if o > cur:
                gaps.append((cur, o))
            cur = max(cur, align_up(e, alignment))
        choice = None
        if fit == "first":
            for gs, ge in gaps:
                if ge - gs >= size:
                    choice = gs
                    break
        else:
            best = None
            for gs, ge in gaps:
                if ge - gs >= size:
                    waste = (ge - gs) - size
                    if best is None or waste < best[0]:
                        end_off = (ge - size) // alignment * alignment
                        pos = gs if fit == "best" else max(gs, end_off)
                        best = (waste, pos)
            if best is not None:
                choice = best[1]
        if choice is None:
            choice = cur
        offsets[b.key] = choice
        placed[id(b)] = (choice, choice + b.size)
        top = max(top, choice + b.size)
    return offsets, align_up(top, alignment) if top else 0


# Above this much work (buffers plus pairs of buffers live at the same time), plan()
# places the buffers once, by a sweep over start times (:func:`_sweep`), instead of
# searching fifteen greedy orders whose cost grows with the pairs (about 1 s at the
# limit): thousands of tensors feeding one Concat, or 25,000 layers and more.  The
# models edgec is meant for sit far below (MLPerf Tiny: under 100).
SEARCH_LIMIT = 50_000

# The sweep looks for a gap among this many live buffers from the bottom of the
# arena, then takes the top: bounded work per buffer whatever the graph.
SWEEP_GAPS = 64


_ORDERS = {
    "size": lambda b: (-b.size, b.first, b.last),
    "lifetime": lambda b: (-(b.last - b.first), -b.size, b.first),
    "first": lambda b: (b.first, -b.size),
    "area": lambda b: (-(b.size * (b.last - b.first + 1)), b.first),
    "last": lambda b: (-b.last, -b.size),
}


def _sweep(base: list[Buffer], alignment: int, gaps: int | None = SWEEP_GAPS) -> tuple[dict, int]:
    """First fit in order of start time: the search's ``first/first`` placement.

    In that order the placed buffers a buffer conflicts with are exactly those still
    live when it starts: they are kept sorted by offset and retired from a heap when
    they end, so a buffer costs O(log n) plus the gaps it looks at (at most
    ``gaps``, then the top; None: all of them, which is :func:`_place` exactly)."""
    live: list[tuple[int, int]] = []       # (offset, sequence) of live placed buffers
    end_of: dict[int, int] = {}            # sequence -> aligned end (an empty buffer: its offset)
    ends: list[tuple[int, int, int]] = []  # heap of (last step, sequence, offset)
    offsets = {}
    top = 0
    for seq, b in enumerate(sorted(base, key=_ORDERS["first"])):
        while ends and ends[0][0] < b.first:
            _, s, o = heapq.heappop(ends)
            del live[bisect.bisect_left(live, (o, s))]
            del end_of[s]
        size = align_up(max(b.size, 1), alignment)
        choice = None
        cur = 0
        for o, s in (live if gaps is None or len(live) <= gaps else live[:gaps]):
            if o - cur >= size:
                choice = cur
                break
            cur = max(cur, end_of[s])
        if choice is None and live:
            # the top: the highest end, among the buffers at the highest offset (an
            # empty buffer there may sort after a real one)
            k = len(live) - 1
            cur = max(cur, end_of[live[k][1]])
            while k > 0 and live[k - 1][0] == live[-1][0]:
                k -= 1
                cur = max(cur, end_of[live[k][1]])
        if choice is None:
            choice = cur
        offsets[b.key] = choice
        top = max(top, choice + b.size)
        bisect.insort(live, (choice, seq))
        end_of[seq] = align_up(choice + b.size, alignment)
        heapq.heappush(ends, (b.last, seq, choice))
    return offsets, align_up(top, alignment) if top else 0


def plan(buffers: list[Buffer], alignment: int = 16, search: int = 200) -> Plan:
    for b in buffers:
        if b.size < 0 or b.first > b.last:
            raise ValueError(f"bad buffer {b}")
    lb = lower_bound(buffers)
    best = None
    # Stable input order makes the result deterministic.
    base = sorted(buffers, key=lambda b: (b.first, b.last, str(b.key)))
    floor = align_up(lb, alignment)
    if len(base) + count_pairs(base) > SEARCH_LIMIT:
        offsets, size = _sweep(base, alignment)
        return Plan(offsets, size, lb, "sweep/first")
    conf = conflicts(base)
    for name, key in _ORDERS.items():
        for fit in ("first", "best", "best-end"):
            offsets, size = _place(sorted(base, key=key), alignment, fit, conf)
            if best is None or size < best.size:
                best = Plan(offsets, size, lb, f"{name}/{fit}")
            if best.size <= floor:
                break  # no order can beat the lower bound: the first to reach it wins
        if best is not None and best.size <= floor:
            break
    if best is not None and best.size > floor and len(base) <= 400:
        # Deterministic random restarts: cheap for MCU-sized graphs.
        rng = random.Random(0)
        for i in range(search):
            order = list(base)
            rng.shuffle(order)
            for fit in ("first", "best-end"):
                offsets, size = _place(order, alignment, fit, conf)
                if size < best.size:
                    best = Plan(offsets, size, lb, f"random{i}/{fit}")
            if best.size <= floor:
                break
    if best is None:
        best = Plan({}, 0, 0, "empty")
    return best


def check_plan(buffers: list[Buffer], offsets: dict) -> None:
    """Raise if two buffers that are live at the same time overlap in memory.

    A sweep over start times keeps the live (non-empty) buffers sorted by offset;
    they never overlap each other, so a buffer that starts can only overlap its
    neighbours in that order: O(n log n), however many buffers live at once."""
    order = sorted((b for b in buffers if b.size), key=lambda b: b.first)
    live: list[tuple[int, int]] = []  # (offset, index in order), ascending
    ends: list[tuple[int, int]] = []  # heap of (last step, index in order)
    for i, b in enumerate(order):
        while ends and ends[0][0] < b.first:
            j = heapq.heappop(ends)[1]
            del live[bisect.bisect_left(live, (offsets[order[j].key], j))]
        o = offsets[b.key]
        pos = bisect.bisect_left(live, (o, i))
        for q in (pos - 1, pos):
            if 0 <= q < len(live):
                oc, j = live[q]
                c = order[j]
                if o < oc + c.size and oc < o + b.size:
                    raise AssertionError(f"buffers {c.key} and {b.key} overlap")
        live.insert(pos, (o, i))
        heapq.heappush(ends, (b.last, i))
