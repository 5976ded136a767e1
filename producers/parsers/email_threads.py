"""Conversations of one e-mail input: which clients a staff message to a list or group reaches.

Every message carries the hashed ids of its conversation (``message_key``, ``parent_keys``). A
staff message reaches (DESIGN §3, issue 13):

- every client among its To/Cc recipients, and
- through a list or group address it was sent to, every client who wrote to that same list or
  group in the same conversation (anywhere in the input: archives are not in date order, and
  the engine only fulfils obligations opened before the reply anyway).

Each event has ONE ``client_id`` (it is the Kafka key: one client's events on one partition), so
a message reaching several clients becomes one event per client: the first client reached (To/Cc
order, then list-reached clients by id) gets the message's own event id ``email:<hash>``, every
other client ``email:<hash>:<hash of the client id>`` (stable, distinct, and the same whatever
order the input is read in). They are the same message: identical but for ``client_id``,
``counterpart`` and ``event_id``.

Conversations here are the connected ids of this input (union of Message-ID, References and
In-Reply-To). A message parsed on its own (one .eml at a time) reaches its To/Cc clients only;
the engine still threads it (its own id → root memory), but a staff message sent ONLY to a list
has no client to be routed to until the input holds the conversation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from producers.parsers.base import Parsed, ParseResult
from producers.parsers.email_headers import digest
from schemas.events import MAX_PARENT_KEYS, Direction


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What fan-out needs about one parsed message beyond its event."""

    own: str | None  # hashed own id
    ancestors: tuple[str, ...]  # hashed ids of its ancestors, root first (its own headers)
    reached: tuple[tuple[str, str], ...]  # (client id, address) among To/Cc, in order
    groups: tuple[str, ...]  # list / group addresses among its recipients
    staff_sender: bool

    @property
    def keys(self) -> tuple[str, ...]:
        """Ancestors, root first, then its own id."""
        return (*self.ancestors, self.own) if self.own is not None else self.ancestors


class _Union:
    """Union-find over hashed message ids (path halving; roots are order-independent sets)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        parent = self.parent
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        first = self.find(keys[0])
        for key in keys[1:]:
            other = self.find(key)
            if other != first:
                # The smaller key wins: the representative does not depend on the order.
                low, high = sorted((first, other))
                self.parent[high] = low
                first = low


def _parents(held: Sequence[tuple[ParseResult, MessageInfo | None]]) -> dict[str, str]:
    """Each id's parent: what its own message says, else what a References chain says."""
    own: dict[str, str] = {}
    chained: dict[str, str] = {}
    for _, info in held:
        if info is None:
            continue
        if info.own is not None and info.ancestors:
            own.setdefault(info.own, info.ancestors[-1])
        for i in range(1, len(info.ancestors)):
            chained.setdefault(info.ancestors[i], info.ancestors[i - 1])
    return {**chained, **own}


def _full_chain(parents: dict[str, str], info: MessageInfo) -> tuple[str, ...]:
    """The ancestors of a message as far as this input knows them, root first."""
    if info.own is None:
        return info.ancestors
    path: list[str] = []
    seen = {info.own}
    node = parents.get(info.own)
    while node is not None and node not in seen:
        seen.add(node)
        path.append(node)
        node = parents.get(node)
    path.reverse()
    if len(path) > MAX_PARENT_KEYS:  # keep the root and the nearest ancestors
        path = path[:1] + path[1 - MAX_PARENT_KEYS :]
    return tuple(path) if len(path) > len(info.ancestors) else info.ancestors


def fan_out(items: Iterable[tuple[ParseResult, MessageInfo | None]]) -> Iterator[ParseResult]:
    """Every result in input order; a staff message once per client it reaches (see module).

    A message whose References chain is shorter than what the input knows of its ancestry (a
    bare In-Reply-To, a mailer that drops References) carries the longer chain: each client's
    engine state only sees that client's messages, so the chain must say what joins them.
    """
    held = list(items)
    parents = _parents(held)
    held = [(_completed(result, info, parents), info) for result, info in held]
    conversations = _Union()
    for _, info in held:
        if info is not None:
            conversations.union(info.keys)
    # conversation -> group address -> client who wrote to it there -> the address it wrote from
    writers: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for result, info in held:
        if info is None or not info.keys or not isinstance(result, Parsed):
            continue
        event = result.event
        if event.direction is Direction.INBOUND and event.client_id is not None:
            root = conversations.find(info.keys[0])
            for group in info.groups:
                writers[root][group].setdefault(event.client_id, event.counterpart or group)
    for result, info in held:
        if info is None or not info.staff_sender or not isinstance(result, Parsed):
            yield result
            continue
        reached = list(info.reached)
        if info.keys and info.groups:
            by_group = writers.get(conversations.find(info.keys[0]), {})
            direct = {client for client, _ in reached}
            via: dict[str, str] = {}
            for group in info.groups:
                for client, address in by_group.get(group, {}).items():
                    if client not in direct:
                        via.setdefault(client, address)
            reached.extend(sorted(via.items()))
        yield from _copies(result, reached)


def _completed(
    result: ParseResult, info: MessageInfo | None, parents: dict[str, str]
) -> ParseResult:
    if info is None or not parents or not isinstance(result, Parsed):
        return result
    chain = _full_chain(parents, info)
    if chain == info.ancestors:
        return result
    update = {"parent_keys": chain, "thread_key": f"email:{chain[0]}", "schema_version": 2}
    return Parsed(result.event.model_copy(update=update), result.origin)


def _copies(result: Parsed, reached: Sequence[tuple[str, str]]) -> Iterator[Parsed]:
    event = result.event
    if not reached:
        yield result
        return
    for number, (client, address) in enumerate(reached):
        update: dict[str, object] = {
            "client_id": client,
            "counterpart": address,
            "direction": Direction.OUTBOUND,
        }
        if number:
            update["event_id"] = f"{event.event_id}:{digest(client)[:16]}"
        # model_copy skips validation: every field copied here was validated on the original.
        yield Parsed(event.model_copy(update=update), result.origin)
