"""Invoices, pre-checkout, payments, refunds and the VIP subscription (bot-facing)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from backend.api.dependencies import ClockDep, MetricsDep, SessionDep, SettingsDep
from backend.models.schemas import (
    AutoRenewIn,
    ChargeId,
    ErrorBody,
    InvoiceOut,
    OfferIn,
    PaymentOut,
    PlanOut,
    PreCheckoutIn,
    PreCheckoutOut,
    RefundIn,
    RefundOut,
    SubscriptionOut,
    SubscriptionStateIn,
    SuccessfulPaymentIn,
    TelegramId,
    TransactionOut,
)
from backend.services.payment_service import PaymentService

router = APIRouter(prefix="/payments", tags=["payments"])


async def get_payment_service(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, metrics: MetricsDep
) -> PaymentService:
    return PaymentService(session, settings, clock, metrics=metrics)


Payments = Annotated[PaymentService, Depends(get_payment_service)]


@router.get("/plan")
async def plan(payments: Payments) -> PlanOut:
    """The VIP price on each configured rail."""
    return payments.plan()


@router.post("/offers")
async def create_offer(body: OfferIn, payments: Payments) -> InvoiceOut:
    """A new invoice spec with a server-side payload (a pending transaction)."""
    return await payments.create_offer(body)


@router.post("/pre-checkout")
async def pre_checkout(body: PreCheckoutIn, payments: Payments) -> PreCheckoutOut:
    """Whether Telegram may take this payment: `ok`, or a code and a reason."""
    return await payments.pre_checkout(body)


@router.post("/successful")
async def successful_payment(body: SuccessfulPaymentIn, payments: Payments) -> PaymentOut:
    """Record a charge (idempotent by telegram_payment_charge_id) and extend VIP."""
    return await payments.record_payment(body)


@router.get("/transactions/{charge_id}")
async def transaction(charge_id: Annotated[ChargeId, Path()], payments: Payments) -> TransactionOut:
    return await payments.transaction(charge_id)


@router.post(
    "/refunds",
    responses={
        403: {"model": ErrorBody, "description": "forbidden: admin_telegram_id is no operator"},
        404: {"model": ErrorBody, "description": "transaction_not_found"},
    },
)
async def refund(body: RefundIn, payments: Payments) -> RefundOut:
    """Record a refund (after refundStarPayment, or Telegram's refunded_payment)."""
    return await payments.record_refund(body.telegram_payment_charge_id, body.admin_telegram_id)


@router.get("/subscription/{telegram_id}")
async def subscription(telegram_id: TelegramId, payments: Payments) -> SubscriptionOut:
    return await payments.subscription(telegram_id)


@router.post("/subscription/{telegram_id}/auto-renew")
async def auto_renew(
    telegram_id: TelegramId, body: AutoRenewIn, payments: Payments
) -> SubscriptionOut:
    """Renewal turned on or off (after editUserStarSubscription succeeded)."""
    return await payments.set_auto_renew(telegram_id, body.enabled)


@router.post("/subscription-state")
async def subscription_state(body: SubscriptionStateIn, payments: Payments) -> SubscriptionOut:
    """Telegram's subscription update: canceled, active again, or renewal failed."""
    return await payments.subscription_state(body)
