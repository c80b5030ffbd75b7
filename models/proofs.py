"""Proofs and previews: the real message, seen before the irreversible confirm (docs/proofs.md).

A preview is one profile's copy exactly as the MTA path composes it (models/compose.py): its
fields, its tracked links and pixel, with the URLs of its sending log when the delivery is
prepared. A proof is the same copy mailed to a reviewer, its subject prefixed `[Proof #n]`,
with untracked links and no pixel, sent through the configured MTA outside the sending logs:
it never counts (no KPI, no log, no quarantine or deny-list change, no profile history) and
nothing its reader does is recorded. `Proof` rows list them; `requireProof` makes confirmSend
wait for one accepted by the MTA since the last edit (`refusal`, models/lifecycle.py).

Sending one is two transactions around the relay: `start_proof` checks everything, numbers
the proof and renders its messages (a bad address or a wrong status writes and sends
nothing); `finish_proof` records what the MTA answered, the audit event and, when it took at
least one message, that the delivery has had its proof.
"""

import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.addresses import is_valid_email, normalise_email
from models.audit import Actor, AuditAction
from models.audit import record as audit
from models.compose import Rendered, Tracker, compile_email, one_line, personalise
from models.delivery import Delivery
from models.enums import Channel
from models.errors import BadInput, NotFound
from models.lifecycle import check
from models.profile import Profile
from models.sql import Sql
from models.template import compile_text, field_values, render

MAX_PROOF_RECIPIENTS = 20
# Proofs an operator may send in an hour: a proof mails anyone with any content, so a stolen
# preparer's token must not make the server an open relay.
MAX_PROOFS_PER_HOUR = 30
# The log id a proof's unsubscribe URL names: no sending log has it, so the link unsubscribes
# nobody (the page answers "unknown or invalid unsubscribe link").
NO_LOG = 0


class ProofOutcome(StrEnum):
    """What the MTA did with one proof message."""

    PENDING = "PENDING"  # being relayed
    ACCEPTED = "ACCEPTED"
    REFUSED = "REFUSED"  # the MTA answered no (4xx or 5xx)
    NOT_SENT = "NOT_SENT"  # the MTA could not be reached, or the channel is not email


