"""The trust ladder: 不信 < 不安 < 安心 < 信用 < 信頼, from a client's record of outcomes.

Trust is slow to build and quick to lose (rules: ``TrustLadderRules``, defaults documented there
and in the README's trust section). The ladder is a small state machine (``TrustMachine``)
stepped once per outcome, in the order the outcomes happened:

* each closed obligation is one outcome: answered within ``fast_fraction`` of its business-time
  budget is *fast*, any other on-time answer *on time* (both good); a breach enters the record
  when it fires, so trust reacts at the deadline, and stays a bad outcome when the obligation is
  answered late; a retracted breach becomes the on-time outcome it really was; every silence is
  a bad outcome, and a retracted silence is removed;
* with fewer than ``min_outcomes`` outcomes the client keeps the start level, 安心 assured;
* a bad outcome lowers the level at once: ``breach_steps`` (``silence_steps``) levels, though
  steps alone stop at 不安 anxious; further to what the running score earns (不信 distrust when
  it falls below the anxious threshold); and to 安心 at most once ``repeated_breaches``
  breaches fell within ``repeated_breach_days``;
* the running score is an exponentially weighted average of the points (each outcome moves it
  ``1/window`` of the way to its own points), so fast answers build it faster than on-time ones
  and one breach costs what two fast answers earn;
* a good outcome never lowers the level; it raises it by one level when the good outcomes in a
  row are worth ``rise_points``, the level has been held ``rise_dwell_days``, the record has
  ``min_outcomes`` outcomes, the running score reaches the next level's threshold and repeated
  breaches do not cap it; the streak then starts again (hysteresis: no flip-flop);
* every change carries a readable reason (what happened, the count of breaches in the period,
  the streak and dwell a rise needed).

``fold`` steps the anchor (the machine after the outcomes that left the record) through the
record: the result depends only on the outcomes and their order, so a late correction inside the
record converges to what in-order processing shows (a correction older than the last ``window``
outcomes re-scores only what the record still holds).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from engine.state import TrustEntry, TrustMachine
from schemas.facts import TrustLevel
from schemas.policies import TrustLadderRules

__all__ = ["GOOD", "KANJI", "fold", "name", "points_for", "step"]

GOOD = frozenset({"fast", "on_time"})
"""Labels of good outcomes (answers in target); every other label is a bad outcome."""

_LEVELS = tuple(TrustLevel)
_RANK = {level: i for i, level in enumerate(_LEVELS)}  # = level.rank, without the call
_ASSURED = TrustLevel.ASSURED.rank
_ANXIOUS = TrustLevel.ANXIOUS.rank
_MAX_OUTCOMES = 1_000_000  # a counter that only has to reach min_outcomes
_MAX_BREACHES = 256  # only "at least repeated_breaches" matters; keep the state bounded
KANJI = {
    TrustLevel.DISTRUST: "不信",
    TrustLevel.ANXIOUS: "不安",
    TrustLevel.ASSURED: "安心",
    TrustLevel.CREDIBLE: "信用",
    TrustLevel.TRUSTED: "信頼",
}


def name(level: TrustLevel) -> str:
    """A level as people read it: ``安心 assured``."""
    return f"{KANJI[level]} {level.value}"


def _when(at: datetime) -> str:
    if at.year < 1000:  # strftime does not pad these: keep its exact text
        return at.strftime("%Y-%m-%d %H:%M UTC")
    # = strftime("%Y-%m-%d %H:%M UTC") at half the cost (once per level change or re-score)
    return f"{at.year}-{at.month:02d}-{at.day:02d} {at.hour:02d}:{at.minute:02d} UTC"


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
    if label == "chase":
        return rules.chase_points
    raise KeyError(label)


def _score_rank(score: float, rules: TrustLadderRules) -> int:
    rank = 0
    for i, threshold in enumerate(rules.thresholds):
        if score >= threshold:
            rank = i + 1
    return rank


def _change(m: TrustMachine, rank: int, at: datetime, reason: str) -> None:
    m.level = _LEVELS[rank]
    m.since = at
    m.reason = reason
    m.changed_at = at
    m.streak = 0.0
    m.streak_n = 0
    m.streak_start = None


def _breach_note(n: int, rules: TrustLadderRules) -> str:
    """The breach count part of a reason: ``n`` breaches in the repeated-breach period."""
    note = f"{n} breach{'es' if n != 1 else ''} in {rules.repeated_breach_days} days"
    if n >= rules.repeated_breaches:
        note += f" (from {rules.repeated_breaches}: at most {name(TrustLevel.ASSURED)})"
    return note


_SPANS: dict[float, timedelta] = {}


def _days(days: float) -> timedelta:
    """``timedelta(days=days)``, memoised (few distinct rule values, one call per outcome)."""
    span = _SPANS.get(days)
    if span is None:
        span = _SPANS[days] = timedelta(days=days)
    return span


def _fall_reason(
    level: TrustLevel,
    target: int,
    what: str,
    at: datetime,
    breaches: int,
    score: float,
    rules: TrustLadderRules,
) -> str:
    return (
        f"{name(level)} -> {name(_LEVELS[target])}: {what} at {_when(at)}; "
        f"{_breach_note(breaches, rules)}; running score {score:+.2f}"
    )


def _rise_reason(
    level: TrustLevel,
    after: TrustLevel,
    streak_n: int,
    start: datetime,
    streak: float,
    held: timedelta,
    score: float,
    threshold: float,
    breaches: int,
    rules: TrustLadderRules,
) -> str:
    return (
        f"{name(level)} -> {name(after)}: {streak_n} answers in target since "
        f"{_when(start)}, no breach, late answer, silence or chase ({streak:g} points of "
        f"{rules.rise_points:g} needed); {held / timedelta(days=1):.1f} days at {name(level)} "
        f"({rules.rise_dwell_days:g} needed); running score {score:+.2f} "
        f"({after.value} needs {threshold:+.2f}); {_breach_note(breaches, rules)}"
    )


# A reason not written yet: its builder and arguments (see ``fold``).
_Later = list[Any]


def step(
    m: TrustMachine, entry: TrustEntry, rules: TrustLadderRules, later: _Later | None = None
) -> None:
    """Move ``m`` (in place) by one outcome under ``rules``; see the module docstring.

    With ``later`` (``fold``), a level change leaves ``m.reason`` empty and puts what writes
    it into ``later`` instead: in a fold only the last change's reason survives.
    """
    at = entry.at
    outcomes = m.outcomes + 1
    m.outcomes = outcomes if outcomes < _MAX_OUTCOMES else _MAX_OUTCOMES  # = min(), no call
    if m.since is None:
        m.since = at  # the dwell at the start level counts from the first outcome
    m.score += (entry.points - m.score) / rules.window
    breaches = m.breaches
    if breaches:
        horizon = at - _days(rules.repeated_breach_days)
        while breaches and breaches[0] <= horizon:
            del breaches[0]
    rank = _RANK[m.level]
    label = entry.label
    if label == "fast" or label == "on_time":  # GOOD
        if m.streak_start is None:
            m.streak_start = at
        m.streak += entry.points
        m.streak_n += 1
        _maybe_rise(m, rank, at, rules, later)
        return
    breach = label == "breach" or label == "late"
    if breach:
        breaches.append(at)
        if len(breaches) > _MAX_BREACHES:
            del breaches[0]
    m.streak = 0.0
    m.streak_n = 0
    m.streak_start = None
    if m.outcomes < rules.min_outcomes:
        return  # too little record to judge: the start level stands
    # Steps alone stop at 不安 anxious: only a running score below the anxious threshold (a
    # record mostly of failures) makes 不信 distrust.
    chased = label == "chase"
    steps = rules.breach_steps if breach else rules.chase_steps if chased else rules.silence_steps
    target = max(min(rank, _ANXIOUS), rank - steps)
    target = min(target, _score_rank(m.score, rules))
    if len(breaches) >= rules.repeated_breaches:
        target = min(target, _ASSURED)
    if target >= rank:
        return
    what = "a breach" if breach else "a chase" if chased else "a silence"
    if label == "late":
        what = "a breach (answered late)"
    args = (m.level, target, what, at, len(breaches), m.score, rules)
    if later is None:
        _change(m, target, at, _fall_reason(*args))
    else:
        later[:] = (_fall_reason, args)
        _change(m, target, at, "")


def _maybe_rise(
    m: TrustMachine, rank: int, at: datetime, rules: TrustLadderRules, later: _Later | None
) -> None:
    if rank + 1 >= len(_LEVELS) or m.outcomes < rules.min_outcomes:
        return
    if m.streak < rules.rise_points:
        return
    since = m.since if m.since is not None else at
    if at - since < _days(rules.rise_dwell_days):
        return
    threshold = rules.thresholds[rank]  # the next level's (thresholds start at anxious)
    if m.score < threshold:
        return
    if rank + 1 > _ASSURED and len(m.breaches) >= rules.repeated_breaches:
        return
    start = m.streak_start if m.streak_start is not None else at
    args = (
        m.level,
        _LEVELS[rank + 1],
        m.streak_n,
        start,
        m.streak,
        at - since,
        m.score,
        threshold,
        len(m.breaches),
        rules,
    )
    if later is None:
        _change(m, rank + 1, at, _rise_reason(*args))
    else:
        later[:] = (_rise_reason, args)
        _change(m, rank + 1, at, "")


def fold(
    anchor: TrustMachine, record: Iterable[TrustEntry], rules: TrustLadderRules
) -> TrustMachine:
    """A copy of ``anchor`` stepped through ``record`` (in order) under ``rules``."""
    m = anchor.copy()
    # A fold re-scores a whole record (a late answer to a breach, a correction): each change's
    # reason (strftime and float formatting) is written only if no later change replaces it.
    later: _Later = []
    for entry in record:
        step(m, entry, rules, later)
    if later:
        build, args = later
        m.reason = build(*args)
    return m
