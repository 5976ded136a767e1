"""E-mail conversations in the engine: hashed message id → conversation root (JWZ-style).

Every e-mail event of schema v2 carries its own id hash (``message_key``) and its ancestors'
(``parent_keys``, root first). Each id is linked to its parent (the previous id of the chain);
an id without a parent is a root, and the conversation of a message is the root its chain leads
to. A parent, once known, is kept (a later, shorter or broken chain cannot move an id); a link
that would close a loop is ignored. For a consistent reply tree the roots are the same whatever
order the messages arrive in: a reply that arrives before its parent, or that names only its
direct parent (a bare In-Reply-To), joins the root as soon as any message links the chain.

The memory (``links``: child → (parent, last use)) lives in the client's state, so the live
workers and a replay thread alike; it is swept like the thread memory (``forget_before``).
Lookups compress paths (each id visited then points at the root directly, which changes no
root) and refresh the time of what they visit, so a live conversation is never forgotten.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["MAX_HOPS", "THREAD_PREFIX", "Links", "link_chain", "root_of"]

THREAD_PREFIX = "email:"
"""Thread key of a conversation: ``email:<root hash>`` (the parser's thread_key form)."""

MAX_HOPS = 10_000  # a guard: chains are short, and links never form a loop

Links = dict[str, tuple[str, datetime]]


def root_of(
    links: Links, key: str, at: datetime | None = None, touched: set[str] | None = None
) -> str:
    """The root of ``key`` (``key`` itself when it has no parent); compresses the path.

    Every id whose entry changes is added to ``touched`` when given (the state's young links,
    ``ClientState.to_parts``)."""
    path: list[str] = []
    node = key
    for _ in range(MAX_HOPS):
        found = links.get(node)
        if found is None:
            break
        path.append(node)
        node = found[0]
    for visited in path:
        parent, when = links[visited]
        if at is not None and at > when:
            when = at
        elif parent == node:
            continue  # unchanged
        links[visited] = (node, when)
        if touched is not None:
            touched.add(visited)
    return node


def link_chain(
    links: Links, chain: list[str], at: datetime, touched: set[str] | None = None
) -> list[str]:
    """Link each id of ``chain`` (root first) to the one before it; returns the ids that were
    roots and now have a parent (their conversations merged into another root). Changed ids go
    to ``touched`` when given (see ``root_of``)."""
    joined: list[str] = []
    for i in range(1, len(chain)):
        child, parent = chain[i], chain[i - 1]
        if child == parent:
            continue
        known = links.get(child)
        if known is not None:
            if known[1] < at:
                links[child] = (known[0], at)  # still in use: refresh
                if touched is not None:
                    touched.add(child)
            continue
        if root_of(links, parent, None, touched) == child:
            continue  # the headers disagree with what is known: a loop, ignore the link
        links[child] = (parent, at)
        if touched is not None:
            touched.add(child)
        joined.append(child)
    return joined
