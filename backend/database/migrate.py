"""Run the Alembic migrations programmatically (init_db, tests, the dev launcher)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ALEMBIC_INI = MIGRATIONS_DIR / "alembic.ini"


def alembic_config(database_url: str, *, configure_logging: bool = True) -> Config:
    """An Alembic config bound to `database_url`, independent of the working directory."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade(database_url: str, revision: str = "head", *, configure_logging: bool = True) -> None:
    """Apply migrations up to `revision`; a no-op when already there."""
    command.upgrade(alembic_config(database_url, configure_logging=configure_logging), revision)


def downgrade(database_url: str, revision: str = "base", *, configure_logging: bool = True) -> None:
    command.downgrade(alembic_config(database_url, configure_logging=configure_logging), revision)


def heads() -> list[str]:
    """The head revisions of the migration history (there should be one)."""
    return list(ScriptDirectory.from_config(alembic_config("unused")).get_heads())
