"""Setting up an instance's database: create it if missing, migrate, first admin login."""

import secrets

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from psycopg import sql

ADMIN_USERNAME = "admin"


class ProvisionError(RuntimeError):
    pass


def _connect_kwargs(dbname: str) -> dict:
    db = settings.DATABASES["default"]
    kwargs = {
        "dbname": dbname,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "connect_timeout": 10,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


def ensure_database() -> bool:
    """Create the instance's database if it does not exist. True if created."""
    name = settings.DATABASES["default"]["NAME"]
    try:
        with psycopg.connect(**_connect_kwargs("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.errors.DuplicateDatabase:
        return False
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProvisionError(f"cannot create database {name!r}: {first_line}") from None


def migrate() -> None:
    call_command("migrate", interactive=False, verbosity=0)


def ensure_first_admin() -> str | None:
    """Create the first admin login if there is no superuser; return its password once."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser(username=ADMIN_USERNAME, email="", password=password)
    return password
