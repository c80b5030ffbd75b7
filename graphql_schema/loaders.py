"""Data loaders: the per-row look-ups of one execution, batched into a few queries.

A page of 50 deliveries that selects `exclusions` and `auditTrail { totalCount edges ... }` would
otherwise read the database twice per delivery and field; through these loaders it reads once per
field for the whole page (models/batches.py). A fresh set is made for every operation and every
event of a subscription (graphql_schema/schema.py), never per WebSocket connection: a loader
remembers what it loaded, and a connection lives for hours.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from models import audit as m_audit
from models import kpi_history as m_history
from models import proofs as m_proofs
from models import sending_log as m_log
from models.batches import PageRequest, child_counts, child_pages
from models.delivery import Delivery
from models.keyset import Key, Page, Window
from models.operator import Operator
from models.preparation import exclusion_causes
from models.profile import Profile

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class PageKey:
    parent: int
    window: Window
    where: tuple[tuple[str, Any], ...] = ()


def _pages(
    model: type[M], column: str, *, newest_first: bool, counted: bool = True
) -> DataLoader[PageKey, Page[M]]:
    """Pages of `model` rows by their `column` parent, with each parent's total when
    `counted` (a connection's totalCount)."""

    async def load(keys: list[PageKey]) -> list[Page[M]]:
        requests = [
            PageRequest(
                k.parent,
                k.window.size + 1,
                _id(k.window.after),
                k.where,
                _id(k.window.before),
                k.window.backward,
            )
            for k in keys
        ]
        found = await child_pages(model, column, requests, newest_first=newest_first)
        totals: dict[tuple[Any, ...], dict[int, int]] = {}
        for where in dict.fromkeys(k.where for k in keys) if counted else ():
            parents = list(dict.fromkeys(k.parent for k in keys if k.where == where))
            totals[where] = await child_counts(model, column, parents, dict(where))
        pages = []
        for key, request in zip(keys, requests, strict=True):
            rows = found.get(request, [])
            page = rows[: key.window.size]
            if key.window.backward:
                page.reverse()
            total = totals[key.where][key.parent] if counted else 0
            pages.append(Page(page, len(rows) > key.window.size, total))
        return pages

    return DataLoader(load_fn=load)


def _id(key: Key | None) -> int | None:
    return None if key is None else int(key[0])


async def _load_profiles(ids: list[int]) -> list[Profile | None]:
    found = {p.id: p for p in await Profile.filter(id__in=ids)}
    return [found.get(i) for i in ids]


async def _load_deliveries(ids: list[int]) -> list[Delivery | None]:
    found = {d.id: d for d in await Delivery.filter(id__in=ids)}
    return [found.get(i) for i in ids]


async def _load_operators(names: list[str]) -> list[Operator | None]:
    """Operators by name: deliveries name who confirmed, approved or stopped them (names are
    unique and never reused, revoked ones included)."""
    found = {o.name: o for o in await Operator.filter(name__in=names)}
    return [found.get(n) for n in names]


async def _load_exclusions(ids: list[int]) -> list[list[tuple[str, int]]]:
    causes = await exclusion_causes(ids)
    return [causes[i] for i in ids]


class Loaders:
    """One execution's loaders (see the module's docstring for why never longer), each made
    when first used: most executions use none, and a subscription's context lives as long as
    the subscription (a thousand subscriptions held 50,000 objects more with eager loaders,
    which every full garbage collection walks)."""

    @cached_property
    def profiles(self) -> DataLoader[int, Profile | None]:
        return DataLoader(load_fn=_load_profiles)

    @cached_property
    def deliveries(self) -> DataLoader[int, Delivery | None]:
        return DataLoader(load_fn=_load_deliveries)

    @cached_property
    def operators(self) -> DataLoader[str, Operator | None]:
        return DataLoader(load_fn=_load_operators)

    @cached_property
    def occurrences(self) -> DataLoader[PageKey, Page[Delivery]]:
        """A recurring delivery's occurrences, newest first."""
        return _pages(Delivery, "parent_id", newest_first=True)

    @cached_property
    def exclusions(self) -> DataLoader[int, list[tuple[str, int]]]:
        return DataLoader(load_fn=_load_exclusions)

    @cached_property
    def audit_trails(self) -> DataLoader[PageKey, Page[m_audit.AuditEvent]]:
        return _pages(m_audit.AuditEvent, "delivery_id", newest_first=False)

    @cached_property
    def sending_logs(self) -> DataLoader[PageKey, Page[m_log.SendingLog]]:
        return _pages(m_log.SendingLog, "delivery_id", newest_first=False)

    @cached_property
    def histories(self) -> DataLoader[PageKey, Page[m_log.SendingLog]]:
        """A profile's messages, newest first (the caller's `where` leaves out the recipients
        excluded at preparation)."""
        return _pages(m_log.SendingLog, "profile_id", newest_first=True, counted=False)

    @cached_property
    def history_pages(self) -> DataLoader[PageKey, Page[m_log.SendingLog]]:
        """The same, counted: Profile.historyConnection's totalCount."""
        return _pages(m_log.SendingLog, "profile_id", newest_first=True)

    @cached_property
    def proofs(self) -> DataLoader[PageKey, Page[m_proofs.Proof]]:
        """A delivery's proofs, newest first."""
        return _pages(m_proofs.Proof, "delivery_id", newest_first=True, counted=False)

    @cached_property
    def kpi_histories(self) -> DataLoader[PageKey, Page[m_history.KpiPoint]]:
        """A delivery's KPI points, newest first (written in slot order, so by id)."""
        return _pages(m_history.KpiPoint, "delivery_id", newest_first=True, counted=False)
