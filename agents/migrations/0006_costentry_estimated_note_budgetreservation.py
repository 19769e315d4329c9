import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('agents', '0005_agent_webhook_topics'),
    ]

    operations = [
        migrations.AddField(
            model_name='costentry',
            name='estimated',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='costentry',
            name='note',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.CreateModel(
            name='BudgetReservation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('counter_ids', django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), size=None)),
                ('amount', models.DecimalField(decimal_places=6, max_digits=14)),
                ('expires_at', models.DateTimeField()),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='accounts.workspace')),
            ],
            options={
                'indexes': [models.Index(fields=['workspace', 'expires_at'], name='budget_reservation_expiry')],
            },
        ),
    ]
