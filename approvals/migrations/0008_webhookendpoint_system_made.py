from __future__ import annotations

from django.db import migrations, models


def mark_the_demo_shops_blog(apps, schema_editor):
    """The demo's publishing endpoint, saved before this field: the system made it."""
    StoreConnection = apps.get_model("catalog", "StoreConnection")
    WebhookEndpoint = apps.get_model("approvals", "WebhookEndpoint")
    demo = StoreConnection.objects.filter(shop_domain="demo-shop.myshopify.com")
    WebhookEndpoint.objects.filter(
        workspace_id__in=demo.values("workspace_id"), name="publish"
    ).update(system_made=True)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0007_audit_owned_by_its_own_role"),
        ("catalog", "0007_scheduled_post_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="system_made",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_the_demo_shops_blog, migrations.RunPython.noop),
    ]
