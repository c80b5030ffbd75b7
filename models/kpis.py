"""KPI arithmetic (SPEC §5). Counters live on the delivery row; rates are derived, never stored."""

from dataclasses import dataclass
from datetime import datetime


def rate(numerator: int, denominator: int) -> float:
    """A percentage from 0 to 100, rounded to 2 decimals; 0 when the denominator is 0."""
    if denominator <= 0:
        return 0.0
    return round(numerator * 100.0 / denominator, 2)


@dataclass(frozen=True)
class Kpis:
    to_send: int
    processed: int
    sent: int
    pending: int
    failed: int
    opens: int
    clicks: int
    stats_computed_at: datetime | None
    complaints: int = 0  # recipients who reported a message as spam
    unsubscriptions: int = 0  # recipients who unsubscribed

    @property
    def delivered_rate(self) -> float:
        return rate(self.sent, self.to_send)

    @property
    def bounces_and_errors_rate(self) -> float:
        return rate(self.failed, self.to_send)

    @property
    def open_rate(self) -> float:
        return rate(self.opens, self.sent)

    @property
    def click_through_rate(self) -> float:
        return rate(self.clicks, self.sent)

    @property
    def complaint_rate(self) -> float:
        return rate(self.complaints, self.sent)

    def figures(self) -> tuple[int, ...]:
        """What a dashboard sees change (the time of the last recount is not a change)."""
        return (
            self.to_send,
            self.processed,
            self.sent,
            self.pending,
            self.failed,
            self.opens,
            self.clicks,
            self.complaints,
            self.unsubscriptions,
        )
