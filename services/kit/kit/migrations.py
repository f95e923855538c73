"""Versioned SQL migrations, applied at start-up.

Files are `NNNN_description.sql` in a service's `migrations/` folder, applied in order,
each once. All instances of a service start together, so the whole run holds a
transaction-scoped advisory lock: the first instance migrates, the others wait and then
find nothing left to do. A file edited after it was applied is refused (its checksum no
longer matches), because the database already reflects the old text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import AsyncConnection, sql

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed 64-bit number; it only has to be the same for every instance of a service.
_LOCK_KEY = 0x5_0_0_5_7_A_C_C


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), path.stem, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return found


# The kit's own tables (outbox, inbox) are versioned apart from each service's, so both
# can number their files from 0001.
KIT_MIGRATIONS = Path(__file__).resolve().parent / "sql"
SERVICE_TABLE, KIT_TABLE = "schema_migrations", "kit_schema_migrations"


async def apply_migrations(
    conn: AsyncConnection, migrations: list[Migration], *, table: str = SERVICE_TABLE
) -> list[str]:
    """Apply what is pending in one transaction; return the names applied."""
    if table not in (SERVICE_TABLE, KIT_TABLE):
        raise ValueError(f"unknown migrations table {table!r}")
    history = sql.Identifier(table)
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
            ).format(history)
        )
        cursor = await conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(history))
        done = {version: checksum for version, checksum in await cursor.fetchall()}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(sql.SQL(migration.sql))
            await conn.execute(
                sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
                    history
                ),
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.name)
    return applied_now
