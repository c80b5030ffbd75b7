"""`POST /profiles/import`: profiles from a CSV file, streamed (docs/bulk.md).

A plain HTTP endpoint rather than the GraphQL multipart request spec: strawberry reads a
multipart request's files whole (to memory or a temporary file) before the resolver runs, so
neither the streaming nor the refusal before reading could be had; here the operator and role
are checked from the headers first, and the body is then read as it arrives, a batch of rows
written per transaction while the next is read, with memory bounded by the batch.

Each row is read as a `ProfileInput` and checked as `importProfiles` checks it
(graphql_schema/profiles/csv_rows.py); a refused row is reported with its line and reason and
the others go on. Batches commit in file order; a row is one statement, so it is written whole
or not at all. What stops an upload (a bad header, text that is not UTF-8, a record that never
ends, a body over PROFILE_IMPORT_MAX_BYTES, a client that goes away) leaves the batches
committed before it and nothing after: the answer says through which line, and sending the
file again is harmless (rows are upserts by email).
"""

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphql_schema.profiles.csv_rows import CsvHeaderError, ProfileRows
from graphql_schema.profiles.subscriptions import IMPORT_ID_PATTERN
from models.enums import Role
from models.errors import DomainError, storage_failure
from models.operator import Operator
from models.profile import ProfileData, UpsertCounts, upsert_profiles
from server.http.csv_stream import CsvStream, CsvStreamError
from server.http.graphql_auth import authenticate
from server.http.graphql_http import JSON
from server.http.token_cache import TokenCache
from server.import_progress import ImportProgress
from server.settings import Settings

PATH = "/profiles/import"
CSV_TYPES = ("text/csv", "application/csv")
REPORT_MAX = 1000  # rejected rows listed in the answer; all of them are counted
ERROR_CHARS = 1000  # of an error in a progress event (PostgreSQL's NOTIFY takes < 8000 bytes)
FORBIDDEN = "You are not allowed to import profiles: the PREPARE_DELIVERIES role is required."


@dataclass
class Report:
    import_id: str
    lines: int = 0  # lines read, the header's included
    committed_through: int = 0  # every row up to this line is written (or rejected)
    created: int = 0
    updated: int = 0
    rejected_count: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < REPORT_MAX:
            self.rejected.append({"line": line, "reason": reason})

    def body(self) -> dict[str, Any]:
        return {
            "importId": self.import_id,
            "lines": self.lines,
            "committedThroughLine": self.committed_through,
            "created": self.created,
            "updated": self.updated,
            "rejectedCount": self.rejected_count,
            "rejected": self.rejected,
            "rejectedListed": len(self.rejected),
        }


class Stop(Exception):
    """The upload stops here: `status` and `message` are the answer's."""

    def __init__(self, status: int, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _error(status: int, message: str, code: str, report: Report | None = None) -> Response:
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    if report is not None:
        body.update(report.body())
    return JSONResponse(body, status, media_type=JSON)


class ProfileImportEndpoint:
    def __init__(
        self,
        settings: Settings,
        schema: strawberry.Schema,
        tokens: TokenCache,
        progress: ImportProgress,
    ) -> None:
        self.settings, self.schema, self.tokens, self.progress = settings, schema, tokens, progress
        self.routes: list[BaseRoute] = [Route(PATH, self.upload, methods=["POST"])]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def upload(self, request: Request) -> Response:
        # Everything about the caller and the request's headers first: nothing is read before.
        operator = await authenticate(request, self.tokens, JSON)
        if not isinstance(operator, Operator):
            return operator
        if not operator.has_role(Role.PREPARE_DELIVERIES):
            return _error(403, FORBIDDEN, "FORBIDDEN")
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in CSV_TYPES:
            return _error(
                415,
                f"send the CSV file itself as the body, with Content-Type: text/csv (got"
                f" {media or 'none'}); with curl: --data-binary @profiles.csv",
                "BAD_USER_INPUT",
            )
        limit = self.settings.profile_import_max_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, _too_large(limit), "BAD_USER_INPUT")
        import_id = request.query_params.get("importId") or uuid.uuid4().hex
        if not re.fullmatch(IMPORT_ID_PATTERN, import_id):
            return _error(400, f"importId must match {IMPORT_ID_PATTERN}", "BAD_USER_INPUT")
        report = Report(import_id)
        run = _Upload(self, operator, report)
        try:
            await run.read(request)
        except Stop as stop:
            await run.finish(stop.message)
            return _error(stop.status, stop.message, stop.code, report)
        except ClientDisconnect:
            await run.finish("the client went away before the end of the file")
            return Response(status_code=400)  # nobody reads it
        except Exception as error:
            await run.finish("the upload failed on the server")
            storage = storage_failure(error)  # the database away or full: say so, as GraphQL does
            if storage is None:
                raise
            return _error(503, storage, "INTERNAL_SERVER_ERROR", report)
        await run.finish(None)
        return JSONResponse(report.body(), media_type=JSON)


