"""Inserting many rows at once with PostgreSQL's COPY: indexing thousands of files writes
tens of thousands of rows, which INSERT statements built by the ORM make slow.

Writers here (and those of blobs, history and the scanner built on them) run in a
transaction of their own when called alone and join the caller's otherwise, without a
savepoint: a savepoint costs two round trips to the server (SAVEPOINT, then RELEASE), and a
batch of a scan nested a dozen of them (0.4 s of the 2 s scan of the bench tree). An error
inside rolls back the caller's whole transaction, which no caller carries on after anyway.
"""

from collections.abc import Iterable

import psycopg
from django.db import connection, transaction
from django.db.models import Model


def rows(query: str, params: list) -> list[tuple]:
    """Run a read query written for PostgreSQL. Many keys go in one array parameter
    (`= ANY(%b)`, sent in binary): the ORM's IN (...) prepares thousands of values one by
    one."""
    with _cursor() as cursor:
        # Planned for these very keys every time: a plan prepared once and reused would have
        # been made for tables of another size and arrays of a guessed length.
        cursor.execute(query, params, prepare=False)
        return cursor.fetchall()


def _cursor():
    """A psycopg cursor that sends parameters apart from the query (binary where it can):
    Django's own cursor writes them into the query text, slow for thousands of hashes."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def copy_rows(
    model: type[Model], fields: list[str], rows: Iterable[tuple], ignore_conflicts: bool = False
) -> None:
    """Insert `rows` (values in `fields` order); with ignore_conflicts, rows that would break
    a unique constraint are skipped, as INSERT ... ON CONFLICT DO NOTHING does."""
    if ignore_conflicts:
        insert_new(model, fields, list(rows))
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        _copy(cursor.cursor, model._meta.db_table, model, fields, rows)


def insert_new(
    model: type[Model], fields: list[str], rows: list[tuple], returning: str = ""
) -> list[tuple]:
    """INSERT ... ON CONFLICT DO NOTHING of many rows: copied into a temporary table of this
    session first (in binary, by psycopg's C code; array parameters were dumped value by
    value in Python), then inserted from there by the server. With `returning` (columns),
    those of the rows actually inserted."""
    if not rows:
        return []
    table = model._meta.db_table
    incoming = f"incoming_{table}"
    columns = ", ".join(f'"{model._meta.get_field(f).column}"' for f in fields)
    with transaction.atomic(savepoint=False), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{incoming}" ON COMMIT DELETE ROWS'
            f' AS SELECT {columns} FROM "{table}" WITH NO DATA'
        )
        cursor.execute(f'TRUNCATE "{incoming}"')  # this transaction may have used it already
        _copy(cursor, incoming, model, fields, rows)
        cursor.execute(
            f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM "{incoming}"'
            " ON CONFLICT DO NOTHING" + (f" RETURNING {returning}" if returning else "")
        )
        return cursor.fetchall() if returning else []


def _copy(cursor, table: str, model: type[Model], fields: list[str], rows: Iterable[tuple]):
    """COPY in binary: hashes go as they are, not spelled out in hexadecimal to be parsed."""
    model_fields = [model._meta.get_field(f) for f in fields]
    columns = ", ".join(f'"{f.column}"' for f in model_fields)
    with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types([_base_type(f) for f in model_fields])
        for row in rows:
            copy.write_row(row)


def _base_type(field) -> str:
    if field.is_relation:
        field = field.target_field
    return field.db_type(connection).split("(")[0]
