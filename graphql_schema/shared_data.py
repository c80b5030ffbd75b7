"""Result data that several receivers share, with its JSON encoded once for them all."""

import json
from typing import Any


class SharedData(dict[str, Any]):
    """The `data` of a result that several receivers share (the subscribers of a snapshot,
    the requests the result cache answers), with its JSON encoded once for them all (the
    server's encoder asks for it: server/graphql_app.py). Nobody may change it."""

    __slots__ = ("_json",)

    def json(self) -> str:
        try:
            return self._json
        except AttributeError:
            self._json: str = json.dumps(self, separators=(",", ":"))
            return self._json
