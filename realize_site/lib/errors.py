"""What a failure says: one line, never a traceback; on a page, as a sentence."""

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


def sentence(text: str) -> str:
    """A domain error (one lowercase line) as a sentence on a page."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
