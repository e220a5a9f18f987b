"""Domain errors: each has a stable `code` the bot maps to a sentence, and an HTTP status."""

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from backend.models.database import MessageLog


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


class DuplicateRequest(DomainError):
    """A request with this client message id was already received."""

    code = "duplicate_request"
    status_code = 409
    default_message = "This message was already received."

    def __init__(self, message: "MessageLog | None") -> None:
        status = message.status if message is not None else None
        super().__init__(
            "This message was already received"
            + (" and is still being answered." if status == "pending" else "."),
            status=status,
            error_code=message.error_code if message is not None else None,
        )
        self.existing = message


class MessageTooLong(DomainError):
    code = "message_too_long"
    status_code = 422
    default_message = "The message is longer than the limit."


class Forbidden(DomainError):
    code = "forbidden"
    status_code = 403
    default_message = "This action is for the bot's operators."


class TransactionNotFound(DomainError):
    code = "transaction_not_found"
    status_code = 404
    default_message = "No payment with this charge id."


class BadSignature(DomainError):
    code = "bad_signature"
    status_code = 401
    default_message = "The webhook signature is missing, wrong or too old."


class WebhookNotConfigured(DomainError):
    code = "webhook_not_configured"
    status_code = 404
    default_message = "Payment webhooks are not enabled on this server."


class UnknownMode(DomainError):
    code = "unknown_mode"
    status_code = 422
    default_message = "This chat mode is not in the catalog."


class InstructionsTooLong(DomainError):
    code = "instructions_too_long"
    status_code = 422
    default_message = "The personal instruction is longer than the limit."


class VoiceUnavailable(DomainError):
    code = "voice_unavailable"
    status_code = 503
    default_message = "Voice messages are not available on this server."


class AttachmentTooLarge(DomainError):
    code = "attachment_too_large"
    status_code = 413
    default_message = "The file is larger than the limit."


class AudioTooLong(DomainError):
    code = "audio_too_long"
    status_code = 422
    default_message = "The recording is longer than the limit."


class ImagesNotSupported(DomainError):
    code = "images_not_supported"
    status_code = 422
    default_message = "The chosen model does not accept images."


class UnsupportedDocument(DomainError):
    code = "unsupported_document"
    status_code = 415
    default_message = "This type of file cannot be read."


class DocumentUnreadable(DomainError):
    code = "document_unreadable"
    status_code = 422
    default_message = "No text could be read from this document."


class ImageGenerationUnavailable(DomainError):
    code = "image_generation_unavailable"
    status_code = 503
    default_message = "Pictures are not available on this server."


class VipRequired(DomainError):
    code = "vip_required"
    status_code = 402
    default_message = "This is available with VIP."


class InvalidAttachment(DomainError):
    code = "invalid_attachment"
    status_code = 422
    default_message = "The attachment cannot be used."


class RateLimited(DomainError):
    code = "rate_limited"
    status_code = 429
    default_message = "Too many messages in a short time; wait a moment."


class FairUseExceeded(DomainError):
    code = "fair_use_exceeded"
    status_code = 429
    default_message = "The daily fair-use limit of messages is reached."


class UserBlocked(DomainError):
    code = "user_blocked"
    status_code = 403
    default_message = "This user's access is suspended by the operators."


class BroadcastNotFound(DomainError):
    code = "broadcast_not_found"
    status_code = 404
    default_message = "No broadcast with this id."


class BroadcastLeased(DomainError):
    code = "broadcast_leased"
    status_code = 409
    default_message = "Another runner is sending this broadcast."
