"""KPI arithmetic (SPEC §5): the one place where the rates are defined.

Counters live on the delivery row (a recurring delivery's are the sums of its occurrences':
models/stats.py); rates are derived from them by `RATES`, never stored.
"""

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime

from models.enums import Channel


def rate(numerator: int, denominator: int) -> float:
    """A percentage from 0 to 100, rounded to 2 decimals; 0 when the denominator is 0."""
    if denominator <= 0:
        return 0.0
    return round(numerator * 100.0 / denominator, 2)


ALL_CHANNELS = frozenset(Channel)
EMAIL_ONLY = frozenset({Channel.EMAIL})


@dataclass(frozen=True)
class Rate:
    numerator: str  # a counter of `Kpis`
    denominator: str
    channels: frozenset[Channel]  # for any other channel the rate is null


# SPEC §5, row for row. The delivered and bounce rates are over what was handed to the MTA
# (`processed`): in LEGACY Delivered % reads 100 % from the first relayed message and only goes
# down; a stopped delivery's rates are over what it relayed. The open and click rates are over
# the logs in status SENT, and count only recipients whose log is SENT (models/tracking.py), so
# that no rate exceeds 100 %.
RATES: dict[str, Rate] = {
    "delivered_rate": Rate("sent", "processed", ALL_CHANNELS),
    "bounces_and_errors_rate": Rate("failed", "processed", ALL_CHANNELS),
    "open_rate": Rate("opens", "sent", EMAIL_ONLY),
    "click_through_rate": Rate("clicks", "sent", EMAIL_ONLY),
    "complaint_rate": Rate("complaints", "sent", ALL_CHANNELS),  # issue 15
}


@dataclass(frozen=True)
class Kpis:
    to_send: int
    processed: int
    sent: int
    pending: int
    failed: int
    opens: int  # distinct recipients whose log is SENT and who opened (or clicked)
    clicks: int  # distinct recipients whose log is SENT and who clicked
    stats_computed_at: datetime | None
    complaints: int = 0  # recipients who reported a message as spam
    unsubscriptions: int = 0  # recipients who unsubscribed
    channel: Channel = Channel.EMAIL

    def rate(self, name: str) -> float | None:
        """The rate `name` of RATES, or None when it does not apply to the channel."""
        spec = RATES[name]
        if self.channel not in spec.channels:
            return None
        return rate(getattr(self, spec.numerator), getattr(self, spec.denominator))

    @property
    def delivered_rate(self) -> float:
        return self.rate("delivered_rate") or 0.0

    @property
    def bounces_and_errors_rate(self) -> float:
        return self.rate("bounces_and_errors_rate") or 0.0

    @property
    def open_rate(self) -> float | None:
        return self.rate("open_rate")

    @property
    def click_through_rate(self) -> float | None:
        return self.rate("click_through_rate")

    @property
    def complaint_rate(self) -> float:
        return self.rate("complaint_rate") or 0.0

    @property
    def pending_share(self) -> float:
        """The share of `processed` still PENDING (EFS: relayed, no report yet). With the
        delivered and bounce rates it makes 100 % of processed, give or take the rounding."""
        return rate(self.pending, self.processed)

    def figures(self) -> tuple[int, ...]:
        """What a dashboard sees change (the time of the last recount is not a change)."""
        return tuple(getattr(self, name) for name in COUNTERS)


# The stored counters, in the order of `Kpis.figures()` (and of the columns of a history point).
COUNTERS: tuple[str, ...] = (
    "to_send",
    "processed",
    "sent",
    "pending",
    "failed",
    "opens",
    "clicks",
    "complaints",
    "unsubscriptions",
)


def sum_kpis(parts: Iterable[Kpis], channel: Channel, at: datetime | None = None) -> Kpis:
    """A recurring delivery's KPIs: the sums of its occurrences' counters (SPEC §5), rates
    derived from the sums like any other delivery's."""
    total = Kpis(0, 0, 0, 0, 0, 0, 0, at, channel=channel)
    for part in parts:
        total = replace(
            total, **{name: getattr(total, name) + getattr(part, name) for name in COUNTERS}
        )
    return total


assert set(COUNTERS) <= {f.name for f in fields(Kpis)}
