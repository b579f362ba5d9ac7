"""Small helpers every app may use; they import no app."""

from realize_site.lib.errors import first_line, one_line, sentence
from realize_site.lib.home import (
    PEERD_SOCKET,
    peerd_socket,
    realize_home,
    secret_key,
    up_state_file,
    write_private_file,
)
from realize_site.lib.names import name_problem

__all__ = [
    "sentence",
    "PEERD_SOCKET",
    "first_line",
    "name_problem",
    "one_line",
    "peerd_socket",
    "realize_home",
    "secret_key",
    "up_state_file",
    "write_private_file",
]
