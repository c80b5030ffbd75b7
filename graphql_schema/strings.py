"""String literals written in a GraphQL document must be storable (models/text.py).

JSON bodies are checked when they are parsed, variables included; a literal in the document
itself (`"\\u0000"`, or a raw NUL in a block string sent with GET) is checked here, as a
validation rule, so that its answer is cached with the document's validation.
"""

from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule

from models.text import storable


class StorableStrings(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if not storable(node.value):
            self.report_error(
                GraphQLError("a string must not hold a NUL character or a lone surrogate", node)
            )
