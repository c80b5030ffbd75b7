"""Preparation (SPEC §3): check the content, resolve the audience, exclude, create the logs.

Exclusions, in the order they are checked for each recipient: no address for the channel,
an invalid address, an address on the deny list or in quarantine, an address already targeted
by this delivery (the first profile keeps it). Each excluded recipient gets a sending log with
status IGNORED, `excluded` set and the reason, so that the exclusion causes are a GROUP BY.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.address_status import blocked_addresses
from models.addresses import address_for
from models.delivery import Delivery
from models.enums import Channel, FailureReason, FailureType
from models.links import LinkKind, anchors
from models.sql import Sql, in_list
from models.template import FIELDS, UNSUBSCRIBE_FIELD, unknown_fields
from models.timed import due_times


def check_content(channel: Channel, subject: str | None, body: str) -> tuple[list[str], list[str]]:
    """The product's control rules: (errors that block, warnings that do not)."""
    errors: list[str] = []
    warnings: list[str] = []
    if not body.strip():
        errors.append("the body is empty")
    unknown = unknown_fields(body + " " + (subject or ""))
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in [*FIELDS, UNSUBSCRIBE_FIELD])
        fields = ", ".join("{{" + name + "}}" for name in unknown)
        errors.append(f"unknown personalisation field(s) {fields} (known: {known})")
    if channel is Channel.EMAIL:
        if not (subject or "").strip():
            errors.append("an email needs a subject")
        found = anchors(body)
        for anchor in found:
            if anchor.kind is LinkKind.FORBIDDEN:
                errors.append(
                    f"the link {anchor.url!r} is not allowed"
                    " (javascript:, data: and vbscript: links are never sent)"
                )
            elif anchor.kind is LinkKind.INVALID:
                errors.append(f"the link {anchor.url!r} is not a valid URL")
        if not any("unsubscribe" in (a.url + " " + a.text).lower() for a in found):
            warnings.append("the email has no unsubscribe link")
    return errors, warnings


@dataclass(frozen=True)
class Target:
    profile_id: int
    address: str | None
    reason: FailureReason | None = None


def resolve_targets(
    channel: Channel, profiles: list[tuple[int, str | None, str | None]], blocked: dict[str, str]
) -> list[Target]:
    seen: set[str] = set()
    targets: list[Target] = []
    for profile_id, email, phone in profiles:
        address, valid = address_for(channel, email, phone)
        reason: FailureReason | None = None
        if address is None:
            reason = FailureReason.ADDRESS_EMPTY
        elif not valid:
            reason = FailureReason.INVALID_ADDRESS
        elif address in blocked:
            reason = FailureReason(blocked[address])
        elif address in seen:
            reason = FailureReason.DUPLICATE
        if address is not None and reason is None:
            seen.add(address)
        targets.append(Target(profile_id, address, reason))
    return targets


EXCLUSION_TYPE = {
    FailureReason.ADDRESS_EMPTY: FailureType.HARD,
    FailureReason.INVALID_ADDRESS: FailureType.HARD,
    FailureReason.QUARANTINED_ADDRESS: FailureType.HARD,
    FailureReason.DENYLISTED: FailureType.HARD,
    FailureReason.DUPLICATE: FailureType.IGNORED,
}


def audience_warnings(audience: dict[str, Any]) -> list[str]:
    """What an operator should know about the audience as given: ids it listed more than once."""
    repeated = int(audience.get("repeated", 0))
    if not repeated:
        return []
    return [f"{repeated} repeated profileIds collapsed: each profile is targeted once"]


