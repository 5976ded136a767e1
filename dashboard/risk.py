"""Which clients need attention first: the order of the clients table.

Risk, most urgent first: how many obligations are overdue (owed past their deadline), then the
next deadline (an overdue one counts: the longest overdue comes first), then the trust level
(lowest first), then the breaches of the last 7 days (most first); the name breaks ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboard.labels import TRUST_RANK

START_LEVEL = "assured"


@dataclass(frozen=True)
class ClientRisk:
    """What the ordering looks at for one client."""

    client_id: str
    name: str
    overdue: int
    next_deadline: datetime | None
    next_seconds_left: float | None
    trust_level: str
    breaches_week: int

    def key(self) -> tuple[int, int, float, int, int, str, str]:
        """Sort key: smaller is riskier."""
        no_deadline = self.next_seconds_left is None
        left = 0.0 if self.next_seconds_left is None else self.next_seconds_left
        return (
            -self.overdue,
            int(no_deadline),
            left,
            TRUST_RANK.get(self.trust_level, TRUST_RANK[START_LEVEL]),
            -self.breaches_week,
            self.name,
            self.client_id,
        )


def riskiest_first(risks: list[ClientRisk]) -> list[ClientRisk]:
    """``risks`` in the order the team should look at them."""
    return sorted(risks, key=ClientRisk.key)
