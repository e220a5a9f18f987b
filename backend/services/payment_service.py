"""Payments: VIP offers, pre-checkout validation, idempotent recording, refunds, webhooks.

A charge is recorded at most once: the claim of a pending invoice and the insert of a renewal
are single statements guarded by the UNIQUE telegram_payment_charge_id, so however many
deliveries of the same payment race, one extends VIP and the rest see a duplicate.
"""

import contextlib
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.database import crud
from backend.models.database import PaymentEvent, Subscription, Transaction, User
from backend.models.enums import (
    AdminActionKind,
    PaymentRail,
    SubscriptionStatus,
    TransactionStatus,
)
from backend.models.schemas import (
    InvoiceOut,
    OfferIn,
    PaymentEventIn,
    PaymentEventOut,
    PaymentOut,
    PlanOut,
    PreCheckoutIn,
    PreCheckoutOut,
    RefundOut,
    SubscriptionOut,
    SubscriptionStateIn,
    SuccessfulPaymentIn,
    TelegramProfile,
    TransactionOut,
)
from backend.services.catalog import Catalog
from backend.services.clock import Clock, utcnow
from backend.services.user_service import UserService, require_user
from backend.utils.exceptions import BadSignature, DomainError, Forbidden, TransactionNotFound
from backend.utils.logger import get_logger
from backend.utils.metrics import BackendMetrics, discarded

log = get_logger("backend.payments")

STARS = "XTR"
SUBSCRIPTION_PERIOD_S = 30 * 24 * 3600  # the only period Telegram accepts for Stars
EXTERNAL_PREFIX = "external:"


class RailUnavailable(DomainError):
    code = "rail_unavailable"
    status_code = 422
    default_message = "This payment method is not configured."


