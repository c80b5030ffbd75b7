"""Text the databases can store: PostgreSQL refuses the NUL character in text, and no UTF-8
encoder takes a lone surrogate (JSON's `"\\ud800"` parses into one). Checked where text comes
in (server/http/json_input.py, graphql_schema/strings.py) so that it is a 400 or a
BAD_USER_INPUT there, not an internal error at the INSERT."""

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> bool:
    return UNSTORABLE.search(value) is None
