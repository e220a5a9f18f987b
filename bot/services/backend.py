"""The one client the bot uses to reach the backend."""

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from pydantic import ValidationError

from bot.services.schemas import (
    STREAM_EVENT,
    AdminStats,
    AdminUserCard,
    Attachment,
    Audience,
    AudienceCount,
    BroadcastBatch,
    BroadcastInfo,
    Catalog,
    Forgotten,
    Invoice,
    Kind,
    PaymentResult,
    Plan,
    PreCheckout,
    Profile,
    RefundResult,
    StreamEvent,
    SubscriptionInfo,
    TransactionInfo,
    UpdateClaim,
)
from bot.services.transport import BackendTransport


def stored(value: str | None, limit: int | None = None) -> str | None:
    """Telegram text as the backend can keep it: without NUL (PostgreSQL text cannot hold it),
    cut to the field's length."""
    if value is None:
        return None
    value = value.replace("\x00", "")
    return value[:limit] if limit is not None else value


class BackendError(Exception):
    """The backend refused or failed a request; `code` is its stable error code."""

    def __init__(
        self, code: str, message: str = "", status: int = 0, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}


class BackendUnavailable(BackendError):
    """The backend could not be reached or answered 5xx: nothing was decided."""

    def __init__(self, message: str = "", status: int = 0) -> None:
        super().__init__("backend_unavailable", message, status)


# Idle connections to the backend are dropped after this long, well inside the backend's own
# keep-alive (backend.__main__.KEEP_ALIVE_S): a connection the server is closing is never
# picked for a new request.
KEEPALIVE_EXPIRY_S = 5.0

# A request on a kept-alive connection the server closed at that instant fails before the
# server read it; requests that are safe to send twice get one more try on a new connection.
STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


