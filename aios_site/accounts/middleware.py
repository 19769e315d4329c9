"""Each workspace page speaks the member's language and keeps their clock.

A member's `language` (dates, numbers, money and language names follow it) and `time_zone`
(every time shown, every time typed into a form) are switched on when a page finds the
member's membership (aios_site/pages.py: `page_membership`), with no query of their own.
Elsewhere, and for a member who chose nothing, the browser's Accept-Language decides the
language, as Django's LocaleMiddleware does, and times are the site's (settings.TIME_ZONE).
This middleware starts every request on the site's clock, since a time zone switched on
stays with the thread."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone, translation


class MemberLocale:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timezone.deactivate()
        return self.get_response(request)


def member_locale_activate(request, membership) -> None:
    """The member's language and time zone, for the rest of this request."""
    if membership.language:
        translation.activate(membership.language)
        request.LANGUAGE_CODE = membership.language
    if zone := zone_named(membership.time_zone):
        timezone.activate(zone)


def zone_named(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
