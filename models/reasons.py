"""The check that every provider table passes when its module is imported, against SPEC §4's
reason lists (`HARD_REASONS`, `SOFT_REASONS`, `IGNORED_REASONS`: data in models/enums.py, beside
the enums).

A provider table (SMTP replies, SparkPost bounce classes, SES bounce types, the contract's
webhook, DSN status codes, Mailman's bounce detectors) maps what the provider says to a verdict
and a reason. `Bounce` is one such row and checks itself when it is built; a table that is not
made of `Bounce` rows calls `check_table` on its rows. Either way, a table that maps a hard
failure to a soft-only reason (or the reverse) stops the import with a message that names the
table, the row and the lists, so a wrong mapping can never reach a sending log.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from models.enums import (
    HARD_REASONS,
    IGNORED_REASONS,
    SOFT_REASONS,
    FailureReason,
    FeedbackType,
)


class Verdict(StrEnum):
    """What a provider's report means for the log and the address."""

    HARD = "hard"  # a hard bounce: the address goes into quarantine at once
    SOFT = "soft"  # a soft bounce: it counts towards the quarantine threshold
    IGNORED = "ignored"  # recorded, changes nothing (an IGNORED_REASONS reason)


ALLOWED: dict[Verdict, frozenset[FailureReason]] = {
    Verdict.HARD: HARD_REASONS,
    Verdict.SOFT: SOFT_REASONS,
    Verdict.IGNORED: IGNORED_REASONS,
}


class ReasonTableError(ValueError):
    """A provider table breaks SPEC §4's lists (raised at import)."""


def _names(reasons: Iterable[FailureReason]) -> str:
    return ", ".join(sorted(r.value for r in reasons))


def check_row(table: str, key: object, verdict: Verdict, reason: FailureReason) -> None:
    if reason not in ALLOWED[verdict]:
        raise ReasonTableError(
            f"{table}: the row {key!r} maps a {verdict.value} failure to {reason.value}, which"
            f" SPEC §4 does not allow for it ({verdict.value} reasons:"
            f" {_names(ALLOWED[verdict])}); fix the row"
        )


def check_table(table: str, rows: Iterable[tuple[object, Verdict, FailureReason]]) -> None:
    """Check every (key, verdict, reason) row of a provider table; raises ReasonTableError."""
    for key, verdict, reason in rows:
        check_row(table, key, verdict, reason)


@dataclass(frozen=True)
class Bounce:
    """One row of a provider's bounce table. A row that breaks SPEC §4's lists fails when it
    is built, that is when the module holding the table is imported."""

    verdict: Verdict
    reason: FailureReason

    def __post_init__(self) -> None:
        check_row("a bounce table", (self.verdict.value, self.reason.value), *self.pair)

    @property
    def pair(self) -> tuple[Verdict, FailureReason]:
        return self.verdict, self.reason

    @property
    def type(self) -> FeedbackType:
        # An ignored report is stored as a soft bounce; its reason makes it change nothing.
        return (
            FeedbackType.HARD_BOUNCE if self.verdict is Verdict.HARD else FeedbackType.SOFT_BOUNCE
        )

    def as_soft(self) -> "Bounce":
        """For a delay: a soft bounce, with this row's reason when a soft one may carry it."""
        if self.reason in SOFT_REASONS:
            return Bounce(Verdict.SOFT, self.reason)
        return Bounce(Verdict.SOFT, FailureReason.UNDEFINED)


IGNORED_REPORT = Bounce(Verdict.IGNORED, FailureReason.ERROR_IGNORED)
