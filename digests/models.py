"""Who gets which e-mails about a tenant, and every e-mail sent, once.

A delivery row is claimed before its e-mail is sent and marked sent afterwards; its
unique (subscription, kind, period) makes a retried or duplicated task find the row and
send nothing. A send that fails keeps its row, marked failed with the error (as NetBox
keeps its jobs), and the next attempt claims that row again, up to ``MAX_ATTEMPTS``.
"""

from django.conf import settings
from django.db import models


class Subscription(models.Model):
    """One user's e-mails about one tenant."""

    class Frequency(models.TextChoices):
        AFTER_SYNC = "after_sync", "After each sync with changes"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        OFF = "off", "Off"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions"
    )
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="subscriptions"
    )
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    # A weekly digest even when nothing changed, saying so.
    all_quiet = models.BooleanField(default=False)
    # Where the first digest after (re)subscribing starts: the tenant's newest run then,
    # so that switching e-mails on does not mail the tenant's whole history.
    starts_after_run = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["tenant__name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="subscription_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.tenant}: {self.frequency}"


class DigestDelivery(models.Model):
    class Kind(models.TextChoices):
        DIGEST = "digest", "Digest"
        ALERT = "alert", "ControlPlane alert"

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    # Sends started for one e-mail, the first included: the task's retries stop there.
    MAX_ATTEMPTS = 6

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    # What the e-mail is for: "daily-2025-06-02", "weekly-2025-W23", "sync-42".
    period = models.CharField(max_length=40)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.SENDING)
    # The newest sync run the e-mail covers: the next digest starts after it.
    up_to_run = models.PositiveBigIntegerField(default=0)
    # The unused, unexplained and missing permissions at that point, so that the next
    # digest can say which are new.
    findings = models.JSONField(default=list, blank=True)
    # When the current (or last) attempt began, and how many have begun, this one included.
    claimed_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=1)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    # The last failed attempt's exception, "SMTPServerDisconnected: ...", secrets redacted;
    # cleared when the e-mail goes out.
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "kind", "period"], name="digest_delivery_once"
            ),
        ]
        indexes = [
            # The outbox lists the failed ones, a few among all e-mails ever sent.
            models.Index(
                fields=["-claimed_at"],
                condition=models.Q(status="failed"),
                name="digest_delivery_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period} for {self.subscription} ({self.status})"
