"""API tokens: how a script logs in to the JSON API (realize_site.api)."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

PREFIX = "rlz_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def issue(self, user, name: str) -> tuple["ApiToken", str]:
        """A new token for the user: the row, and the token itself (shown once: only its
        digest is kept)."""
        token = PREFIX + secrets.token_urlsafe(32)
        shown = token[: len(PREFIX) + 4]
        row = self.create(user=user, name=name, shown=shown, digest=digest(token))
        return row, token

    def user_for(self, token: str):
        """The active user a token stands for, or None; its use is noted."""
        row = self.select_related("user").filter(digest=digest(token)).first()
        if row is None or not row.user.is_active:
            return None
        self.filter(pk=row.pk).update(last_used_at=timezone.now())
        return row.user


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    shown = models.CharField(max_length=16)  # its first characters, to tell tokens apart
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]


class SampleQuerySet(models.QuerySet):
    def between(self, start, end) -> "SampleQuerySet":
        return self.filter(at__gt=start, at__lte=end).order_by("at")

    def trim(self, before) -> int:
        """Forget the samples taken before `before`: the table stays bounded."""
        deleted, _ = self.filter(at__lt=before).delete()
        return deleted


class TrafficSample(models.Model):
    """The bytes one process moved with a peer in the interval (about a minute) that ended at
    `at`, as written by realize_site.sampling: peerd for its connections and the data links
    it serves, the worker and the mount for the data links they dial. Intervals that moved
    nothing leave no row."""

    at = models.DateTimeField(db_index=True)
    peer = models.CharField(max_length=64)
    sent = models.BigIntegerField()
    received = models.BigIntegerField()

    objects = SampleQuerySet.as_manager()


class CacheSample(models.Model):
    """The mount's cache of Unreal content at `at`: bytes held, and its bound."""

    at = models.DateTimeField(db_index=True)
    held = models.BigIntegerField()
    limit = models.BigIntegerField()

    objects = SampleQuerySet.as_manager()
