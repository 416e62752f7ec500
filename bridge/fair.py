"""Fair draining of a queue's tenants: weighted deficit round robin, and the lag gate.

Pure logic (no Redis, no Kafka), so it is unit-tested on its own.

Deficit round robin (Shreedhar and Varghese): each tenant with jobs waiting
earns ``quantum * weight`` jobs of credit when its turn comes, and the bridge
takes up to that credit from its list before moving on. A tenant whose list
ran dry loses its leftover credit, so idle tenants bank nothing. A tenant that
arrives while another has a huge backlog is therefore served within one round:
at most ``quantum * (sum of the other tenants' weights)`` jobs are taken from
the others first (two rounds when it arrives mid-round).

The lag gate keeps the queue's Kafka backlog bounded: past ``max_kafka_lag``
unconsumed jobs the bridge stops feeding Kafka, so the order among tenants is
decided here, not lost in Kafka's FIFO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class FairScheduler:
    """Picks the next tenant to take from, and how many of its jobs.

    Args:
        quantum: credit a weight-1 tenant earns per round (in jobs).
        weights: weight of named tenants; others weigh ``1``.

    Usage: ``refresh(tenants, paused)`` with the registry, then repeatedly
    ``tenant, n = next_take(limit)`` and ``record(tenant, wanted=n, taken=k)``.
    """

    quantum: int
    weights: Mapping[str, int] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)
    _deficit: dict[str, int] = field(default_factory=dict)
    _turn: int = 0
    _fresh_turn: bool = True

    def __post_init__(self) -> None:
        if self.quantum < 1:
            raise ValueError("quantum must be >= 1")

    @property
    def tenants(self) -> list[str]:
        """The tenants in the round, in turn order."""
        return list(self._order)

    @property
    def round_done(self) -> bool:
        """True when every tenant of the current round had its turn."""
        return self._turn >= len(self._order)

    def weight(self, tenant: str) -> int:
        """A tenant's weight (``1`` unless named in ``weights``)."""
        return max(1, int(self.weights.get(tenant, 1)))

    def refresh(self, tenants: Iterable[str], paused: Iterable[str] = ()) -> None:
        """Start a new round over ``tenants`` minus ``paused``.

        Tenants keep their place (and credit) across rounds; new ones join at
        the end; gone or paused ones leave and lose their credit.
        """
        skip = set(paused)
        wanted = {t for t in tenants if t not in skip}
        kept = [t for t in self._order if t in wanted]
        kept += sorted(wanted - set(kept))
        self._deficit = {t: self._deficit.get(t, 0) for t in kept}
        self._order = kept
        self._turn = 0
        self._fresh_turn = True

    def next_take(self, limit: int) -> tuple[str, int] | None:
        """The tenant whose turn it is and how many jobs to take (<= ``limit``).

        Returns:
            ``None`` when the round is over (call :meth:`refresh`).
        """
        while self._turn < len(self._order):
            tenant = self._order[self._turn]
            if self._fresh_turn:
                self._deficit[tenant] += self.quantum * self.weight(tenant)
                self._fresh_turn = False
            credit = self._deficit[tenant]
            if credit >= 1:
                return tenant, min(credit, limit)
            self._advance()
        return None

    def record(self, tenant: str, wanted: int, taken: int) -> None:
        """Account for a take: spend credit; a short take means the list is empty."""
        if tenant not in self._deficit:
            return
        self._deficit[tenant] = max(0, self._deficit[tenant] - taken)
        if taken < wanted:
            self._deficit[tenant] = 0  # DRR: an emptied list keeps no credit
        if self._deficit[tenant] < 1 and self._order[self._turn:self._turn + 1] == [tenant]:
            self._advance()

    def _advance(self) -> None:
        self._turn += 1
        self._fresh_turn = True


def lag_allows(measured_lag: int | None, sent_since_measure: int, max_lag: int | None) -> bool:
    """Whether the bridge may feed a fair queue's topic now.

    Args:
        measured_lag: the workers group's lag at the last measurement, or
            ``None`` before the first one (then nothing is fed: the backlog
            already in Kafka is unknown).
        sent_since_measure: jobs handed to Kafka and not acknowledged before that
            measurement began;
            added so the estimate is an upper bound between measurements.
        max_lag: the queue's ``max_kafka_lag`` (``None`` = unbounded).
    """
    if max_lag is None:
        return True
    if measured_lag is None:
        return False
    return measured_lag + sent_since_measure < max_lag
