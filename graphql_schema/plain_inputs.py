"""Input types made of plain scalars, built straight from graphql-core's coerced value.

strawberry turns each input object into its class field by field: for every field its GraphQL
name, its type resolved again, a recursive call. About 20 µs an object: the 10,000 profiles
`importProfiles` takes cost 0.2 s of the event loop in that alone, in one stretch with
graphql-core's coercion (bench/RESULTS.md, "Importing 10,000 profiles"). For an input whose
fields are all scalars there is nothing to convert (strawberry hands a scalar's coerced value
over as it is): `plain` gives the type strawberry's `from_input` hook, which builds it from the
GraphQL names at once. A field left out stays at its default (UNSET), an explicit null is None,
as strawberry's own conversion does (tests/rules/test_plain_inputs.py compares both).
"""

from collections.abc import Mapping
from typing import Any, TypeVar

from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryOptional

T = TypeVar("T")

SCALARS = (str, int, float, bool)


def plain(cls: type[T]) -> type[T]:
    """Give a strawberry input of plain scalars (optional or not) the direct build."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    for field in definition.fields:
        kind = field.type
        if isinstance(kind, StrawberryOptional):
            kind = kind.of_type
        if kind not in SCALARS:
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a plain scalar")
    names: dict[str, str] = {}  # GraphQL name -> Python name, from the schema's own converter

    def from_input(target: type[T], value: Mapping[str, Any], context: InputContext) -> T:
        if not names:
            convert = context.config.name_converter.from_field
            names.update({convert(f): f.python_name for f in definition.fields})
        return target(**{names[name]: given for name, given in value.items() if name in names})

    definition.from_input = from_input
    return cls
