# A post's publishing runs under the one lease (aios_site/core/lease.py).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0006_content_briefs_drafts_posts'),
    ]

    operations = [
        migrations.RenameField(
            model_name='scheduledpost',
            old_name='attempts',
            new_name='lease_attempts',
        ),
        migrations.AlterField(
            model_name='scheduledpost',
            name='lease_attempts',
            field=models.PositiveIntegerField(default=0, help_text='Claims so far.'),
        ),
        migrations.RemoveField(
            model_name='scheduledpost',
            name='claimed_at',
        ),
        migrations.AddField(
            model_name='scheduledpost',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, help_text='Until when the current holder has it; empty: free.', null=True),
        ),
        migrations.AddField(
            model_name='scheduledpost',
            name='lease_token',
            field=models.BigIntegerField(blank=True, help_text='Fencing token of the latest claim.', null=True),
        ),
    ]
