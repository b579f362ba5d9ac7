"""Inserting many rows at once with PostgreSQL's COPY: indexing thousands of files writes
tens of thousands of rows, which INSERT statements built by the ORM make slow."""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Model


def rows(query: str, params: list) -> list[tuple]:
    """Run a read query written for PostgreSQL. Many keys go in one array parameter
    (`= ANY(%s)`): the ORM's IN (...) prepares each of thousands of values one by one."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def copy_rows(
    model: type[Model], fields: list[str], rows: Iterable[tuple], ignore_conflicts: bool = False
) -> None:
    """Insert `rows` (values in `fields` order); with ignore_conflicts, rows that would break
    a unique constraint are skipped, as INSERT ... ON CONFLICT DO NOTHING does."""
    table = model._meta.db_table
    columns = ", ".join(f'"{model._meta.get_field(f).column}"' for f in fields)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        target = f'"{table}"'
        if ignore_conflicts:
            target = f'"copy_{table}"'
            raw.execute(
                f'CREATE TEMP TABLE {target} (LIKE "{table}" INCLUDING DEFAULTS INCLUDING IDENTITY)'
            )
        with raw.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if ignore_conflicts:
            raw.execute(
                f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM {target} '
                "ON CONFLICT DO NOTHING"
            )
            raw.execute(f"DROP TABLE {target}")
