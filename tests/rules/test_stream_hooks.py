"""A stream's results go through the extension hooks they need, and only those
(graphql_schema/stream_hooks.py): errors are still coded on every result that has some, other
extensions' hooks still see every result. No server: a toy schema, in memory."""

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from graphql_schema.errors import ErrorCodes
from graphql_schema.schema import Schema
from graphql_schema.stream_hooks import StreamRunner
from models.errors import NotFound


@strawberry.type
class Item:
    n: int

    @strawberry.field
    def checked(self) -> int | None:
        if self.n == 2:
            raise NotFound("no 2")
        return self.n


@strawberry.type
class Query:
    dummy: str = ""


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def items(self) -> AsyncGenerator[Item, None]:
        for n in (1, 2, 3):
            yield Item(n=n)


class CountedErrorCodes(ErrorCodes):
    entered: list[int]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        CountedErrorCodes.entered.append(1)
        yield from super().on_stream_result(result)


class SeesAll(SchemaExtension):
    seen: list[Any]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        SeesAll.seen.append(result.data)  # type: ignore[union-attr]
        yield


class WithResults(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        return {"mine": 1}


async def results(*extensions: type[SchemaExtension]) -> list[Any]:
    CountedErrorCodes.entered, SeesAll.seen = [], []
    schema = Schema(query=Query, subscription=Subscription, extensions=list(extensions))
    assert isinstance(schema.create_extensions_runner(None, []), StreamRunner)  # type: ignore[arg-type]
    stream = await schema.subscribe("subscription { items { checked } }")
    return [r async for r in stream]  # type: ignore[union-attr]


async def test_errors_are_coded_and_hooks_on_errors_only_run_for_them_only() -> None:
    got = await results(CountedErrorCodes, SeesAll)
    assert [r.data for r in got] == [{"items": {"checked": n}} for n in (1, None, 3)]
    assert [r.errors is None for r in got] == [True, False, True]
    assert got[1].errors[0].extensions == {"code": "NOT_FOUND"}
    assert CountedErrorCodes.entered == [1]  # the result with an error only
    assert SeesAll.seen == [r.data for r in got]  # any other hook: every result
    assert all(r.extensions == {} for r in got)


async def test_an_extension_s_own_results_are_still_added_to_every_result() -> None:
    got = await results(ErrorCodes, WithResults)
    assert [r.extensions for r in got] == [{"mine": 1}] * 3
    assert got[1].errors[0].extensions == {"code": "NOT_FOUND"}
