"""`python -m backend`: serve the API with uvicorn on BACKEND_HOST:BACKEND_PORT."""

import sys

import uvicorn
from pydantic import ValidationError

from backend.config import Settings
from backend.main import create_app
from backend.services.catalog import CatalogError
from backend.utils.logger import setup_logging

# Idle client connections are kept this long, longer than the bot keeps them
# (bot.services.backend.KEEPALIVE_EXPIRY_S), so the bot is never the one to find a connection
# closed under its request.
KEEP_ALIVE_S = 30


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"backend: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format.value)
    try:
        app = create_app(settings)
    except CatalogError as exc:
        print(f"backend: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.backend_host,
        port=settings.backend_port,
        log_config=None,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
