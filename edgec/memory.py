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
and residual networks alike.
"""
from __future__ import annotations

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
    import heapq
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


# Above this many pairs of simultaneously live buffers, plan() tries one placement
# order instead of fifteen (hostile or giant graphs: bounded compile time).
MAX_PAIRS_FOR_SEARCH = 200_000


_ORDERS = {
    "size": lambda b: (-b.size, b.first, b.last),
    "lifetime": lambda b: (-(b.last - b.first), -b.size, b.first),
    "first": lambda b: (b.first, -b.size),
    "area": lambda b: (-(b.size * (b.last - b.first + 1)), b.first),
    "last": lambda b: (-b.last, -b.size),
}


def plan(buffers: list[Buffer], alignment: int = 16, search: int = 200) -> Plan:
    for b in buffers:
        if b.size < 0 or b.first > b.last:
            raise ValueError(f"bad buffer {b}")
    lb = lower_bound(buffers)
    best = None
    # Stable input order makes the result deterministic.
    base = sorted(buffers, key=lambda b: (b.first, b.last, str(b.key)))
    floor = align_up(lb, alignment)
    conf = conflicts(base)
    pairs = sum(len(v) for v in conf.values()) // 2
    few = pairs > MAX_PAIRS_FOR_SEARCH
    for name, key in _ORDERS.items():
        for fit in ("first", "best", "best-end"):
            if few and (name, fit) != ("size", "first"):
                continue
            offsets, size = _place(sorted(base, key=key), alignment, fit, conf)
            if best is None or size < best.size:
                best = Plan(offsets, size, lb, f"{name}/{fit}")
    if best is not None and best.size > floor and len(base) <= 400:
        # Deterministic random restarts: cheap for MCU-sized graphs.
        import random
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
    """Raise if two buffers that are live at the same time overlap in memory."""
    conf = conflicts(buffers)
    for a in buffers:
        for b in conf[id(a)]:
            if a.size and b.size:
                oa, ob = offsets[a.key], offsets[b.key]
                if oa < ob + b.size and ob < oa + a.size:
                    raise AssertionError(f"buffers {a.key} and {b.key} overlap")
