"""The trust ladder: 不信 < 不安 < 安心 < 信用 < 信頼, from a client's recent record.

Rules (``TrustLadderRules``, defaults documented there):

* each closed obligation is one outcome: answered within ``fast_fraction`` of its business-time
  budget scores ``fast_points``, any other on-time answer ``on_time_points``;
* a breach enters the record when it fires (``breach_points``), so trust reacts at the deadline;
  if the obligation is later answered, that entry becomes ``late_points`` (met late: answering
  late is better than never); a retracted breach becomes the on-time outcome it really was;
* every silence fact is an outcome of ``silence_points``; a retracted silence is removed;
* the score is the average of the last ``window`` outcomes; the level is the highest whose
  threshold (anxious, assured, credible, trusted) it reaches, below all of them 不信 distrust;
* with fewer than ``min_outcomes`` outcomes the client keeps the start level, 安心 assured.
"""

from __future__ import annotations

from engine.state import START_LEVEL, TrustEntry
from schemas.facts import TrustLevel
from schemas.policies import TrustLadderRules

__all__ = ["describe", "level_for", "points_for"]

_LADDER = (TrustLevel.ANXIOUS, TrustLevel.ASSURED, TrustLevel.CREDIBLE, TrustLevel.TRUSTED)
_RANK = {level: level.rank for level in TrustLevel}  # TrustLevel.rank walks the enum per call
_KANJI = {
    TrustLevel.DISTRUST: "不信",
    TrustLevel.ANXIOUS: "不安",
    TrustLevel.ASSURED: "安心",
    TrustLevel.CREDIBLE: "信用",
    TrustLevel.TRUSTED: "信頼",
}


def points_for(label: str, rules: TrustLadderRules) -> float:
    """Points of an outcome labelled fast, on_time, late, breach or silence."""
    if label == "fast":
        return rules.fast_points
    if label == "on_time":
        return rules.on_time_points
    if label == "late":
        return rules.late_points
    if label == "breach":
        return rules.breach_points
    if label == "silence":
        return rules.silence_points
    raise KeyError(label)


def _average(record: list[TrustEntry], rules: TrustLadderRules) -> tuple[float, list[TrustEntry]]:
    recent = record[-rules.window :]
    return sum(e.points for e in recent) / len(recent), recent


def level_for(record: list[TrustEntry], rules: TrustLadderRules) -> TrustLevel:
    """The trust level the record earns under ``rules``."""
    if len(record) < rules.min_outcomes:
        return START_LEVEL
    recent = record[-rules.window :]
    avg = sum([e.points for e in recent]) / len(recent)  # the same sum, in the same order
    level = TrustLevel.DISTRUST
    for candidate, threshold in zip(_LADDER, rules.thresholds, strict=True):
        if avg >= threshold:
            level = candidate
    return level


def describe(
    record: list[TrustEntry],
    rules: TrustLadderRules,
    before: TrustLevel,
    after: TrustLevel,
    cause: str,
) -> str:
    """A human reason for a move from ``before`` to ``after`` (what the record says and why)."""
    if len(record) < rules.min_outcomes:
        return (
            f"{_KANJI[before]} {before.value} -> {_KANJI[after]} {after.value}: only "
            f"{len(record)} outcome(s), fewer than {rules.min_outcomes}; back to the start level "
            f"({cause})"
        )
    avg, recent = _average(record, rules)
    labels = [e.label for e in recent]
    tally = ", ".join(
        f"{n} {label}"
        for label in ("fast", "on_time", "late", "breach", "silence")
        if (n := labels.count(label))
    )
    if _RANK[after] > _RANK[before]:
        threshold = rules.thresholds[_RANK[after] - 1]
        verdict = f"reached the {after.value} threshold {threshold:+.2f}"
    else:
        threshold = rules.thresholds[_RANK[before] - 1]
        verdict = f"fell below the {before.value} threshold {threshold:+.2f}"
    return (
        f"{_KANJI[before]} {before.value} -> {_KANJI[after]} {after.value}: average score "
        f"{avg:+.2f} over the last {len(recent)} outcomes ({tally}) {verdict} after {cause}"
    )
