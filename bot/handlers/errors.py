"""The one error handler: the user gets a clear sentence, the operator a log line."""

from aiogram import Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import ErrorEvent
from aiogram_i18n import I18nContext

from bot.handlers.chat import error_sentence
from bot.handlers.payments import PaymentNotRecorded
from bot.services.backend import BackendError, BackendUnavailable
from bot.utils.logging import get_logger

log = get_logger("bot.errors")


async def on_error(event: ErrorEvent, i18n: I18nContext) -> object:
    update = event.update
    exc = event.exception
    if isinstance(exc, PaymentNotRecorded):
        # Not acknowledged: the webhook answers 503 and Telegram delivers the payment again.
        log.error("payment_not_recorded", update_id=update.update_id, charge=str(exc))
        return UNHANDLED
    if isinstance(exc, BackendUnavailable):
        log.warning("backend_unavailable", update_id=update.update_id, error=str(exc))
        text = i18n.get("error-backend-unavailable")
    elif isinstance(exc, BackendError):
        log.warning("backend_refused", update_id=update.update_id, code=exc.code)
        text = error_sentence(exc.code, i18n, **exc.details)
    else:
        log.exception(
            "update_failed", update_id=update.update_id, error=type(exc).__name__, exc_info=exc
        )
        text = i18n.get("error-generic")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception as reply_failed:  # the apology itself could not be sent; logged, not raised
        log.warning("apology_failed", update_id=update.update_id, error=type(reply_failed).__name__)
    return True


def create_router() -> Router:
    """The errors handlers on a fresh router (one per dispatcher)."""
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