async def audience_profiles(
    sql: Sql, audience: dict[str, Any]
) -> list[tuple[int, str | None, str | None]]:
    if audience.get("all"):
        rows = await sql.rows("SELECT id, email, phone FROM profile ORDER BY id")
    else:
        # Distinct: audiences stored before repeats were collapsed at creation may hold some.
        ids = list(dict.fromkeys(int(i) for i in audience.get("profileIds", [])))
        rows = []
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            rows += await sql.rows(
                "SELECT id, email, phone FROM profile WHERE id IN ("
                + ",".join("?" * len(chunk))
                + ")",
                chunk,
            )
        by_id = {r["id"]: r for r in rows}
        rows = [by_id[i] for i in ids if i in by_id]
    return [(r["id"], r["email"], r["phone"]) for r in rows]


async def create_logs(sql: Sql, delivery: Delivery, *, insert: bool = True) -> tuple[int, int]:
    """Replace the delivery's logs by the freshly resolved audience; returns (to send, excluded).

    With insert=False only the counts are computed (a recurring delivery's template).
    """
    await sql.execute("DELETE FROM sending_log WHERE delivery_id = ?", [delivery.id])
    profiles = await audience_profiles(sql, delivery.audience)
    targets = resolve_targets(delivery.channel, profiles, await blocked_addresses(sql))
    excluded = sum(1 for t in targets if t.reason)
    if not insert:
        return len(targets) - excluded, excluded
    await insert_logs(sql, delivery, targets)
    return len(targets) - excluded, excluded


async def append_logs(sql: Sql, delivery: Delivery) -> tuple[int, int, int]:
    """One more execution of a recurring delivery joins its period's occurrence (aggregation
    periods, docs/scheduling.md): the audience is resolved again, and a recipient whose address
    the occurrence already holds (sent, or about to be) is excluded as DUPLICATE.
    Returns (to send, excluded, of which duplicates)."""
    held = {
        r["address"]
        for r in await sql.rows(
            "SELECT DISTINCT address FROM sending_log WHERE delivery_id = ? AND excluded = ?",
            [delivery.id, False],
        )
    }
    profiles = await audience_profiles(sql, delivery.audience)
    targets = resolve_targets(delivery.channel, profiles, await blocked_addresses(sql))
    duplicates = 0
    for i, t in enumerate(targets):
        if t.reason is None and t.address in held:
            targets[i] = Target(t.profile_id, t.address, FailureReason.DUPLICATE)
            duplicates += 1
    await insert_logs(sql, delivery, targets)
    excluded = sum(1 for t in targets if t.reason)
    return len(targets) - excluded, excluded, duplicates


async def insert_logs(sql: Sql, delivery: Delivery, targets: list[Target]) -> None:
    """A log per target: TO_SEND, or IGNORED and excluded with its reason."""
    # Sent in each recipient's zone or in waves: each message's due time (models/timed.py).
    dues = await due_times(sql, delivery, [(t.profile_id, t.reason is not None) for t in targets])
    rows = [
        [
            delivery.id,
            t.profile_id,
            t.address or "",
            "IGNORED" if t.reason else "TO_SEND",
            t.reason is not None,
            EXCLUSION_TYPE[t.reason].value if t.reason else None,
            t.reason.value if t.reason else None,
            0,
            due,
        ]
        for t, due in zip(targets, dues, strict=True)
    ]
    await sql.many(
        "INSERT INTO sending_log (delivery_id, profile_id, address, status, excluded,"
        " failure_type, failure_reason, retries, due_at) VALUES (?,?,?,?,?,?,?,?,?)",
        rows,
    )


async def exclusion_causes(delivery_ids: Sequence[int]) -> dict[int, list[tuple[str, int]]]:
    """Each delivery's exclusions by reason, in reason order: one query for them all."""
    causes: dict[int, list[tuple[str, int]]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return causes
    rows = await Sql().rows(
        "SELECT delivery_id, failure_reason, COUNT(*) AS n FROM sending_log WHERE delivery_id IN"
        f" {in_list(delivery_ids)} AND excluded = ? GROUP BY delivery_id, failure_reason"
        " ORDER BY failure_reason",
        [*delivery_ids, True],
    )
    for r in rows:
        causes[int(r["delivery_id"])].append((r["failure_reason"], int(r["n"])))
    return causes
