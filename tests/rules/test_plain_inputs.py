"""graphql_schema/plain_inputs.py builds an input of plain scalars exactly as strawberry's own
conversion does: omitted fields UNSET, explicit nulls None, values as graphql-core coerced them."""

import itertools

import pytest
import strawberry
from strawberry.types.arguments import convert_argument

from graphql_schema.plain_inputs import plain
from graphql_schema.profiles.types import ProfileInput
from graphql_schema.schema import build_schema

SCHEMA = build_schema()
NAMES = ["email", "phone", "firstName", "lastName", "timeZone"]


def converted(value: dict[str, object], direct: bool) -> dict[str, object]:
    definition = ProfileInput.__strawberry_definition__  # type: ignore[attr-defined]
    hook = definition.from_input
    assert hook is not None, "ProfileInput is built directly (plain)"
    definition.from_input = hook if direct else None
    try:
        built = convert_argument(
            value, ProfileInput, SCHEMA.schema_converter.scalar_registry, SCHEMA.config
        )
    finally:
        definition.from_input = hook
    assert type(built) is ProfileInput
    return vars(built)


# every subset of the fields, each given a text or an explicit null
VALUES = [
    {name: (None if (i + j) % 3 == 0 else f"{name}-{i}") for j, name in enumerate(subset)}
    for i, size in enumerate(range(len(NAMES) + 1))
    for subset in itertools.combinations(NAMES, size)
]


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_a_profile_input_is_built_as_strawberry_builds_it(value: dict[str, object]) -> None:
    assert converted(value, direct=True) == converted(value, direct=False)


def test_only_inputs_of_plain_scalars_take_the_direct_build() -> None:
    @strawberry.input
    class Nested:
        inner: ProfileInput

    with pytest.raises(TypeError, match="not a plain scalar"):
        plain(Nested)
