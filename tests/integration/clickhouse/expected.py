"""What the rollup queries must return, computed from the facts in Python (shared by the query
tests of the ClickHouse sink and of the dashboard)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from schemas.facts import Fact, FactKind, Outcome

K = TypeVar("K", bound=Hashable)

# The fact kinds a rollup counts once each, under the name of its column.
_COUNTED = {
    FactKind.OBLIGATION_OPENED: "opened",
    FactKind.BREACHED: "breached",
    FactKind.WAIVED: "waived",
    FactKind.WARNING: "warnings",
    FactKind.SPEED_OF_ANSWER: "calls",
}


def linear_quantile(values: list[float], level: float) -> float:
    """Linear interpolation between closest ranks (what ClickHouse's quantile does exactly
    while a state holds fewer than 8192 samples)."""
    ordered = sorted(values)
    pos = level * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def tally(
    facts: Iterable[Fact], group: Callable[[Fact], K]
) -> tuple[dict[K, dict[str, int]], dict[K, list[float]]]:
    """Counts per group (``any`` fact, then opened, breached, waived, warnings, calls,
    abandoned, met, met_late) and each group's business-time response samples (fulfilments).

    Both are defaultdicts: a group or count the facts never name reads as empty or 0.
    """
    counts: dict[K, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    samples: dict[K, list[float]] = defaultdict(list)
    for f in facts:
        key = group(f)
        c = counts[key]
        c["any"] += 1
        name = _COUNTED.get(f.kind)
        if name is not None:
            c[name] += 1
        if f.kind is FactKind.SPEED_OF_ANSWER:
            c["abandoned"] += f.call_outcome is not None and f.call_outcome.value == "abandoned"
        elif f.kind is FactKind.FULFILLED:
            c["met" if f.outcome is Outcome.MET else "met_late"] += 1
            if f.business_seconds is not None:
                samples[key].append(f.business_seconds)
    return counts, samples
