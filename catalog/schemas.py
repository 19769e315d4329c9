"""What the catalog API takes and returns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Schema

from catalog.selectors import variant_title


class StoreIn(Schema):
    shop_domain: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,250}[a-z0-9]$")
    api_base_url: str | None = Field(default=None, max_length=500)
    access_token: str = Field(min_length=1, max_length=500)
    webhook_secrets: list[str] = Field(min_length=1, max_length=2)
    outbound_url: str | None = Field(default=None, max_length=500)
    languages: list[str] = ["en"]
    currency: str = Field(default="USD", pattern=r"^[A-Za-z]{3}$")


class StoreOut(Schema):
    id: int
    shop_domain: str
    api_base_url: str
    api_version: str
    outbound_url: str
    languages: list[str]
    currency: str
    webhook_secrets: int

    @staticmethod
    def resolve_webhook_secrets(store) -> int:
        return len(store.webhook_secrets_encrypted)


class WebhookEventOut(Schema):
    id: int
    shop_domain: str = Field(alias="connection.shop_domain")
    topic: str
    webhook_id: str
    event_id: str
    triggered_at: datetime | None
    api_version: str
    status: str
    error: str
    received_at: datetime
    processed_at: datetime | None


class VariantOut(Schema):
    id: int = Field(alias="external_id")
    title: str
    sku: str
    price: Decimal | None
    compare_at_price: Decimal | None
    inventory_quantity: int | None


class ProductOut(Schema):
    id: int = Field(alias="external_id")
    shop_domain: str = Field(alias="connection.shop_domain")
    title: str
    handle: str
    vendor: str
    product_type: str
    tags: str
    status: str
    body_html: str
    source_updated_at: datetime | None
    variants: list[VariantOut]
    # Set by the API from catalog.selectors.product_rows (one query for the whole page).
    description_status: dict[str, str] = Field(
        description="Per shop language: missing, thin, ok, proposed or written."
    )
    pending_proposals: int = Field(description="Pending proposals about the product.")

    @staticmethod
    def resolve_variants(product) -> list[Any]:
        return list(product.variants.all())


class OrderOut(Schema):
    id: int = Field(alias="external_id")
    shop_domain: str = Field(alias="connection.shop_domain")
    name: str
    email: str
    financial_status: str
    fulfillment_status: str
    cancelled_at: datetime | None
    total_price: Decimal | None
    currency: str
    line_items: list[dict[str, Any]]
    placed_at: datetime | None
    redacted: bool

    @staticmethod
    def resolve_redacted(order) -> bool:
        return order.redacted_at is not None


class MessageIn(Schema):
    store: str = Field(min_length=1, max_length=255, description="The shop domain.")
    customer_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=255)
    customer_name: str = Field(default="", max_length=255)
    channel: str = Field(default="email", pattern=r"^[a-z_]{1,30}$")
    subject: str = Field(default="", max_length=500)
    body: str = Field(min_length=1, max_length=20_000)
    order_ref: str = Field(default="", max_length=100)
    external_id: str = Field(default="", max_length=200)


class MessageOut(Schema):
    id: int
    shop_domain: str = Field(alias="connection.shop_domain")
    external_id: str
    customer_email: str
    customer_name: str
    channel: str
    subject: str
    body: str
    order_ref: str
    received_at: datetime
    language: str
    intent: str
    confidence: float | None
    # Set by the API from catalog.selectors.message_rows.
    reply_status: str = Field(
        description="none, drafting, pending, approved, sent, rejected or failed."
    )


class AlertOut(Schema):
    id: int
    kind: str
    product_id: int = Field(alias="variant.product.external_id")
    variant_id: int = Field(alias="variant.external_id")
    title: str
    quantity: int
    days_of_cover: float | None
    daily_sales: float
    threshold_days: float
    message: str
    status: str
    created_at: datetime
    resolved_at: datetime | None
    run_id: int | None

    @staticmethod
    def resolve_title(alert) -> str:
        return variant_title(alert.variant)