async def tag_request_id(request: httpx.Request) -> None:
    """Forward the update's request id, so the backend's log lines of this call carry it."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        request.headers["X-Request-ID"] = str(request_id)


class BackendClient:
    """Typed calls to the backend API, authenticated with the internal token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        answer_timeout_s: float = 960.0,
        call_timeout_s: float = 30.0,
        max_connections: int = 100,
        max_streams: int = 5000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        def client(timeout: httpx.Timeout, limits: httpx.Limits) -> httpx.AsyncClient:
            # `limits` shape the default transport; an injected one (tests) is used as is.
            return httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout,
                transport=transport or BackendTransport(limits=limits),
                event_hooks={"request": [tag_request_id]},
            )

        # Answers can take minutes (deep research): the read timeout is long, the connect
        # timeout short so an unreachable backend is reported within seconds.
        self._answer_timeout = httpx.Timeout(answer_timeout_s, connect=3.0)
        # Short calls and streaming answers have pools of their own: each answer holds its
        # connection for its whole length, and with one shared pool a crowd of answers left
        # the profile lookups and claims of new messages waiting for a connection until
        # they timed out.
        # A call beyond the pool waits for a connection for at most the timeout's `pool`.
        # A slow answer is a loaded backend, not a lost one (a crowd of new users registers
        # while hundreds of answers stream): the read budget is long, while the connect
        # timeout finds an unreachable backend within seconds.
        self._http = client(
            httpx.Timeout(call_timeout_s, connect=3.0),
            httpx.Limits(max_connections=max_connections, keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )
        self._streams = client(
            self._answer_timeout,
            httpx.Limits(max_connections=max_streams, keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )
        # Every update waits for its claim: a slow backend must not hold them all up long.
        self._claim_timeout = httpx.Timeout(5.0, connect=3.0)

    async def aclose(self) -> None:
        try:
            await self._streams.aclose()
        finally:
            await self._http.aclose()

    async def register(
        self,
        telegram_id: int,
        *,
        username: str | None,
        first_name: str | None,
        last_name: str | None,
        language_code: str | None,
    ) -> Profile:
        """Register on first contact or refresh the Telegram profile."""
        # Telegram's own limits are tighter; the cut only keeps an odd profile from failing.
        body = {
            "telegram_id": telegram_id,
            "username": stored(username, 64),
            "first_name": stored(first_name, 256),
            "last_name": stored(last_name, 256),
            "language_code": stored(language_code, 35),
        }
        data = await self._call("POST", "/api/v1/users", json=body, idempotent=True)
        return Profile.model_validate(data)

    async def profile(self, telegram_id: int) -> Profile:
        return Profile.model_validate(await self._call("GET", f"/api/v1/users/{telegram_id}"))

    async def update_user(self, telegram_id: int, **changes: Any) -> Profile:
        """Change model, provider, language, show_reasoning, mode or custom_instructions."""
        changes = {k: stored(v) if isinstance(v, str) else v for k, v in changes.items()}
        data = await self._call(
            "PATCH", f"/api/v1/users/{telegram_id}", json=changes, idempotent=True
        )
        return Profile.model_validate(data)

    async def forget(self, telegram_id: int) -> Forgotten:
        """Erase the texts of the user's conversations (billing records are kept)."""
        data = await self._call("POST", f"/api/v1/users/{telegram_id}/forget", idempotent=True)
        return Forgotten.model_validate(data)

    async def claim_update(self, update_id: int) -> bool:
        """True the first time any replica claims this Telegram update_id."""
        data = await self._call(
            "POST",
            "/api/v1/updates/claim",
            json={"update_id": update_id},
            timeout=self._claim_timeout,
        )
        return UpdateClaim.model_validate(data).claimed

    async def models(self) -> Catalog:
        return Catalog.model_validate(await self._call("GET", "/api/v1/models"))

    async def reset_conversation(self, telegram_id: int) -> None:
        await self._call("POST", f"/api/v1/conversations/{telegram_id}/reset")

    async def ask(
        self,
        telegram_id: int,
        text: str,
        client_message_id: str | None = None,
        *,
        kind: Kind = "text",
        attachment: Attachment | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the answer to a message as events (start, [transcript], deltas..., done/error)."""
        body: dict[str, Any] = {
            "telegram_id": telegram_id,
            "text": stored(text),
            "client_message_id": client_message_id,
            "stream": True,
            "kind": kind,
        }
        if attachment is not None:
            body["attachment"] = attachment.model_dump() | {
                "filename": stored(attachment.filename, 255) or None
            }
        # Sent again once if it failed before any answer came: the backend answers and charges
        # a client message id once, and a replica going away for a deploy closes only idle
        # connections, before it read anything from them.
        for attempt in (1, 2):
            answered = False
            try:
                async with self._streams.stream("POST", "/api/v1/messages", json=body) as response:
                    answered = True
                    if response.status_code != 200:
                        await response.aread()
                        raise self._error(response)
                    async for line in response.aiter_lines():
                        if line.strip():
                            yield STREAM_EVENT.validate_json(line)
                return
            except (httpx.ConnectError, *STALE_CONNECTION) as exc:
                if answered or attempt == 2 or client_message_id is None:
                    raise BackendUnavailable(type(exc).__name__) from exc
            except httpx.TransportError as exc:
                raise BackendUnavailable(type(exc).__name__) from exc
            except ValidationError as exc:
                raise BackendUnavailable("unreadable answer stream") from exc

    async def plan(self) -> Plan:
        return Plan.model_validate(await self._call("GET", "/api/v1/payments/plan"))

    async def create_offer(self, telegram_id: int, rail: str = "stars") -> Invoice:
        """A fresh invoice spec (server-side payload) for VIP on a rail."""
        body = {"telegram_id": telegram_id, "rail": rail}
        return Invoice.model_validate(
            await self._call("POST", "/api/v1/payments/offers", json=body)
        )

    async def pre_checkout(
        self, telegram_id: int, payload: str, currency: str, total_amount: int
    ) -> PreCheckout:
        body = {
            "telegram_id": telegram_id,
            "payload": stored(payload),
            "currency": currency,
            "total_amount": total_amount,
        }
        data = await self._call("POST", "/api/v1/payments/pre-checkout", json=body)
        return PreCheckout.model_validate(data)

    async def record_payment(self, telegram_id: int, payment: dict[str, Any]) -> PaymentResult:
        """Telegram's successful_payment fields; recorded once per charge id."""
        body = {
            "telegram_id": telegram_id,
            **{k: stored(v) if isinstance(v, str) else v for k, v in payment.items()},
        }
        data = await self._call("POST", "/api/v1/payments/successful", json=body)
        return PaymentResult.model_validate(data)

    async def transaction(self, charge_id: str) -> TransactionInfo:
        # Typed by an operator: quoted, so "/", "?" or "#" cannot change the route.
        path = f"/api/v1/payments/transactions/{quote(stored(charge_id) or '', safe='')}"
        data = await self._call("GET", path)
        return TransactionInfo.model_validate(data)

    async def record_refund(
        self, charge_id: str, admin_telegram_id: int | None = None
    ) -> RefundResult:
        body = {
            "telegram_payment_charge_id": stored(charge_id),
            "admin_telegram_id": admin_telegram_id,
        }
        return RefundResult.model_validate(
            await self._call("POST", "/api/v1/payments/refunds", json=body)
        )

    async def subscription(self, telegram_id: int) -> SubscriptionInfo:
        data = await self._call("GET", f"/api/v1/payments/subscription/{telegram_id}")
        return SubscriptionInfo.model_validate(data)

    async def set_auto_renew(self, telegram_id: int, enabled: bool) -> SubscriptionInfo:
        data = await self._call(
            "POST",
            f"/api/v1/payments/subscription/{telegram_id}/auto-renew",
            json={"enabled": enabled},
        )
        return SubscriptionInfo.model_validate(data)

    async def subscription_state(self, telegram_id: int, state: str) -> SubscriptionInfo:
        body = {"telegram_id": telegram_id, "state": state}
        data = await self._call("POST", "/api/v1/payments/subscription-state", json=body)
        return SubscriptionInfo.model_validate(data)

    # Operators: every call names the admin it acts for (X-Admin-Id, checked by the backend).

    async def admin_stats(self, admin_id: int) -> AdminStats:
        return AdminStats.model_validate(await self._admin(admin_id, "GET", "/stats"))

    async def admin_lookup(self, admin_id: int, query: str) -> AdminUserCard:
        """A user's card by Telegram id, @username or username."""
        data = await self._admin(admin_id, "GET", "/users/lookup", params={"q": stored(query, 65)})
        return AdminUserCard.model_validate(data)

    async def admin_grant_vip(self, admin_id: int, telegram_id: int, days: int) -> AdminUserCard:
        data = await self._admin(admin_id, "POST", f"/users/{telegram_id}/vip", json={"days": days})
        return AdminUserCard.model_validate(data)

    async def admin_revoke_vip(self, admin_id: int, telegram_id: int) -> AdminUserCard:
        """VIP ends now; `cancel_stars_charge_id` names a Stars subscription to cancel."""
        data = await self._admin(admin_id, "DELETE", f"/users/{telegram_id}/vip")
        return AdminUserCard.model_validate(data)

    async def admin_set_blocked(
        self, admin_id: int, telegram_id: int, blocked: bool
    ) -> AdminUserCard:
        action = "block" if blocked else "unblock"
        data = await self._admin(admin_id, "POST", f"/users/{telegram_id}/{action}")
        return AdminUserCard.model_validate(data)

    async def audience_count(self, admin_id: int, audience: Audience) -> int:
        data = await self._admin(
            admin_id, "GET", "/broadcasts/audience", params={"audience": audience}
        )
        return AudienceCount.model_validate(data).count

    async def create_broadcast(
        self, admin_id: int, audience: Audience, from_chat_id: int, message_id: int
    ) -> BroadcastInfo:
        body = {"audience": audience, "from_chat_id": from_chat_id, "message_id": message_id}
        data = await self._admin(admin_id, "POST", "/broadcasts", json=body)
        return BroadcastInfo.model_validate(data)

    async def broadcasts(self, admin_id: int, status: str | None = None) -> list[BroadcastInfo]:
        params = {"status": status} if status else None
        data = await self._admin(admin_id, "GET", "/broadcasts", params=params)
        return [BroadcastInfo.model_validate(item) for item in data]

    async def broadcast_batch(
        self, admin_id: int, broadcast_id: int, limit: int, lease_seconds: int
    ) -> BroadcastBatch:
        """The next recipients after the cursor, leased to this runner."""
        body = {"limit": limit, "lease_seconds": lease_seconds}
        data = await self._admin(admin_id, "POST", f"/broadcasts/{broadcast_id}/batch", json=body)
        return BroadcastBatch.model_validate(data)

    async def broadcast_progress(
        self,
        admin_id: int,
        broadcast_id: int,
        *,
        cursor: int,
        delivered: int,
        blocked: int,
        failed: int,
        blocked_ids: list[int],
    ) -> BroadcastInfo:
        """Counts for the recipients up to `cursor` (a replay changes nothing)."""
        body = {
            "cursor": cursor,
            "delivered": delivered,
            "blocked": blocked,
            "failed": failed,
            "blocked_ids": blocked_ids,
        }
        data = await self._admin(
            admin_id, "POST", f"/broadcasts/{broadcast_id}/progress", json=body
        )
        return BroadcastInfo.model_validate(data)

    async def finish_broadcast(self, admin_id: int, broadcast_id: int) -> BroadcastInfo:
        data = await self._admin(admin_id, "POST", f"/broadcasts/{broadcast_id}/finish")
        return BroadcastInfo.model_validate(data)

    async def cancel_broadcast(self, admin_id: int, broadcast_id: int) -> BroadcastInfo:
        data = await self._admin(admin_id, "POST", f"/broadcasts/{broadcast_id}/cancel")
        return BroadcastInfo.model_validate(data)

    async def _admin(self, admin_id: int, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"X-Admin-Id": str(admin_id)}
        return await self._call(method, f"/api/v1/admin{path}", headers=headers, **kwargs)

    async def _call(
        self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any
    ) -> Any:
        """One request; GETs and calls marked `idempotent` are retried once on a stale
        connection. Others (a claim, a payment) are not: the backend may have acted on them.
        Any call is retried once when it could not connect: nothing was sent."""
        retry = idempotent or method == "GET"
        try:
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.ConnectError:
                response = await self._http.request(method, path, **kwargs)
            except STALE_CONNECTION:
                if not retry:
                    raise
                response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailable(type(exc).__name__) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response.json()

    @staticmethod
    def _error(response: httpx.Response) -> BackendError:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error.get("message", ""))
            details = error.get("details") if isinstance(error.get("details"), dict) else {}
        except (ValueError, KeyError, TypeError):
            code, message, details = "", response.text[:200], {}
        if response.status_code >= 500 and code in {"", "internal_error", "database_unavailable"}:
            return BackendUnavailable(message or code, response.status_code)
        return BackendError(code or "backend_error", message, response.status_code, details)
