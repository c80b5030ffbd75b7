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
