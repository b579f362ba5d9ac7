"""Names people give to peers and areas: short, and safe in URLs, paths and commands."""

import re

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def name_problem(name: str, what: str) -> str | None:
    """Why `name` cannot name a `what` (one line for a person), or None if it can."""
    if _NAME.match(name):
        return None
    return (
        f"{name!r} is not a valid {what} name: use 1-64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )
