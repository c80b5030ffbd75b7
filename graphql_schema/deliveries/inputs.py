"""Inputs for creating and editing deliveries."""

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import UNSET
from strawberry.types.base import StrawberryOptional

from graphql_schema.enums import Channel, FeedbackMode
from graphql_schema.pagination import parse_id
from models.errors import BadInput
from models.lifecycle import DeliveryDraft, check_audience_size


@strawberry.input
class AudienceInput:
    profile_ids: list[strawberry.ID] | None = None
    all_profiles: bool | None = strawberry.field(
        default=None, description="Target every profile (instead of profileIds)."
    )


@strawberry.input(description="A recurring delivery: each occurrence is a delivery of its own.")
class RecurrenceInput:
    interval_seconds: int = strawberry.field(description="3600 hourly, 86400 daily, ...")
    count: int | None = strawberry.field(default=None, description="None: until stopped.")
    confirm_each_occurrence: bool = strawberry.field(
        default=False,
        description="Each occurrence waits in PENDING_CONFIRMATION until confirmSend.",
    )


@strawberry.input
class CreateDeliveryInput:
    label: str
    channel: Channel
    body: str
    audience: AudienceInput
    subject: str | None = None
    scheduled_at: datetime | None = None
    validity_period: int | None = None
    feedback_mode: FeedbackMode | None = None
    require_approval: bool | None = None
    require_proof: bool | None = strawberry.field(
        default=None,
        description="confirmSend waits for a proof sent since the last edit. Omitted in an"
        " update: unchanged.",
    )
    recurrence: RecurrenceInput | None = None

    def draft(self) -> DeliveryDraft:
        recurrence = self.recurrence
        check_audience_size(len(self.audience.profile_ids or []))  # before parsing each id
        return DeliveryDraft(
            label=self.label,
            channel=self.channel,
            body=self.body,
            subject=self.subject,
            profile_ids=[parse_id(i, "profile") for i in self.audience.profile_ids or []],
            all_profiles=bool(self.audience.all_profiles),
            scheduled_at=self.scheduled_at,
            validity_period=self.validity_period,
            feedback_mode=self.feedback_mode,
            require_approval=self.require_approval,
            require_proof=self.require_proof,
            recurrence_interval=recurrence.interval_seconds if recurrence else None,
            recurrence_count=recurrence.count if recurrence else None,
            confirm_each_occurrence=recurrence.confirm_each_occurrence if recurrence else False,
        )


def input_of(draft: DeliveryDraft) -> CreateDeliveryInput:
    """A delivery's current content as the input that would create it: what a patch applies
    its given fields to. A field added to CreateDeliveryInput is read from the draft field of
    the same name."""
    recurrence = None
    if draft.recurrence_interval is not None:
        recurrence = RecurrenceInput(
            interval_seconds=draft.recurrence_interval,
            count=draft.recurrence_count,
            confirm_each_occurrence=draft.confirm_each_occurrence,
        )
    audience = AudienceInput(
        profile_ids=None
        if draft.all_profiles
        else [strawberry.ID(str(i)) for i in draft.profile_ids or []],
        all_profiles=True if draft.all_profiles else None,
    )
    special = {"audience": audience, "recurrence": recurrence, "require_approval": None}
    values: dict[str, Any] = {
        name: special[name] if name in special else getattr(draft, name, None)
        for name in _field_names(CreateDeliveryInput)
    }
    return CreateDeliveryInput(**values)


def _field_names(kind: type) -> list[str]:
    return [f.python_name for f in kind.__strawberry_definition__.fields]  # type: ignore[attr-defined]


def _patch_type() -> type:
    """UpdateDeliveryInput: CreateDeliveryInput's fields, each optional and left out by
    default, so that a field added to one is in the other."""
    namespace: dict[str, object] = {"__annotations__": {}}
    for f in CreateDeliveryInput.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        kind = f.type_annotation.annotation if f.type_annotation else f.type
        namespace["__annotations__"][f.python_name] = kind | None  # type: ignore[index]
        namespace[f.python_name] = strawberry.field(default=UNSET, description=f.description)
    return strawberry.input(
        type("UpdateDeliveryInput", (), namespace),
        description="The fields to change; every field left out keeps its value (null clears"
        " an optional one). The delivery goes back to DRAFT as on any edit.",
    )


UpdateDeliveryInput = _patch_type()


def patch(given: object) -> Callable[[DeliveryDraft], DeliveryDraft]:
    """The change an UpdateDeliveryInput makes to a delivery's draft (models/lifecycle.py:
    update_delivery applies it under the row lock)."""
    changes = {
        name: value
        for name in _field_names(CreateDeliveryInput)
        if (value := getattr(given, name)) is not UNSET
    }
    for name, value in changes.items():
        if value is None and name in REQUIRED:
            raise BadInput(f"{name} cannot be null: leave it out to keep it")

    def apply(current: DeliveryDraft) -> DeliveryDraft:
        merged = dataclasses.replace(input_of(current), **changes)
        return merged.draft()

    return apply


REQUIRED = frozenset(
    f.python_name
    for f in CreateDeliveryInput.__strawberry_definition__.fields  # type: ignore[attr-defined]
    if not isinstance(f.type, StrawberryOptional)
)
