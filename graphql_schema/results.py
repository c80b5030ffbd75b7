"""Answers of queries, kept until the database changes: a page that nothing changed is not
executed again.

A dashboard asks for the same pages again and again (every operator's list, every refresh,
every tab); executing the 50-delivery page is about 800 fields of graphql-core plus the reads
(bench/page_cpu.py). Here a query's answer is kept under what decides it, and served again
while the database's version (models/data_version.py) has not moved:

- the key: the operation (its syntax tree: the parse cache hands the same one for the same
  text, and the entry holds it so its id is not reused), the variables, the operator and its
  roles, and the request context's settings (feedback mode, tracking URLs);
- kept only if the execution had no error, read no clock (models/clock.py `watching`: a
  contact date or an allowed action can change with no write) and the version read after it
  equals the version read before (no commit in between: the answer is that state's);
- served only while the version equals the one it was kept with. Every hit still costs one
  read of the version (a single-row SELECT), so a write anywhere, by any process, is seen.

Mutations and subscriptions never go through here. Queries whose document is not in the parse
cache (over 2,048 characters: graphql_schema/caches.py) are parsed anew every time, so their
operation never matches an entry. Bounded in entries and in bytes (ResultCache); size 0 turns
it off.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, OperationDefinitionNode

from graphql_schema.shared_data import SharedData
from models.clock import watching
from models.data_version import data_version

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Entry:
    operation: OperationDefinitionNode
    version: tuple[Any, ...]
    data: SharedData
    size: int  # bytes of its JSON


class ResultCache:
    """At most `size` answers and `max_bytes` of their JSON (least recently used out); an
    answer over a sixteenth of `max_bytes` is not kept, so a few big pages cannot push out
    everything else, nor make the cache hold more than its budget."""

    def __init__(self, size: int, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.size, self.max_bytes = size, max_bytes
        self.entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self.bytes = self.hits = self.misses = 0

    async def serve(self, executor: Any, key: tuple[Any, ...], execute: Any) -> Any:
        """The kept answer of `key` if the database has not changed since, else `execute()`'s
        (an ExecutionResult, or an awaitable of one), kept if it may be."""
        version = await _version()
        entry = self.entries.get(key)
        if entry is not None and entry.operation is executor.operation and entry.version == version:
            self.entries.move_to_end(key)
            self.hits += 1
            return ExecutionResult(entry.data, None)
        self.misses += 1
        with watching() as clock:
            result = execute()
            if executor.is_awaitable(result):
                result = await result
        if (
            version is not None
            and isinstance(result, ExecutionResult)
            and not result.errors
            and result.data is not None
            and not clock.read
            and await _version() == version
        ):
            result.data = data = SharedData(result.data)
            self.keep(key, _Entry(executor.operation, version, data, len(data.json())))
        return result

    def keep(self, key: tuple[Any, ...], entry: _Entry) -> None:
        if entry.size > self.max_bytes // 16:
            return
        old = self.entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self.entries[key] = entry
        self.bytes += entry.size
        while len(self.entries) > self.size or self.bytes > self.max_bytes:
            self.bytes -= self.entries.popitem(last=False)[1].size


async def _version() -> tuple[Any, ...] | None:
    """The database's version, or None if it cannot be read now: then nothing is served from
    the cache nor kept (the query itself says what is wrong with the database, if anything)."""
    try:
        return await data_version()
    except Exception:
        log.debug("no data version: the query runs uncached", exc_info=True)
        return None


def key_of(executor: Any, context: Any) -> tuple[Any, ...]:
    """What decides a query's answer besides the database (see the module's docstring): what
    subscribers must share to share an event's result (the operation, the variables, the
    roles: graphql_schema/execution.py), plus the operator itself (`me`) and the context's
    settings."""
    operator = context.operator
    return (
        *executor.share_key(),
        operator.id if operator is not None else None,
        context.default_mode,
        context.tracker,
    )
