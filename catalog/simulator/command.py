"""`aios simulate-store`: serve the Admin API, send a scenario at a rate."""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from catalog.simulator.products import DEFAULT_SHOP, load_products_csv
from catalog.simulator.scenarios import SCENARIOS, Event, shop_day, steady
from catalog.simulator.store import StoreSimulator

SEND_TRIES, SEND_WAIT = 5, 2.0


def deliver(
    sim: StoreSimulator,
    event: Event,
    *,
    tries: int = SEND_TRIES,
    wait: float = SEND_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """Applies the event to the shop and sends it. While AIOS cannot be reached (its web
    process may still be starting) it tries again, then moves on with a note: None."""
    sim.apply(event)
    webhook_id = str(uuid.uuid4())  # one delivery, however many tries
    for attempt in range(1, tries + 1):
        try:
            return sim.send(event, webhook_id=webhook_id)
        except OSError as error:
            reason = getattr(error, "reason", error)
            if attempt < tries:
                sleep(wait)
    print(
        f"  {sim.target} did not answer {event.topic} after {tries} tries ({reason}); moving on",
        flush=True,
    )
    return None


TARGET_PATIENCE = 120.0  # seconds; as long as `aios up` waits for its own processes


def target_wait(
    sim: StoreSimulator,
    *,
    patience: float = TARGET_PATIENCE,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Waits until the target answers at all (any HTTP status): launched beside AIOS, the
    simulator is often up before AIOS's web process is. False if it never answered."""
    deadline, told = time.monotonic() + patience, False
    while True:
        try:
            urllib.request.urlopen(sim.target, timeout=2).close()  # noqa: S310 - http(s) only
            return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            if time.monotonic() >= deadline:
                print(f"  {sim.target} does not answer; sending anyway", flush=True)
                return False
        if not told:
            print(f"  waiting for {sim.target} to answer …", flush=True)
            told = True
        sleep(1.0)


def run(
    sim: StoreSimulator,
    events: Iterable[Event],
    *,
    rate: float,
    count: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Sends the events at `rate` a second, a line each; returns how many were sent."""
    target_wait(sim, sleep=sleep)
    interval, due, sent = 1 / rate, time.monotonic(), 0
    for event in itertools.islice(events, count):
        sleep(max(0.0, due - time.monotonic()))
        due = max(due, time.monotonic()) + interval
        status = deliver(sim, event, sleep=sleep)
        print(f"→ {event.topic} {event.summary} {'-' if status is None else status}", flush=True)
        sent += 1
    return sent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aios simulate-store",
        description="A local Shopify-like store: serves the Admin API and sends a scenario's "
        "webhooks and customer messages to AIOS.",
    )
    parser.add_argument("--target", help="AIOS's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--secret", required=True, help="the webhook secret AIOS holds")
    parser.add_argument("--rate", type=float, default=2.0, help="events a second (2)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="shop-day")
    parser.add_argument("--shop", default=DEFAULT_SHOP)
    parser.add_argument("--access-token", default="shpat_simulator")
    parser.add_argument("--api-token", default=os.environ.get("AIOS_API_TOKEN"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--catalog", nargs="+", metavar="CSV", help="Shopify product CSVs")
    parser.add_argument("--count", type=int, help="send at most this many events")
    return parser


def _options(argv: list[str]) -> argparse.Namespace:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.scenario != "none" and not options.target:
        parser.error("--target is needed to send a scenario (or use --scenario none)")
    if options.target and not options.target.startswith(("http://", "https://")):
        parser.error("--target must be an http(s) URL")
    if options.rate <= 0:
        parser.error("--rate must be above 0")
    return options


def _events(options: argparse.Namespace, sim: StoreSimulator) -> Iterable[Event]:
    if options.scenario == "shop-day":
        return shop_day(products=sim.products, shop_domain=sim.shop_domain, seed=options.seed)
    return steady(products=lambda: sim.products, shop_domain=sim.shop_domain, seed=options.seed)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = _options(sys.argv[1:] if argv is None else argv)
    try:
        products = [
            product
            for path in options.catalog or []
            for product in load_products_csv(path, shop_domain=options.shop.lower())
        ]
    except (OSError, ValueError) as error:
        print(f"aios simulate-store: {error}", file=sys.stderr)
        return 2
    sim = StoreSimulator(
        shop_domain=options.shop,
        webhook_secret=options.secret,
        access_token=options.access_token,
        target=options.target,
        api_token=options.api_token,
        host=options.host,
        port=options.port,
        products=products or None,
        log=partial(print, flush=True),
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # a process manager's stop ends it cleanly
    try:
        sim.start()
    except OSError as error:
        print(
            f"aios simulate-store: cannot listen on {options.host}:{options.port}: {error}",
            file=sys.stderr,
        )
        return 1
    print(f"store simulator: Admin API at {sim.base_url} (shop {sim.shop_domain})", flush=True)
    try:
        if options.scenario != "none":
            sent = run(sim, _events(options, sim), rate=options.rate, count=options.count)
            print(f"scenario {options.scenario} done: {sent} events sent", flush=True)
        print("serving the Admin API until Ctrl-C", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0
