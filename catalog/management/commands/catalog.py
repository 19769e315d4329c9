from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.imports import catalog_import_csv
from catalog.models import StoreConnection


class Command(BaseCommand):
    help = (
        "`aios catalog import FILE.csv --store ID|SHOP_DOMAIN`: imports Shopify's product CSV "
        "export into a connected store's catalog (and memory), showing its progress."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["import"])
        parser.add_argument("file")
        parser.add_argument("--store", required=True, help="the store's id or shop domain")

    def handle(self, *args, action: str, file: str, store: str, **options) -> None:
        connection = (
            StoreConnection.objects.filter(pk=int(store)).first()
            if store.isdigit()
            else StoreConnection.objects.filter(shop_domain=store.lower()).first()
        )
        if connection is None:
            raise CommandError(f"no store {store!r}")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no file {file}")
        try:
            count = catalog_import_csv(
                connection=connection,
                text=path.read_text(encoding="utf-8-sig"),
                progress=self._progress,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"\nimported {count} products into {connection.shop_domain}")

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        bar = "#" * filled + "." * (width - filled)
        end = "" if sys.stdout.isatty() else "\n"
        self.stdout.write(f"\r[{bar}] {done}/{total}", ending=end)
        self.stdout.flush()
