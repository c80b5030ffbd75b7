"""Text the databases can store: PostgreSQL refuses the NUL character in text, and no UTF-8
encoder takes a lone surrogate. GraphQL string literals are checked with this
(graphql_schema/strings.py); JSON bodies are checked on their text, escapes included, by
server/http/json_input.py. Either way it is a BAD_USER_INPUT or a 400 where the text comes in,
not an internal error at the INSERT."""

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> bool:
    return UNSTORABLE.search(value) is None
