"""The progress of a CSV upload of profiles (POST /profiles/import, docs/bulk.md)."""

import re
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.permissions import needs, operator_of
from models.enums import Role
from models.errors import BadInput

IMPORT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


@strawberry.enum(description="Where a CSV upload of profiles is.")
class ProfileImportState(StrEnum):
    WAITING = "WAITING"  # nothing heard of this upload yet (the first message)
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"  # stopped before the end of the file: `error` says why


@strawberry.type(
    description="A CSV upload's figures so far: lines read (the header included), profiles"
    " created and updated (rows committed), rows rejected."
)
class ProfileImportProgress:
    id: strawberry.ID = strawberry.field(description="The upload's importId: a cache's key.")
    import_id: strawberry.ID
    state: ProfileImportState
    lines: int
    created: int
    updated: int
    rejected: int
    error: str | None
    at: datetime

    @classmethod
    def of(cls, import_id: str, event: dict[str, Any]) -> "ProfileImportProgress":
        return cls(
            id=strawberry.ID(import_id),
            import_id=strawberry.ID(import_id),
            state=ProfileImportState(event.get("state", "WAITING")),
            lines=int(event.get("lines", 0)),
            created=int(event.get("created", 0)),
            updated=int(event.get("updated", 0)),
            rejected=int(event.get("rejected", 0)),
            error=event.get("error"),
            at=datetime.now(UTC),
        )


@strawberry.type
class ProfileSubscriptions:
    @strawberry.subscription(
        description="The progress of the CSV upload sent with `?importId=` this id (by this"
        " operator, or any for an administrator): WAITING at once, once listening (upload"
        " after it), then an update per committed batch; completes after DONE or FAILED.",
        extensions=needs(Role.PREPARE_DELIVERIES),
    )
    async def profile_import_progress(
        self, info: Info[Context, None], import_id: strawberry.ID
    ) -> AsyncGenerator[ProfileImportProgress, None]:
        operator = operator_of(info)
        if not re.fullmatch(IMPORT_ID_PATTERN, str(import_id)):
            raise BadInput(f"importId must match {IMPORT_ID_PATTERN}")
        source = info.context.imports
        assert source is not None, "the server gives every context the imports' progress"
        admin = operator.has_role(Role.ADMINISTRATION)
        async with source.follow(str(import_id)) as events:
            yield ProfileImportProgress.of(str(import_id), {})
            async for event in events:
                if not admin and event.get("operatorId") != operator.id:
                    continue  # another operator's upload that chose the same id
                yield ProfileImportProgress.of(str(import_id), event)
                if event.get("state") in ("DONE", "FAILED"):
                    return
