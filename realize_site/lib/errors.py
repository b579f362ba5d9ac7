"""What a failed command says: one line, never a traceback."""

from django.db import DatabaseError


def one_line(exc: BaseException) -> str | None:
    """The message for stderr, or None for a failure that is a bug (it propagates)."""
    if isinstance(exc, DatabaseError):
        return f"database error: {first_line(exc)}"
    if isinstance(exc, ValueError | RuntimeError | OSError):
        return first_line(exc)
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
