"""The store side: connections to Shopify-compatible shops, the webhook events they send,
and the catalog those events keep up to date (authoritative data, mirrored into memory)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from aios_site import crypto
from aios_site.accounts.models import Workspace
from aios_site.core.lease import Leased


class StoreConnection(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="stores")
    shop_domain = models.CharField(max_length=255, unique=True)
    api_base_url = models.URLField(max_length=500, help_text="The shop's origin.")
    api_version = models.CharField(max_length=10, default="2026-01")
    outbound_url = models.URLField(max_length=500, blank=True)
    access_token_encrypted = models.TextField()
    webhook_secrets_encrypted = models.JSONField(default=list, help_text="One or two (rotation).")
    languages = models.JSONField(default=list)
    # The shop's currency (ISO 4217), in which its prices are shown and edited.
    currency = models.CharField(max_length=3, default="USD")
    brand_namespace = models.SlugField(max_length=50, default="brand")
    created_at = models.DateTimeField(auto_now_add=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.shop_domain

    access_token = crypto.encrypted("access_token_encrypted")

    @property
    def primary_language(self) -> str:
        """The language of the product's own description (`body_html`); the others go to
        metafields."""
        return (self.languages or ["en"])[0]

    @property
    def webhook_secrets(self) -> list[str]:
        return [crypto.decrypt(secret) for secret in self.webhook_secrets_encrypted]

    @webhook_secrets.setter
    def webhook_secrets(self, values: list[str]) -> None:
        self.webhook_secrets_encrypted = [crypto.encrypt(value) for value in values]


class EventStatus(models.TextChoices):
    RECEIVED = "received"  # stored, waiting for a worker
    PROCESSED = "processed"
    IGNORED = "ignored"  # a topic AIOS does not act on; kept as it came
    STALE = "stale"  # older than what is stored: applied nothing
    FAILED = "failed"


class WebhookEvent(models.Model):
    """A delivery as it arrived, stored before anything else happens to it."""

    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="events")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    topic = models.CharField(max_length=100)
    webhook_id = models.CharField(max_length=100)
    event_id = models.CharField(max_length=100, blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    api_version = models.CharField(max_length=20, blank=True)
    body = models.JSONField()
    status = models.CharField(
        max_length=10, choices=EventStatus.choices, default=EventStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "webhook_id"], name="webhook_event_once"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-received_at"]),
            # The sweep's question: which deliveries are still waiting for a worker?
            models.Index(
                fields=["received_at"],
                condition=models.Q(status="received"),
                name="webhook_event_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"


class Product(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="products")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE)
    external_id = models.BigIntegerField()
    title = models.CharField(max_length=500)
    handle = models.CharField(max_length=255, blank=True)
    body_html = models.TextField(blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    tags = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=20, blank=True)
    source_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the shop last changed it (newest wins)."
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict)
    # The description per shop language, as AIOS last wrote it ({"en": html, "es": html}); the
    # shop's primary language is also `body_html`, the others live in the shop's metafields.
    descriptions = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="product_once"),
        ]

    def __str__(self) -> str:
        return self.title


class Variant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    external_id = models.BigIntegerField()
    title = models.CharField(max_length=255)
    sku = models.CharField(max_length=255, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    inventory_item_id = models.BigIntegerField(null=True, blank=True)
    inventory_quantity = models.IntegerField(null=True, blank=True)
    inventory_updated_at = models.DateTimeField(null=True, blank=True)
    # "deny": it stops selling at zero; "continue": it takes orders while out of stock.
    inventory_policy = models.CharField(max_length=20, default="deny")
    cost = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="What one unit costs."
    )
    position = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["product", "external_id"], name="variant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.product} / {self.title}"


class Customer(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="customers")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE)
    external_id = models.BigIntegerField()
    email = models.CharField(max_length=255, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    locale = models.CharField(max_length=20, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="customer_once"),
        ]

    def __str__(self) -> str:
        return self.email or f"customer {self.external_id}"


class Order(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="orders")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE)
    external_id = models.BigIntegerField()
    name = models.CharField(max_length=50, blank=True, help_text="#1001, as customers see it.")
    email = models.CharField(max_length=255, blank=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL)
    financial_status = models.CharField(max_length=30, blank=True)
    fulfillment_status = models.CharField(max_length=30, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    total_price = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    currency = models.CharField(max_length=3, blank=True)
    line_items = models.JSONField(default=list)
    placed_at = models.DateTimeField(null=True, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="order_once"),
        ]

    def __str__(self) -> str:
        return self.name or f"order {self.external_id}"


class DataExport(models.Model):
    """What AIOS holds about a customer, gathered for a `customers/data_request`: the shop
    owner sends it on to the customer."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE)
    customer_external_id = models.BigIntegerField()
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"data of customer {self.customer_external_id}"


