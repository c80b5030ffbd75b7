"""Domain errors. Each carries the contract's error code so the API can map it without guessing."""


class DomainError(Exception):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadInput(DomainError):
    code = "BAD_USER_INPUT"


class InvalidState(DomainError):
    """The delivery's status does not allow the operation; the message says why."""

    code = "INVALID_STATE"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class PreparationFailed(BadInput):
    """Content checks failed: the delivery stays DRAFT and every error is listed."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("preparation failed: " + "; ".join(errors))
        self.errors = errors


# ---- failures of the database itself -----------------------------------------------------------

# What SQLite (SQLITE_FULL) and PostgreSQL (SQLSTATE 53100 disk_full, or "could not extend file")
# say when a write needs space the disk does not have.
_FULL = ("database or disk is full", "no space left on device", "could not extend file")
# A PostgreSQL server that is restarting, shutting down or unreachable.
_AWAY = (
    "the database system is",  # ... starting up / shutting down / in recovery
    "terminating connection due to administrator command",
    "connection was closed in the middle of operation",
    "connection is closed",
    "connect call failed",
    "connection refused",
)


def storage_failure(error: BaseException) -> str | None:
    """If `error` (or what caused it) is the database refusing a write for want of space or
    being out of reach, a sentence saying so for the client; else None. A transaction that
    fails this way is rolled back, so nothing of it was stored; a connection lost mid-commit
    may have committed, which the sentence says too."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if getattr(current, "sqlstate", None) == "53100" or any(m in text for m in _FULL):
            return (
                "the database is out of disk space (database or disk is full): nothing of this"
                " request was stored; retry once space is freed"
            )
        if getattr(current, "sqlstate", "") in ("57P01", "57P02", "57P03") or any(
            m in text for m in _AWAY
        ):
            return (
                "the database cannot be reached right now (it may be restarting): this request"
                " was not completed; read the data back before retrying a change"
            )
        current = current.__cause__ or current.__context__
    return None
