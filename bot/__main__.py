"""`python -m bot`: the Telegram bot, by webhook (BOT_MODE=webhook) or long polling."""

import asyncio
import sys

from pydantic import ValidationError

from bot.config import BotSettings
from bot.main import run
from bot.utils.logging import setup_logging


def main() -> int:
    try:
        settings = BotSettings()
    except ValidationError as exc:
        print(f"bot: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
