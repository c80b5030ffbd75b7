"""A CSV upload's rows read as `ProfileInput`s, so that a file accepts exactly what
`importProfiles` accepts: the header names ProfileInput's fields (GraphQL names: `email`,
`firstName` ...), each cell is coerced as GraphQL coerces that field's value, and the row then
goes through `ProfileInput.data()` and `check_row`, the JSON import's own checks.

An empty cell is a field the row leaves out (an existing profile keeps its value): a CSV cell
cannot tell null from nothing, and blanking a column of a million profiles by accident is worse
than needing `importProfiles` with null to clear one.
"""

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLInputObjectType, GraphQLNamedType, GraphQLScalarType, get_named_type
from graphql.error import GraphQLError
from graphql.utilities import coerce_input_value
from strawberry.types.arguments import convert_argument

from graphql_schema.profiles.types import ProfileInput
from models.errors import BadInput, DomainError
from models.profile import ProfileData, check_row


class CsvHeaderError(BadInput):
    """The first line does not name ProfileInput's fields: nothing is read further."""


class ProfileRows:
    """The columns of one upload, from its header; `row()` turns a line's cells into the row
    to import, or raises BadInput saying why the line is refused."""

    def __init__(self, schema: strawberry.Schema, header: Sequence[str]) -> None:
        graphql_type = schema._schema.type_map.get("ProfileInput")
        assert isinstance(graphql_type, GraphQLInputObjectType)
        definition = ProfileInput.__strawberry_definition__  # type: ignore[attr-defined]
        by_name = {schema.config.name_converter.get_graphql_name(f): f for f in definition.fields}
        names = [cell.strip() for cell in header]
        unknown = [n for n in names if n not in by_name]
        if unknown or not names:
            raise CsvHeaderError(
                f"the header names unknown columns {unknown}: the columns are ProfileInput's"
                f" fields, {', '.join(by_name)} (any of them, in any order, each once)"
            )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CsvHeaderError(f"the header names {', '.join(twice)} more than once")
        self.width = len(names)
        self.columns: list[tuple[str, Callable[[str], Any]]] = []
        for name in names:
            field = by_name[name]
            named: GraphQLNamedType = get_named_type(graphql_type.fields[name].type)
            if isinstance(named, GraphQLScalarType) and named.name == "String":
                self.columns.append((field.python_name, _same))  # what String coercion does
            else:
                self.columns.append((field.python_name, _coercer(schema, graphql_type, name)))

    def row(self, cells: Sequence[str]) -> ProfileData:
        if len(cells) != self.width:
            raise BadInput(f"expected {self.width} fields, found {len(cells)}")
        given: dict[str, Any] = {}
        for (python_name, coerce), cell in zip(self.columns, cells, strict=True):
            if cell:
                given[python_name] = coerce(cell)
        data = ProfileInput(**given).data()
        check_row(data)
        return data


def _same(cell: str) -> str:
    return cell


def _coercer(
    schema: strawberry.Schema, graphql_type: GraphQLInputObjectType, name: str
) -> Callable[[str], Any]:
    """A field of another type (a custom scalar, an enum): graphql-core's coercion of the
    cell as that field's value, then strawberry's conversion to the Python value."""
    field_type = graphql_type.fields[name].type
    definition = ProfileInput.__strawberry_definition__  # type: ignore[attr-defined]
    strawberry_field = next(
        f for f in definition.fields if schema.config.name_converter.get_graphql_name(f) == name
    )

    def coerce(cell: str) -> Any:
        try:
            value = coerce_input_value(cell, field_type)
        except GraphQLError as error:
            raise BadInput(f"{name}: {error.message}") from None
        try:
            return convert_argument(
                value,
                strawberry_field.type,
                schema.schema_converter.scalar_registry,
                schema.config,
            )
        except DomainError:
            raise
        except (TypeError, ValueError) as error:
            raise BadInput(f"{name}: {error}") from None

    return coerce