class Message(models.Model):
    """A customer's message from a helpdesk, email or chat connector."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE)
    external_id = models.CharField(max_length=200, blank=True)
    customer_email = models.CharField(max_length=255)
    customer_name = models.CharField(max_length=255, blank=True)
    channel = models.CharField(max_length=30, default="email")
    subject = models.CharField(max_length=500, blank=True)
    body = models.TextField()
    order_ref = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # What the support agent found: the language, the intent and how sure it was.
    language = models.CharField(max_length=10, blank=True)
    intent = models.CharField(max_length=50, blank=True)
    confidence = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "external_id"],
                condition=~models.Q(external_id=""),
                name="message_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_email}: {self.subject or self.body[:40]}"


class AlertStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class Alert(models.Model):
    """Stock running out: raised by the inventory agent, resolved when stock comes back."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alerts")
    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE)
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20)  # low_stock | sold_out
    quantity = models.IntegerField()
    days_of_cover = models.FloatField(null=True, blank=True, help_text="None: no recent sales.")
    daily_sales = models.FloatField(default=0)
    threshold_days = models.FloatField()
    message = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    run_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["variant"],
                condition=models.Q(status="open"),
                name="alert_open_once",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "status"])]

    def __str__(self) -> str:
        return self.message


# -- content: briefs, drafts and scheduled posts ------------------------------------------------


class Channel(models.TextChoices):
    BLOG = "blog"
    NEWSLETTER = "newsletter"
    SOCIAL = "social"


class BriefStatus(models.TextChoices):
    DRAFTING = "drafting"  # the content writer researches and drafts
    IN_REVIEW = "in_review"  # its drafts wait on the board
    APPROVED = "approved"  # drafts kept; the schedule waits on the board
    SCHEDULED = "scheduled"
    PUBLISHED = "published"  # every post went out
    FAILED = "failed"  # a post could not be published (the post says why)
    REJECTED = "rejected"  # a person turned the drafts or the schedule down


class ContentBrief(models.Model):
    """What the owner wants written: a topic for an audience, on some channels, in some
    languages, in the voice of a brand namespace of memory. Also memory's `briefs/brief-N`
    fact, which the writer recalls as the canonical brief."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="briefs")
    topic = models.CharField(max_length=200)
    audience = models.CharField(max_length=200, blank=True)
    channels = models.JSONField(help_text='Some of "blog", "newsletter", "social".')
    tone = models.SlugField(max_length=50, default="brand", help_text="A memory namespace.")
    due_at = models.DateTimeField(null=True, blank=True, help_text="When to publish.")
    languages = models.JSONField(default=list)
    research_urls = models.JSONField(default=list, blank=True, help_text="Only these are read.")
    status = models.CharField(
        max_length=12, choices=BriefStatus.choices, default=BriefStatus.DRAFTING
    )
    status_reason = models.CharField(max_length=500, blank=True)
    run = models.ForeignKey(
        "agents.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return self.topic

    @property
    def memory_key(self) -> str:
        return f"brief-{self.pk}"


class Author(models.TextChoices):
    AGENT = "agent"
    HUMAN = "human"


class ContentDraft(models.Model):
    """One version of a brief's text for one channel and language: the agent's draft as
    approved, then the person's edit of it (with the word diff from the version before)."""

    brief = models.ForeignKey(ContentBrief, on_delete=models.CASCADE, related_name="drafts")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    language = models.CharField(max_length=10)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=300, blank=True, help_text="A newsletter's subject.")
    body = models.TextField()
    author = models.CharField(max_length=8, choices=Author.choices)
    author_label = models.CharField(max_length=200, blank=True, help_text="Agent or person.")
    tier = models.CharField(max_length=12, blank=True, help_text="What wrote it: remote, …")
    notes = models.JSONField(default=list, blank=True, help_text="Limits trimmed or exceeded.")
    diff = models.JSONField(null=True, blank=True, help_text="Word diff from the version before.")
    proposal = models.ForeignKey(
        "approvals.Proposal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["channel", "language", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["brief", "channel", "language", "version"], name="content_draft_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brief} · {self.channel} {self.language} v{self.version}"


class PostStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"  # claimed by a worker; its lease runs out if the worker dies
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ScheduledPost(Leased):
    """An approved draft version to publish on a channel at a time, through the workspace's
    `publish` webhook endpoint."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="posts")
    brief = models.ForeignKey(ContentBrief, on_delete=models.CASCADE, related_name="posts")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    language = models.CharField(max_length=10)
    draft = models.ForeignKey(ContentDraft, on_delete=models.PROTECT, related_name="posts")
    publish_at = models.DateTimeField()
    status = models.CharField(
        max_length=12, choices=PostStatus.choices, default=PostStatus.SCHEDULED
    )
    proposal = models.ForeignKey(
        "approvals.Proposal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["publish_at", "pk"]
        constraints = [
            # A schedule's commit run twice creates each post once.
            models.UniqueConstraint(
                fields=["proposal", "channel", "language"], name="scheduled_post_once"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "publish_at"]),
            models.Index(
                fields=["publish_at"],
                condition=models.Q(status__in=["scheduled", "publishing"]),
                name="scheduled_post_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brief} · {self.channel} {self.language} at {self.publish_at:%Y-%m-%d %H:%M}"

    @property
    def idempotency_key(self) -> str:
        """Sent with the publication; from our id, so a retry publishes nothing twice."""
        return f"aios-post-{self.pk}"