class Proof(Model):
    """One proof: its number in the delivery, who sent it and when, each recipient's outcome.
    `recipients`: [{"address", "profileId", "outcome", "detail"}], in the order given."""

    id = fields.IntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[Delivery] = fields.ForeignKeyField(
        "models.Delivery", related_name="proofs", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    recipients = fields.JSONField[list[dict[str, Any]]](default=list)
    sent_at = fields.DatetimeField()
    sent_by = fields.CharField(max_length=200, null=True)
    operator_id = fields.IntField(null=True)
    # The delivery's version the proof showed: it counts for requireProof only if unchanged.
    version = fields.IntField()

    delivery_id: int

    class Meta:
        table = "proof"
        unique_together = (("delivery_id", "number"),)
        indexes = (("operator_id", "sent_at"),)  # an operator's last hour (the rate limit)

    @property
    def accepted(self) -> int:
        return sum(r["outcome"] == ProofOutcome.ACCEPTED for r in self.recipients)


@dataclass(frozen=True)
class ProofMessage:
    """One proof message, ready for the MTA adapter to encode and relay."""

    address: str
    copy: Rendered
    message_id: str


@dataclass(frozen=True)
class Relayed:
    """The MTA's answer for one proof message; `detail` is a plain phrase, never its text."""

    outcome: ProofOutcome
    detail: str | None = None


class ProofRelay(Protocol):
    """The configured MTA, as the API reaches it (the server provides it)."""

    def __call__(
        self, number: int, messages: Sequence[ProofMessage]
    ) -> Awaitable[list[Relayed]]: ...


@dataclass(frozen=True)
class _Addressee:
    log_id: int
    profile_id: int | None
    address: str


async def _values(log_id: int, profile_id: int | None, address: str) -> dict[str, str | None]:
    """The fields of one recipient, from the same function as the MTA path's."""
    return (await field_values([_Addressee(log_id, profile_id, address)]))[log_id]


# ---- Preview -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    subject: str | None
    html: str | None
    text: str


async def preview_delivery(delivery_id: int, profile_id: int, tracker: Tracker) -> Preview:
    """The profile's copy as the MTA would get it. Once the delivery is prepared and the
    profile targeted (not excluded), the links and pixel carry its sending log, exactly as
    sent; otherwise they name no log (NO_LOG). Either way, following them before the message
    is handed to the MTA records nothing (HANDED_OVER, models/tracking.py)."""
    delivery = await Delivery.get_or_none(id=delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    profile = await Profile.get_or_none(id=profile_id)
    if profile is None:
        raise NotFound(f"no profile with id {profile_id}")
    rows = await Sql().rows(
        "SELECT id, address FROM sending_log WHERE profile_id = ? AND delivery_id = ?"
        " AND status <> ? ORDER BY id LIMIT 1",
        [profile_id, delivery_id, "IGNORED"],
    )
    log_id = int(rows[0]["id"]) if rows else NO_LOG
    address = rows[0]["address"] if rows else (profile.email or "")
    values = await _values(log_id, profile_id, address)
    if delivery.channel is not Channel.EMAIL:  # SMS and push: the text alone
        return Preview(None, None, render(compile_text(delivery.body), values, escape=str))
    email = compile_email(delivery.subject, delivery.body)
    copy = personalise(email, values, tracker, delivery_id, log_id)
    return Preview(copy.subject, copy.html, copy.text)


# ---- Proofs ------------------------------------------------------------------------------------


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _check_address(raw: str) -> str:
    address = normalise_email(raw)
    if address is None or not address.isascii() or not is_valid_email(address):
        raise BadInput(f"{_shown(raw)} is not a valid email address: no proof was sent")
    return address


@dataclass(frozen=True)
class _Target:
    address: str
    profile_id: int | None  # the profile it is rendered as, if any


async def _targets(
    delivery: Delivery, addresses: Sequence[str], profile_ids: Sequence[int]
) -> list[tuple[_Target, dict[str, str | None]]]:
    """Each recipient and the values it is rendered with: a profile as itself, a bare address
    as a sample of the audience (its first recipient), or as itself (only {{email}}) when the
    audience names nobody."""
    count = len(addresses) + len(profile_ids)
    if count == 0:
        raise BadInput("give at least one address or profileId to send a proof to")
    if count > MAX_PROOF_RECIPIENTS:
        raise BadInput(f"a proof goes to at most {MAX_PROOF_RECIPIENTS} recipients (got {count})")
    checked = [_check_address(a) for a in addresses]
    profiles = {p.id: p for p in await Profile.filter(id__in=list(profile_ids))}
    missing = [i for i in profile_ids if i not in profiles]
    if missing:
        raise NotFound(f"no profile with id {', '.join(map(str, missing))}")
    targets: list[tuple[_Target, dict[str, str | None]]] = []
    for profile_id in dict.fromkeys(profile_ids):
        profile = profiles[profile_id]
        if not profile.email:
            raise BadInput(f"profile {profile_id} has no email address: no proof was sent")
        address = _check_address(profile.email)
        targets.append((_Target(address, profile_id), await _values(-1, profile_id, address)))
    if checked:
        sample = await _sample(delivery)
        for address in dict.fromkeys(checked):
            values = dict(sample) if sample else await _values(-1, None, address)
            targets.append((_Target(address, None), values))
    return targets


async def _sample(delivery: Delivery) -> dict[str, str | None] | None:
    """The audience's first recipient's values: its first sending log still to send, or the
    first profile its audience names (a recurring delivery's template has no logs)."""
    rows = await Sql().rows(
        "SELECT id, address, profile_id FROM sending_log WHERE delivery_id = ? AND status = ?"
        " ORDER BY id LIMIT 1",
        [delivery.id, "TO_SEND"],
    )
    if rows:
        return await _values(int(rows[0]["id"]), rows[0]["profile_id"], rows[0]["address"])
    audience = delivery.audience or {}
    ids = audience.get("profileIds") or []
    query = Profile.filter(id=ids[0]) if ids else Profile.all().order_by("id")
    profile = await query.first() if (ids or audience.get("all")) else None
    if profile is None:
        return None
    return await _values(-1, profile.id, profile.email or "")


async def _check_rate(by: Actor, now: datetime) -> None:
    if by.operator_id is None:
        return
    since = now - timedelta(hours=1)
    recent = await Proof.filter(operator_id=by.operator_id, sent_at__gt=since).count()
    if recent >= MAX_PROOFS_PER_HOUR:
        raise BadInput(
            f"at most {MAX_PROOFS_PER_HOUR} proofs an hour per operator: no proof was sent;"
            " try again later"
        )


async def start_proof(
    delivery_id: int,
    addresses: Sequence[str],
    profile_ids: Sequence[int],
    by: Actor,
    tracker: Tracker,
    now: datetime,
) -> tuple[Proof, list[ProofMessage]]:
    """Check, number and render a proof (one transaction); nothing is written if a check
    fails. The caller relays the messages, then calls `finish_proof`."""
    async with in_transaction():
        delivery = await Delivery.select_for_update().get_or_none(id=delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery with id {delivery_id}")
        check(delivery, "send_proof", now)  # READY, and email (models/lifecycle.py)
        targets = await _targets(delivery, addresses, profile_ids)
        await _check_rate(by, now)
        last = await Proof.filter(delivery_id=delivery_id).order_by("-number").first()
        number = (last.number if last else 0) + 1
        proof = await Proof.create(
            delivery_id=delivery_id,
            number=number,
            recipients=[
                {"address": t.address, "profileId": t.profile_id, "outcome": "PENDING"}
                for t, _ in targets
            ],
            sent_at=now,
            sent_by=by.name,
            operator_id=by.operator_id,
            version=delivery.version,
        )
    email = compile_email(delivery.subject, delivery.body)
    messages = []
    for target, values in targets:
        copy = personalise(email, values, tracker, delivery_id, NO_LOG, tracked=False)
        subject = one_line(f"[Proof #{number}] {copy.subject}")
        copy = Rendered(subject, copy.html, copy.text, copy.unsubscribe_url)
        message_id = f"proof.{delivery_id}.{number}.{uuid.uuid4().hex}"
        messages.append(ProofMessage(target.address, copy, message_id))
    return proof, messages


async def finish_proof(proof: Proof, relayed: Sequence[Relayed], by: Actor, now: datetime) -> Proof:
    """Record each message's outcome and the audit event; a proof the MTA took (at least one
    message) of the delivery as it still is satisfies requireProof."""
    async with in_transaction():
        for recipient, answer in zip(proof.recipients, relayed, strict=True):
            recipient["outcome"] = answer.outcome.value
            if answer.detail:
                recipient["detail"] = answer.detail
        await Proof.filter(id=proof.id).update(recipients=proof.recipients)
        delivery = await Delivery.select_for_update().get_or_none(id=proof.delivery_id)
        if delivery is None:
            return proof  # deleted meanwhile: its proofs went with it
        if proof.accepted and delivery.version == proof.version:
            await Delivery.filter(id=delivery.id).update(proofed_at=now)
        counts = {o: sum(r["outcome"] == o for r in proof.recipients) for o in ProofOutcome}
        await audit(
            AuditAction.PROOF_SENT,
            by,
            delivery=delivery,
            at=now,
            detail={
                "number": proof.number,
                "recipients": len(proof.recipients),
                "accepted": counts[ProofOutcome.ACCEPTED],
                "refused": counts[ProofOutcome.REFUSED],
                "notSent": counts[ProofOutcome.NOT_SENT],
                "addresses": [r["address"] for r in proof.recipients],
            },
        )
    return proof