REJECTIONS = {
    "unknown_invoice": "This invoice is unknown.",
    "wrong_user": "This invoice was issued to another user.",
    "amount_mismatch": "The price or currency differs from the offer.",
    "invoice_used": "This invoice was already paid.",
    "offer_expired": "This offer has expired; please open a new one.",
    "user_blocked": "This user's access is suspended.",
}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The webhook signature: hex HMAC-SHA256 of "<timestamp>." + raw body."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class PaymentService:
    """Use cases of money. Each one commits once, at its end."""

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        clock: Clock = utcnow,
        *,
        metrics: BackendMetrics | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock
        self._metrics = metrics or discarded()

    def plan(self) -> PlanOut:
        s = self._settings
        subscription = s.vip_payment_mode == "subscription"
        fiat = s.vip_price_amount is not None and s.vip_price_currency is not None
        return PlanOut(
            stars_amount=s.vip_price_stars,
            period_days=s.vip_period_days,
            subscription=subscription,
            subscription_period_s=SUBSCRIPTION_PERIOD_S if subscription else None,
            fiat_amount=s.vip_price_amount if fiat else None,
            fiat_currency=s.vip_price_currency if fiat else None,
        )

    async def create_offer(self, body: OfferIn) -> InvoiceOut:
        """A pending transaction with an unguessable payload the invoice will carry."""
        user = await require_user(self._session, body.telegram_id)
        plan = self.plan()
        if body.rail == "fiat":
            if plan.fiat_amount is None or plan.fiat_currency is None:
                raise RailUnavailable
            amount, currency, rail = (
                plan.fiat_amount,
                plan.fiat_currency,
                PaymentRail.TELEGRAM_PROVIDER,
            )
        else:
            amount, currency, rail = plan.stars_amount, STARS, PaymentRail.TELEGRAM_STARS
        now = self._clock()
        transaction = Transaction(
            user_id=user.id,
            rail=rail.value,
            status=TransactionStatus.PENDING.value,
            amount=amount,
            currency=currency,
            invoice_payload="vip-" + secrets.token_urlsafe(24),
            period_days=plan.period_days,
            created_at=now,
        )
        self._session.add(transaction)
        await self._session.flush()
        result = InvoiceOut(
            payload=transaction.invoice_payload or "",
            currency=currency,
            amount=amount,
            period_days=plan.period_days,
            subscription_period_s=plan.subscription_period_s if body.rail == "stars" else None,
            rail=body.rail,
            expires_at=now + timedelta(hours=self._settings.invoice_ttl_hours),
        )
        await self._session.commit()
        return result

    async def pre_checkout(self, body: PreCheckoutIn) -> PreCheckoutOut:
        """Accept only a known, unpaid, unexpired invoice of this user at its exact price."""
        transaction = await self._by_payload(body.payload)
        if transaction is None:
            return self._reject("unknown_invoice")
        user = await crud.get_user(self._session, body.telegram_id)
        if user is None or transaction.user_id != user.id:
            return self._reject("wrong_user")
        if user.blocked_at is not None:
            return self._reject("user_blocked")
        if (transaction.currency, transaction.amount) != (body.currency, body.total_amount):
            return self._reject("amount_mismatch")
        if transaction.status != TransactionStatus.PENDING.value:
            return self._reject("invoice_used")
        expires = transaction.created_at + timedelta(hours=self._settings.invoice_ttl_hours)
        if self._clock() > expires:
            return self._reject("offer_expired")
        return PreCheckoutOut(ok=True)

    def _reject(self, code: str) -> PreCheckoutOut:
        log.warning("pre_checkout_rejected", error_code=code)
        self._metrics.payment_failed(code)
        return PreCheckoutOut(ok=False, error_code=code, message=REJECTIONS[code])

    async def record_payment(self, body: SuccessfulPaymentIn) -> PaymentOut:
        """Record a charge once and extend VIP by VIP_PERIOD_DAYS from max(now, expiry)."""
        user = await require_user(self._session, body.telegram_id)
        now = self._clock()
        charge = body.telegram_payment_charge_id
        existing = await self._by_charge(charge)
        if existing is not None:
            return await self._duplicate(existing)
        try:
            claimed = await self._claim_invoice(user, body, now)
        except IntegrityError:
            # The same charge id was recorded a moment ago, through another invoice.
            await self._session.rollback()
            existing = await self._by_charge(charge)
            if existing is None:
                raise
            return await self._duplicate(existing)
        if claimed is not None:
            transaction_id, amount, currency = claimed
            offer_matches = (amount, currency) == (body.total_amount, body.currency)
            error = None if offer_matches else "amount_mismatch"
        else:
            existing = await self._by_charge(charge)
            if existing is not None:
                return await self._duplicate(existing)
            # A renewal (the invoice was paid before, by an earlier charge) or a payment
            # we cannot match: recorded all the same, since the money has moved.
            original = await self._by_payload(body.payload)
            renewal = original is not None and original.user_id == user.id
            inserted = await self._insert_charge(user, body, now, renewal)
            if inserted is None:
                existing = await self._by_charge(charge)
                assert existing is not None
                await self._session.rollback()
                return await self._duplicate(existing)
            transaction_id = inserted
            error = None if renewal else ("wrong_user" if original else "unknown_invoice")
        expires_at = None
        if error is None:
            expires_at = await crud.extend_subscription(
                self._session, user.id, timedelta(days=self._settings.vip_period_days), now
            )
            if body.is_recurring or body.subscription_expiration_date is not None:
                await self._mark_renewing(user.id, charge, body.is_first_recurring)
        else:
            log.error("payment_not_matched", transaction_id=transaction_id, error_code=error)
        await self._session.commit()
        log.info(
            "payment_recorded",
            transaction_id=transaction_id,
            recurring=body.is_recurring,
            vip_extended=error is None,
        )
        rail = (
            PaymentRail.TELEGRAM_STARS if body.currency == STARS else PaymentRail.TELEGRAM_PROVIDER
        )
        renewed = body.is_recurring and not body.is_first_recurring
        self._metrics.payment(
            rail.value, "renewed" if renewed else "paid", body.currency, body.total_amount
        )
        if error is not None:
            self._metrics.payment_failed(error)
        return PaymentOut(
            transaction_id=transaction_id,
            duplicate=False,
            vip_extended=error is None,
            vip_expires_at=expires_at,
            error_code=error,
        )

    async def _claim_invoice(
        self, user: User, body: SuccessfulPaymentIn, now: datetime
    ) -> tuple[int, int, str] | None:
        """Mark this user's pending invoice paid by this charge; (id, amount, currency)."""
        result = await self._session.execute(
            update(Transaction)
            .where(
                Transaction.invoice_payload == body.payload,
                Transaction.user_id == user.id,
                Transaction.status == TransactionStatus.PENDING.value,
            )
            .values(
                status=TransactionStatus.PAID.value,
                telegram_payment_charge_id=body.telegram_payment_charge_id,
                provider_payment_charge_id=body.provider_payment_charge_id,
                is_recurring=body.is_recurring,
                is_first_recurring=body.is_first_recurring,
                subscription_expires_at=body.subscription_expiration_date,
                paid_at=now,
            )
            .returning(Transaction.id, Transaction.amount, Transaction.currency)
        )
        row = result.first()
        return (int(row[0]), int(row[1]), str(row[2])) if row is not None else None

    async def _insert_charge(
        self, user: User, body: SuccessfulPaymentIn, now: datetime, renewal: bool
    ) -> int | None:
        stmt = (
            insert(Transaction)
            .values(
                user_id=user.id,
                rail=(
                    PaymentRail.TELEGRAM_STARS
                    if body.currency == STARS
                    else PaymentRail.TELEGRAM_PROVIDER
                ).value,
                status=TransactionStatus.PAID.value,
                amount=body.total_amount,
                currency=body.currency,
                telegram_payment_charge_id=body.telegram_payment_charge_id,
                provider_payment_charge_id=body.provider_payment_charge_id,
                is_recurring=body.is_recurring,
                is_first_recurring=body.is_first_recurring,
                subscription_expires_at=body.subscription_expiration_date,
                period_days=self._settings.vip_period_days if renewal else None,
                paid_at=now,
            )
            .on_conflict_do_nothing(index_elements=[Transaction.telegram_payment_charge_id])
            .returning(Transaction.id)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def _mark_renewing(self, user_id: int, charge: str, first: bool) -> None:
        values: dict[str, object] = {"auto_renew": True, "status": SubscriptionStatus.ACTIVE.value}
        if first:
            values["telegram_charge_id"] = charge
        await self._session.execute(
            update(Subscription).where(Subscription.user_id == user_id).values(**values)
        )
        # A renewal whose first charge we never saw still needs an id to cancel with.
        await self._session.execute(
            update(Subscription)
            .where(Subscription.user_id == user_id, Subscription.telegram_charge_id.is_(None))
            .values(telegram_charge_id=charge)
        )

    async def _duplicate(self, existing: Transaction) -> PaymentOut:
        vip = await crud.vip_expires_at(self._session, existing.user_id, self._clock())
        return PaymentOut(
            transaction_id=existing.id, duplicate=True, vip_extended=False, vip_expires_at=vip
        )

    async def transaction(self, charge_id: str) -> TransactionOut:
        transaction = await self._by_charge(charge_id)
        if transaction is None:
            raise TransactionNotFound(telegram_payment_charge_id=charge_id)
        telegram_id = await self._session.scalar(
            select(User.telegram_id).where(User.id == transaction.user_id)
        )
        return TransactionOut(
            id=transaction.id,
            telegram_id=int(telegram_id or 0),
            rail=transaction.rail,
            status=transaction.status,
            amount=transaction.amount,
            currency=transaction.currency,
            telegram_payment_charge_id=transaction.telegram_payment_charge_id,
            is_recurring=transaction.is_recurring,
            paid_at=transaction.paid_at,
            refunded_at=transaction.refunded_at,
        )

    async def record_refund(
        self, charge_id: str, admin_telegram_id: int | None = None
    ) -> RefundOut:
        """Mark a charge refunded (once) and take back the VIP time it bought; an operator's
        refund is audited with it, also when Telegram's refund update recorded it first."""
        if admin_telegram_id is not None and admin_telegram_id not in self._settings.admin_ids:
            raise Forbidden
        result = await self._revoke(charge_id)
        if admin_telegram_id is not None:
            detail = {"charge_id": charge_id, "recorded_now": result.refunded}
            crud.audit(
                self._session,
                admin_telegram_id,
                AdminActionKind.REFUND,
                result.telegram_id,
                detail,
                self._clock(),
            )
        await self._session.commit()
        if result.refunded:
            log.info("payment_refunded", admin=admin_telegram_id is not None)
        return result

    async def _revoke(self, charge_id: str) -> RefundOut:
        """The refund itself, flushed but not committed: the caller's use case commits."""
        transaction = await self._by_charge(charge_id)
        if transaction is None:
            raise TransactionNotFound(telegram_payment_charge_id=charge_id)
        now = self._clock()
        refunded = await self._session.execute(
            update(Transaction)
            .where(
                Transaction.id == transaction.id, Transaction.status == TransactionStatus.PAID.value
            )
            .values(status=TransactionStatus.REFUNDED.value, refunded_at=now)
            .returning(Transaction.period_days)
        )
        row = refunded.first()
        telegram_id = int(
            await self._session.scalar(
                select(User.telegram_id).where(User.id == transaction.user_id)
            )
            or 0
        )
        if row is None:
            vip = await crud.vip_expires_at(self._session, transaction.user_id, now)
            return RefundOut(refunded=False, telegram_id=telegram_id, vip_expires_at=vip)
        days = row[0] or self._settings.vip_period_days
        await crud.revoke_subscription_time(
            self._session, transaction.user_id, timedelta(days=days), now
        )
        vip = await crud.vip_expires_at(self._session, transaction.user_id, now)
        log.info("payment_revoked", transaction_id=transaction.id)
        self._metrics.payment(transaction.rail, "refunded")
        return RefundOut(refunded=True, telegram_id=telegram_id, vip_expires_at=vip)

    async def subscription(self, telegram_id: int) -> SubscriptionOut:
        user = await require_user(self._session, telegram_id)
        row = await self._session.scalar(
            select(Subscription).where(Subscription.user_id == user.id)
        )
        vip = await crud.vip_expires_at(self._session, user.id, self._clock())
        return SubscriptionOut(
            telegram_id=telegram_id,
            is_vip=vip is not None,
            vip_expires_at=vip,
            auto_renew=bool(row and row.auto_renew and vip is not None),
            status=row.status if row else None,
            telegram_charge_id=row.telegram_charge_id if row else None,
        )

    async def set_auto_renew(self, telegram_id: int, enabled: bool) -> SubscriptionOut:
        """Renewal on or off (VIP already paid for lasts until its expiry either way)."""
        user = await require_user(self._session, telegram_id)
        status = SubscriptionStatus.ACTIVE if enabled else SubscriptionStatus.CANCELED
        await self._session.execute(
            update(Subscription)
            .where(
                Subscription.user_id == user.id,
                Subscription.status.in_(crud.VIP_STATES),
            )
            .values(auto_renew=enabled, status=status.value, updated_at=self._clock())
        )
        await self._session.commit()
        return await self.subscription(telegram_id)

    async def subscription_state(self, body: SubscriptionStateIn) -> SubscriptionOut:
        """Telegram says the user canceled, re-enabled, or a renewal failed."""
        return await self.set_auto_renew(body.telegram_id, body.state == "active")

    async def apply_event(self, event: PaymentEventIn, catalog: Catalog) -> PaymentEventOut:
        """An external provider's event, applied once per event id."""
        fresh = await self._session.execute(
            insert(PaymentEvent)
            .values(event_id=event.event_id, event_type=event.type)
            .on_conflict_do_nothing(index_elements=[PaymentEvent.event_id])
            .returning(PaymentEvent.id)
        )
        if fresh.scalar_one_or_none() is None:
            await self._session.rollback()
            return PaymentEventOut(event_id=event.event_id, duplicate=True)
        charge = EXTERNAL_PREFIX + event.charge_id
        recorded = False
        if event.type == "payment.succeeded":
            if await crud.get_user(self._session, event.telegram_id) is None:
                # The money arrived for someone who never opened the bot: keep it on record.
                await UserService(self._session, self._settings, catalog, self._clock).register(
                    TelegramProfile(telegram_id=event.telegram_id), commit=False
                )
            user = await require_user(self._session, event.telegram_id)
            now = self._clock()
            inserted = await self._session.execute(
                insert(Transaction)
                .values(
                    user_id=user.id,
                    rail=PaymentRail.EXTERNAL.value,
                    status=TransactionStatus.PAID.value,
                    amount=event.amount,
                    currency=event.currency,
                    telegram_payment_charge_id=charge,
                    period_days=self._settings.vip_period_days,
                    paid_at=now,
                )
                .on_conflict_do_nothing(index_elements=[Transaction.telegram_payment_charge_id])
                .returning(Transaction.id)
            )
            if inserted.scalar_one_or_none() is not None:
                await crud.extend_subscription(
                    self._session, user.id, timedelta(days=self._settings.vip_period_days), now
                )
                recorded = True
            await self._session.commit()
            if recorded:
                self._metrics.payment(
                    PaymentRail.EXTERNAL.value, "paid", event.currency, event.amount
                )
        else:
            # Nothing to refund for an unknown charge; the event is remembered either way.
            with contextlib.suppress(TransactionNotFound):
                await self._revoke(charge)
            await self._session.commit()
        return PaymentEventOut(event_id=event.event_id, duplicate=False)

    async def _by_payload(self, payload: str) -> Transaction | None:
        return await self._session.scalar(
            select(Transaction).where(Transaction.invoice_payload == payload)
        )

    async def _by_charge(self, charge_id: str) -> Transaction | None:
        return await self._session.scalar(
            select(Transaction).where(Transaction.telegram_payment_charge_id == charge_id)
        )


def verify_signature(
    secret: str, header: str | None, body: bytes, now: datetime, tolerance_s: int
) -> None:
    """Check `X-Pomogator-Signature: t=<unix time>,v1=<hex hmac>`; raise BadSignature."""
    if not header:
        raise BadSignature
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"].encode()
    except (KeyError, ValueError):
        raise BadSignature from None
    # In integers: a huge `t` must not overflow a float; in bytes: compare_digest refuses
    # non-ASCII str (a header value may hold any Latin-1 character).
    if abs(int(now.timestamp()) - timestamp) > tolerance_s:
        raise BadSignature("The webhook timestamp is outside the allowed window.")
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), given):
        raise BadSignature
