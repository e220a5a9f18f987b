"""The one error handler: the user gets a clear sentence, the operator a log line."""

from aiogram import Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import ErrorEvent, Update, User
from aiogram_i18n import I18nContext, I18nMiddleware

from bot.handlers.chat import error_sentence
from bot.handlers.payments import PaymentNotRecorded
from bot.services.backend import BackendError, BackendUnavailable
from bot.services.schemas import Profile
from bot.utils.i18n import language_of
from bot.utils.logging import get_logger

log = get_logger("bot.errors")


async def on_error(
    event: ErrorEvent,
    i18n: I18nContext | None = None,
    i18n_middleware: I18nMiddleware | None = None,
    event_from_user: User | None = None,
    profile: Profile | None = None,
) -> object:
    update = event.update
    exc = event.exception
    if isinstance(exc, PaymentNotRecorded):
        # Not acknowledged: the webhook answers 503 and Telegram delivers the payment again.
        log.error("payment_not_recorded", update_id=update.update_id, charge=str(exc))
        return UNHANDLED
    if isinstance(exc, BackendUnavailable):
        log.warning("backend_unavailable", update_id=update.update_id, error=str(exc))
    elif isinstance(exc, BackendError):
        log.warning("backend_refused", update_id=update.update_id, code=exc.code)
    else:
        log.exception(
            "update_failed", update_id=update.update_id, error=type(exc).__name__, exc_info=exc
        )
    if i18n is None:
        if i18n_middleware is None:
            return True
        # It failed before the language was chosen (in the queue, resolving the profile...).
        i18n = i18n_middleware.new_context(language_of(profile, event_from_user), data={})
    await apologise(update, apology(exc, i18n))
    return True


def apology(exc: Exception, i18n: I18nContext) -> str:
    """What the user reads: try again later, the backend's refusal, or a generic sorry."""
    if isinstance(exc, BackendUnavailable):
        return i18n.get("error-backend-unavailable")
    if isinstance(exc, BackendError):
        return error_sentence(exc.code, i18n, **exc.details)
    return i18n.get("error-generic")


async def apologise(update: Update, text: str) -> None:
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception as reply_failed:  # the apology itself could not be sent; logged, not raised
        log.warning("apology_failed", update_id=update.update_id, error=type(reply_failed).__name__)


def create_router() -> Router:
    """The errors handlers on a fresh router (one per dispatcher)."""
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
