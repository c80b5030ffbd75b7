"""Operators by bearer token, remembered for a few seconds.

Looking the token up costs one database read per request, more than the rest of a simple
query (bench/RESULTS.md: about 0.7 ms of CPU; 881 against 2,457 requests/s for a bare app).
A token that was valid stays valid for at most `ttl` seconds after its operator is revoked,
deleted or its token rotated on another server (on this one, `forget` drops it at once), and
roles changed there show after the same delay; unknown tokens are never remembered, so a bad
token is checked (and counted as an authentication failure) every time. Keys are the tokens'
SHA-256, as in the database: a WebSocket re-checks its operator by that hash alone.
"""

import time

from models.operator import Operator, hash_token, operators_by_token_hash


class TokenCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, Operator]] = {}

    async def operator(self, token: str | None) -> Operator | None:
        if not token:
            return None
        return await self.operator_by_hash(hash_token(token))

    async def operator_by_hash(self, key: str) -> Operator | None:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        operator = (await operators_by_token_hash([key])).get(key)
        if operator is None or self.ttl <= 0:
            self._entries.pop(key, None)
            return operator
        if len(self._entries) >= self.max_entries:  # bounded: drop what has expired, else all
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (now + self.ttl, operator)
        return operator

    def forget(self, operator_id: int) -> None:
        """The operator was revoked or its token rotated here: no request waits for the ttl."""
        self._entries = {k: v for k, v in self._entries.items() if v[1].id != operator_id}