def _too_large(limit: int) -> str:
    return (
        f"the file is larger than {limit} bytes (PROFILE_IMPORT_MAX_BYTES): split it, or ask"
        " the operator of the server to raise the limit"
    )


class _Upload:
    """One upload: reads records, batches rows, writes a batch while reading the next."""

    def __init__(self, endpoint: ProfileImportEndpoint, operator: Operator, report: Report) -> None:
        self.endpoint, self.operator, self.report = endpoint, operator, report
        self.settings = endpoint.settings
        self.writing: asyncio.Task[UpsertCounts] | None = None
        self.writing_through = 0

    async def read(self, request: Request) -> None:
        stream = CsvStream(self.settings.profile_import_max_record_chars)
        limit, seen = self.settings.profile_import_max_bytes, 0
        columns: ProfileRows | None = None
        batch: list[ProfileData] = []
        size = self.settings.profile_import_batch_rows
        await self.publish("RUNNING")
        chunks = request.stream()
        done = False
        while not done:
            try:
                chunk = await anext(chunks, None)
            except ClientDisconnect:
                await self.write(batch, self.report.lines)  # what came before is good
                await self.wait()
                raise
            done, over = chunk is None, False
            if chunk is not None:
                seen += len(chunk)
                if seen > limit:  # the lines within the limit are read, then it stops
                    chunk, over = chunk[: len(chunk) - (seen - limit)], True
            try:
                for record in stream.feed(chunk or b"", final=done):
                    self.report.lines = record.line
                    if columns is None:
                        columns = self.header(record.cells, record.error)
                        continue
                    if record.cells is None:
                        self.report.reject(record.line, record.error or "malformed CSV")
                        continue
                    try:
                        batch.append(columns.row(record.cells))
                    except DomainError as error:
                        self.report.reject(record.line, error.message)
                        continue
                    if len(batch) >= size:
                        await self.write(batch, record.line)
                        batch = []
            except CsvStreamError as error:
                await self.write(batch, error.line - 1)  # the rows before the stop are good
                await self.wait()
                raise Stop(400, error.message) from None
            if over:
                await self.write(batch, self.report.lines)
                await self.wait()
                raise Stop(413, _too_large(limit))
        if columns is None:
            raise Stop(400, "the file is empty: its first line must be the header")
        await self.write(batch, self.report.lines)
        await self.wait()

    def header(self, cells: list[str] | None, error: str | None) -> ProfileRows:
        if cells is None:
            raise Stop(400, f"line 1, the header: {error}")
        try:
            return ProfileRows(self.endpoint.schema, cells)
        except CsvHeaderError as failure:
            raise Stop(400, f"line 1, the header: {failure.message}") from None

    async def write(self, rows: list[ProfileData], through: int) -> None:
        """Start writing `rows` once the previous batch is committed (batches commit in order;
        the next is read meanwhile)."""
        await self.wait()
        if rows:
            self.writing = asyncio.ensure_future(upsert_profiles(rows))
        self.writing_through = through

    async def wait(self) -> None:
        if self.writing is not None:
            task, self.writing = self.writing, None
            counts = await task
            self.report.created += counts.created
            self.report.updated += counts.updated
            await self.publish("RUNNING")
        self.report.committed_through = max(self.report.committed_through, self.writing_through)

    async def finish(self, error: str | None) -> None:
        if self.writing is not None:  # a stop while a batch was in writing: let it commit
            try:
                await self.wait()
            except Exception:
                self.writing = None
        await self.publish("FAILED" if error else "DONE", error)

    async def publish(self, state: str, error: str | None = None) -> None:
        r = self.report
        await self.endpoint.progress.publish(
            {
                "importId": r.import_id,
                "operatorId": self.operator.id,
                "state": state,
                "lines": r.lines,
                "created": r.created,
                "updated": r.updated,
                "rejected": r.rejected_count,
                "error": error[:ERROR_CHARS] if error else None,  # an event stays small
            }
        )
