"""A CSV upload's rows read as `ProfileInput`s, so that a file accepts exactly what
`importProfiles` accepts: the header names ProfileInput's fields (GraphQL names: `email`,
`firstName` ...), each cell is coerced as GraphQL coerces that field's value, and the row then
goes through `ProfileInput.data()` and `check_row`, the JSON import's own checks.

An empty cell is a field the row leaves out (an existing profile keeps its value): a CSV cell
cannot tell null from nothing, and blanking a column of a million profiles by accident is worse
than needing `importProfiles` with null to clear one.
"""

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLInputObjectType, GraphQLNamedType, GraphQLScalarType, get_named_type
from graphql.pyutils import Undefined
from graphql.utilities import coerce_input_value
from graphql.utilities.validate_input_value import validate_input_value
from strawberry.types.arguments import convert_argument

from graphql_schema.profiles.types import ProfileInput
from models.errors import BadInput, DomainError
from models.profile import ProfileData, check_row


class CsvHeaderError(BadInput):
    """The first line does not name ProfileInput's fields: nothing is read further."""


class ProfileRows:
    """The columns of one upload, from its header; `row()` turns a line's cells into the row
    to import, or raises BadInput saying why the line is refused."""

    def __init__(
        self, schema: strawberry.Schema, header: Sequence[str], input_class: Any = ProfileInput
    ) -> None:
        """`input_class`: ProfileInput (another input with a `data()` only in the tests)."""
        definition = input_class.__strawberry_definition__
        graphql_type = schema._schema.type_map.get(definition.name)
        assert isinstance(graphql_type, GraphQLInputObjectType)
        self.input_class = input_class
        by_name = {schema.config.name_converter.get_graphql_name(f): f for f in definition.fields}
        names = [cell.strip() for cell in header]
        unknown = [n for n in names if n not in by_name]
        if unknown or not names:
            shown = [name[:40] for name in unknown[:5]] + (["..."] if len(unknown) > 5 else [])
            raise CsvHeaderError(
                f"the header names unknown columns {shown}: the columns are ProfileInput's"
                f" fields, {', '.join(by_name)} (any of them, in any order, each once)"
            )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CsvHeaderError(f"the header names {', '.join(twice)} more than once")
        self.width = len(names)
        self.names = [by_name[name].python_name for name in names]
        # A string cell is the field's value as it is (what GraphQL's String coercion does).
        self.coerced: list[tuple[str, Callable[[str], Any]]] = []
        for name in names:
            field = by_name[name]
            named: GraphQLNamedType = get_named_type(graphql_type.fields[name].type)
            if not (isinstance(named, GraphQLScalarType) and named.name == "String"):
                self.coerced.append(
                    (field.python_name, _coercer(schema, graphql_type, name, field))
                )

    def row(self, cells: Sequence[str]) -> ProfileData:
        if len(cells) != self.width:
            raise BadInput(f"expected {self.width} fields, found {len(cells)}")
        given = {name: cell for name, cell in zip(self.names, cells, strict=True) if cell}
        for name, coerce in self.coerced:  # the fields that are not strings, if any
            if name in given:
                given[name] = coerce(given[name])
        data: ProfileData = self.input_class(**given).data()
        check_row(data)
        return data


def _coercer(
    schema: strawberry.Schema, graphql_type: GraphQLInputObjectType, name: str, field: Any
) -> Callable[[str], Any]:
    """A field of another type (a number, an enum, a custom scalar): graphql-core's coercion of
    the cell as that field's value, then strawberry's conversion to the Python value."""
    field_type = graphql_type.fields[name].type
    named = get_named_type(field_type)
    # A cell is text: a number or a boolean is read as its JSON spelling first, as a variable
    # would carry it (an enum value or a custom scalar is text there too).
    literal = isinstance(named, GraphQLScalarType) and named.name in ("Int", "Float", "Boolean")

    def coerce(cell: str) -> Any:
        given: Any = cell
        if literal:
            with contextlib.suppress(ValueError):
                given = json.loads(cell)
        value = coerce_input_value(given, field_type)
        if value is Undefined:  # graphql-core says why only when asked
            errors: list[str] = []
            validate_input_value(
                given, field_type, lambda error, _path: errors.append(error.message), True
            )
            raise BadInput(f"{name}: {errors[0] if errors else 'not a valid value'}")
        try:
            return convert_argument(
                value,
                field.type,
                schema.schema_converter.scalar_registry,
                schema.config,
            )
        except DomainError:
            raise
        except (TypeError, ValueError) as error:
            raise BadInput(f"{name}: {error}") from None

    return coerce
