"""Domain errors: each has a stable `code` the bot maps to a sentence, and an HTTP status."""

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error the API reports as `{"error": {"code", "message"}}`."""

    code: ClassVar[str] = "domain_error"
    status_code: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request cannot be completed."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


class UserNotFound(DomainError):
    code = "user_not_found"
    status_code = 404
    default_message = "No user with this Telegram id is registered."


class UnknownModel(DomainError):
    code = "unknown_model"
    status_code = 422
    default_message = "This provider or model is not in the catalog."


class UnsupportedLanguage(DomainError):
    code = "unsupported_language"
    status_code = 422
    default_message = "This language is not supported."


class QuotaExhausted(DomainError):
    code = "quota_exhausted"
    status_code = 402
    default_message = "The free messages are used up."


class ReservationNotFound(DomainError):
    code = "reservation_not_found"
    status_code = 404
    default_message = "No such message reservation."


class ReservationClosed(DomainError):
    code = "reservation_closed"
    status_code = 409
    default_message = "This message reservation is already settled."
