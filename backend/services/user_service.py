"""Users: registration from a Telegram profile, their profile, their choices."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.database import crud
from backend.models.database import User
from backend.models.enums import Language
from backend.models.schemas import TelegramProfile, UserProfile, UserUpdate
from backend.services.catalog import Catalog
from backend.services.clock import Clock, utcnow
from backend.utils.exceptions import InstructionsTooLong, UnknownMode, UnknownModel, UserNotFound

# Telegram language codes whose speakers get the Russian interface by default.
RUSSIAN_SPEAKING = frozenset({"ru", "be", "kk", "ky"})


def language_for(language_code: str | None) -> Language:
    """The interface language a new user starts with, from Telegram's `language_code`."""
    if language_code and language_code.split("-")[0].lower() in RUSSIAN_SPEAKING:
        return Language.RU
    return Language.EN


@dataclass(frozen=True, slots=True)
class QuotaState:
    messages_limit: int
    messages_left: int
    vip_expires_at: datetime | None

    @property
    def is_vip(self) -> bool:
        return self.vip_expires_at is not None


async def require_user(session: AsyncSession, telegram_id: int) -> User:
    """The registered user, or `UserNotFound`."""
    user = await crud.get_user(session, telegram_id)
    if user is None:
        raise UserNotFound(telegram_id=telegram_id)
    return user


async def quota_state(session: AsyncSession, user: User, now: datetime) -> QuotaState:
    """The user's free allowance and VIP expiry as of `now`."""
    trial = await crud.get_trial(session, user.id)
    return QuotaState(
        messages_limit=trial.messages_limit if trial else 0,
        messages_left=trial.messages_left if trial else 0,
        vip_expires_at=await crud.vip_expires_at(session, user.id, now),
    )


def build_profile(user: User, quota: QuotaState) -> UserProfile:
    return UserProfile(
        telegram_id=user.telegram_id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        language_code=user.language_code,
        language=Language(user.language),
        is_vip=quota.is_vip,
        vip_expires_at=quota.vip_expires_at,
        free_messages_left=quota.messages_left,
        free_messages_limit=quota.messages_limit,
        provider=user.provider,
        model=user.model,
        show_reasoning=user.show_reasoning,
        mode=user.mode,
        custom_instructions=user.custom_instructions,
        created_at=user.created_at,
        blocked=user.blocked_at is not None,
    )


class UserService:
    """Use cases about who the user is and what they chose."""

    def __init__(
        self, session: AsyncSession, settings: Settings, catalog: Catalog, clock: Clock = utcnow
    ) -> None:
        self._session = session
        self._settings = settings
        self._catalog = catalog
        self._clock = clock

    async def register(
        self, profile: TelegramProfile, *, commit: bool = True
    ) -> tuple[UserProfile, bool]:
        """Register on first contact (granting the free allowance) or refresh the profile.

        `commit=False` lets a larger use case (a payment webhook) include it in its own
        transaction.
        """
        default = self._catalog.default
        registered = await crud.register_user(
            self._session,
            crud.NewUserFields(
                telegram_id=profile.telegram_id,
                username=profile.username,
                first_name=profile.first_name,
                last_name=profile.last_name,
                language_code=profile.language_code,
                language=language_for(profile.language_code).value,
                provider=default.provider,
                model=default.key,
                mode=self._catalog.default_mode,
            ),
            free_messages=self._settings.free_messages_limit,
            now=self._clock(),
        )
        quota = QuotaState(
            messages_limit=registered.messages_limit,
            messages_left=registered.messages_left,
            vip_expires_at=registered.vip_expires_at,
        )
        if commit:
            await self._session.commit()
        return build_profile(registered.user, quota), registered.created

    async def get_profile(self, telegram_id: int) -> UserProfile:
        """The profile the bot shows: who, VIP or free, messages left, chosen model."""
        user = await require_user(self._session, telegram_id)
        return build_profile(user, await quota_state(self._session, user, self._clock()))

    def _instructions(self, text: str) -> str | None:
        """A personal instruction as stored: trimmed, None when cleared, bounded in length."""
        text = text.strip()
        limit = self._settings.custom_instructions_max_chars
        if len(text) > limit:
            raise InstructionsTooLong(
                f"The instruction is {len(text)} characters; the limit is {limit}.",
                limit=limit,
                length=len(text),
            )
        return text or None

    async def update(self, telegram_id: int, change: UserUpdate) -> UserProfile:
        """Change the model (checked against the catalog), language, mode or instruction."""
        user = await require_user(self._session, telegram_id)
        if change.model is not None:
            entry = self._catalog.get(change.model)
            if entry is None:
                raise UnknownModel(f"There is no model {change.model!r} in the catalog.")
            if change.provider is not None and change.provider != entry.provider:
                raise UnknownModel(
                    f"Model {change.model!r} belongs to {entry.provider!r}, "
                    f"not {change.provider!r}."
                )
            user.provider, user.model = entry.provider, entry.key
        elif change.provider is not None:
            if change.provider not in self._catalog.providers:
                raise UnknownModel(f"There is no provider {change.provider!r} in the catalog.")
            if user.provider != change.provider:
                first = next(m for m in self._catalog.models if m.provider == change.provider)
                user.provider, user.model = first.provider, first.key
        if change.language is not None:
            user.language = change.language.value
        if change.show_reasoning is not None:
            user.show_reasoning = change.show_reasoning
        if change.mode is not None:
            if self._catalog.mode(change.mode) is None:
                raise UnknownMode(f"There is no mode {change.mode!r} in the catalog.")
            user.mode = change.mode
        if change.custom_instructions is not None:
            user.custom_instructions = self._instructions(change.custom_instructions)
        user.updated_at = self._clock()
        await self._session.flush()
        result = build_profile(user, await quota_state(self._session, user, self._clock()))
        await self._session.commit()
        return result
