"""Fast construction of ``Fact`` models for values the engine built itself.

``Fact(...)`` validates every field and ``Fact.model_construct`` resolves all 30 defaults per
call; at a million facts either costs more than the whole engine. The engine's values are typed
by construction, so ``make_fact`` fills a prepared template and sets exactly the attributes
``model_construct`` sets. A unit test checks that made facts equal validated ones and survive
an encode/decode round trip, so a pydantic upgrade that changes these internals is caught.
"""

from __future__ import annotations

from typing import Any

from schemas.facts import Fact

__all__ = ["build_fact", "fact_from", "make_fact"]

# Field order as declared; required fields get a placeholder that every call overwrites.
_TEMPLATE: dict[str, Any] = {
    name: (None if info.is_required() else info.get_default(call_default_factory=True))
    for name, info in Fact.model_fields.items()
}
_REQUIRED = frozenset(name for name, info in Fact.model_fields.items() if info.is_required())
_new = object.__new__
_set = object.__setattr__


def make_fact(**values: Any) -> Fact:
    """A Fact from ``values`` without validation (the caller guarantees the types)."""
    return fact_from(values)


def fact_from(values: dict[str, Any]) -> Fact:
    """``make_fact`` for a dict the caller hands over (saves repacking keyword arguments)."""
    if not values.keys() >= _REQUIRED:
        # Not ``_REQUIRED - values.keys()``: under mypyc that frozenset difference is typed
        # frozenset but is a set at run time (TypeError instead of this message).
        missing = sorted(name for name in _REQUIRED if name not in values)
        raise TypeError(f"make_fact: missing required field(s) {missing}")
    return build_fact(values)


def build_fact(values: dict[str, Any]) -> Fact:
    """``fact_from`` without the check for required fields: for a caller that always sets
    them (``engine.core``'s two fact builders, the per-fact hot path)."""
    data = _TEMPLATE.copy()
    data.update(values)
    fact: Fact = _new(Fact)
    _set(fact, "__dict__", data)
    _set(fact, "__pydantic_fields_set__", set(values))
    _set(fact, "__pydantic_extra__", None)
    _set(fact, "__pydantic_private__", None)
    return fact
