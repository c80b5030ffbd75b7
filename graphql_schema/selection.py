"""What a list field's rows are asked for: the columns a page reads (models/columns.py).

A page that shows a dozen of a delivery's 60 columns reads those only. Each type that allows it
declares, per field, the columns its value (and its resolver) reads; a selected field that is
not declared makes the page read whole rows, so a new field works undeclared, only slower.
Fragments count like the fields they hold; `@skip` and `@include` are not looked at (a skipped
field's columns are read anyway, which is harmless).
"""

from collections.abc import Iterable, Iterator, Mapping

from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

Columns = Mapping[str, tuple[str, ...]]
EDGES_NODE = ("edges", "node")  # where a connection's rows are


def _named(selections: Iterable[Selection], path: tuple[str, ...]) -> Iterator[str]:
    """The names of the fields selected at `path` under `selections`."""
    for selection in selections:
        if not isinstance(selection, SelectedField):  # a fragment, named or inline
            yield from _named(selection.selections, path)
        elif not path:
            yield selection.name
        elif selection.name == path[0]:
            yield from _named(selection.selections, path[1:])


def columns_for(
    info: Info, declared: Columns, path: tuple[str, ...] = EDGES_NODE
) -> tuple[str, ...] | None:
    """The columns the rows at `path` under the field being resolved need, as `declared` per
    field of their type; None (the whole row) when a selected field is not declared."""
    columns: dict[str, None] = {}
    for name in _named(_under(info), path):
        needed = declared.get(name)
        if needed is None:
            return None
        columns.update(dict.fromkeys(needed))
    return tuple(columns)


def selects(info: Info, name: str) -> bool:
    """Whether the field being resolved selects `name` (e.g. a connection's totalCount)."""
    return name in _named(_under(info), ())


def _under(info: Info) -> list[Selection]:
    """The selections of the field being resolved (of each of its nodes: `a { x } a { y }`)."""
    return [s for field in info.selected_fields for s in getattr(field, "selections", ())]
