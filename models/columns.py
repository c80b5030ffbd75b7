"""Rows with some columns only, for list pages that show a few of a wide table's columns.

A delivery has about 60 columns; the dashboard's page shows a dozen of them. Reading whole rows,
tortoise converts every column of every row (two timestamps parsed, two JSON columns decoded)
and, on SQLite, looks each column up by name in the driver's row: a page of 50 deliveries cost
about 5.9 ms of CPU that way, 0.9 ms with the dozen columns (bench/RESULTS.md, "Fast lists").

The rows are partial model instances, as tortoise's own `.only()` makes them (which costs
twice as much): the columns not read are absent, so reading one raises AttributeError rather
than answering a wrong value, and tortoise refuses to save such a row.
"""

from collections.abc import Sequence
from typing import TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

M = TypeVar("M", bound=Model)


async def read_columns(query: QuerySet[M], columns: Sequence[str]) -> list[M]:
    """The rows of `query` with only `columns` (and the primary key) read."""
    model = query.model
    pk = model._meta.pk_attr
    names = tuple(dict.fromkeys((pk, *columns)))
    return [partial_row(model, names, values) for values in await query.values_list(*names)]


def partial_row(model: type[M], names: Sequence[str], values: Sequence[object]) -> M:
    """A row of `model` holding `values` of the columns `names` (converted as tortoise reads
    them), marked as tortoise marks a row read with `.only()`."""
    row = model.__new__(model)
    attributes = row.__dict__
    attributes.update(zip(names, values, strict=True))
    # what Model._init_from_db sets besides the columns
    attributes["_partial"] = True
    attributes["_saved_in_db"] = True
    attributes["_custom_generated_pk"] = False
    attributes["_await_when_save"] = {}
    return row
