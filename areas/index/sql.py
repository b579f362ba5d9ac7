"""Inserting many rows at once with PostgreSQL's COPY: ORM INSERTs are slow for a scan's rows.

Writers here (and in blobs, history and the scanner) join the caller's transaction without a
savepoint: each savepoint costs two round trips. An error then rolls back the caller's whole
transaction, after which no caller carries on anyway.
"""

from collections.abc import Iterable

import psycopg
from django.db import connection, transaction
from django.db.models import Model


def rows(query: str, params: list) -> list[tuple]:
    """Run a read query written for PostgreSQL.

    Many keys go in one binary array parameter (`= ANY(%b)`): the ORM's IN (...) is slow."""
    with _cursor() as cursor:
        # Planned afresh each time: a reused plan would suit other table sizes and array lengths.
        cursor.execute(query, params, prepare=False)
        return cursor.fetchall()


def execute(query: str, params: list) -> None:
    """Run a write query written for PostgreSQL, with parameters as `rows` takes them."""
    with _cursor() as cursor:
        cursor.execute(query, params, prepare=False)


def _cursor():
    """A psycopg cursor sending parameters apart from the query, binary where it can.

    Django's cursor writes them into the query text, slow for thousands of hashes."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def copy_rows(
    model: type[Model], fields: list[str], rows: Iterable[tuple], ignore_conflicts: bool = False
) -> None:
    """Insert `rows` (values in `fields` order).

    With ignore_conflicts, rows breaking a unique constraint are skipped."""
    if ignore_conflicts:
        insert_new(model, fields, list(rows))
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        _copy(cursor.cursor, model._meta.db_table, model, fields, rows)


def insert_new(
    model: type[Model], fields: list[str], rows: list[tuple], returning: str = ""
) -> list[tuple]:
    """INSERT ... ON CONFLICT DO NOTHING of many rows, via a binary COPY into a temporary table.

    COPY is encoded by psycopg's C code; array parameters were encoded value by value in Python.
    With `returning` (columns), those of the rows actually inserted."""
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
