"""Closed sets of values stored in the database and spoken over the API."""

from enum import StrEnum


class Language(StrEnum):
    RU = "ru"
    EN = "en"


class CreditKind(StrEnum):
    GRANT = "grant"  # the free allowance given on first contact
    USE = "use"  # one message reserved for an answer
    REFUND = "refund"  # a reserved message given back because the answer failed
    ADMIN = "admin"  # an operator's correction, either sign


class MessageStatus(StrEnum):
    PENDING = "pending"  # credit reserved, answer in progress
    SUCCESS = "success"
    FAILED = "failed"


class MessageKind(StrEnum):
    TEXT = "text"
    VOICE = "voice"  # a voice note, audio file or video note, answered from its transcript
    PHOTO = "photo"
    DOCUMENT = "document"
    IMAGE = "image"  # a picture generated on request (/image)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELED = "canceled"  # auto-renewal off; VIP lasts until expires_at
    EXPIRED = "expired"
    REFUNDED = "refunded"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    FAILED = "failed"


class PaymentRail(StrEnum):
    TELEGRAM_STARS = "telegram_stars"
    TELEGRAM_PROVIDER = "telegram_provider"
    EXTERNAL = "external"


class BroadcastAudience(StrEnum):
    ALL = "all"  # everyone who can receive it: not blocked, has not blocked the bot
    VIP = "vip"  # of those, the VIPs now
    FREE = "free"  # of those, the rest


class BroadcastStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELED = "canceled"


class AdminActionKind(StrEnum):
    GRANT_VIP = "grant_vip"
    REVOKE_VIP = "revoke_vip"
    BLOCK = "block"
    UNBLOCK = "unblock"
    BROADCAST = "broadcast"
    BROADCAST_CANCEL = "broadcast_cancel"
    REFUND = "refund"


def sql_in(enum: type[StrEnum]) -> str:
    """`'a', 'b'` — the values of an enum for a CHECK constraint."""
    return ", ".join(f"'{member.value}'" for member in enum)
