from __future__ import annotations

from aios_site.accounts.selectors import membership_list

NAV_SECTIONS = [
    ("board", "Board"),
    ("runs", "Runs"),
    ("agents", "Agents"),
    ("costs", "Costs"),
    ("memory", "Memory"),
    ("catalog", "Catalog"),
    ("content", "Content"),
    ("metrics", "Metrics"),
    ("models", "Models"),
    ("evals", "Evals"),
    ("audit", "Audit"),
    ("settings", "Settings"),
]


def workspace_nav(request) -> dict:
    """The navigation and the workspace switcher, for every page of a signed-in person."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_sections": NAV_SECTIONS, "nav_memberships": membership_list(user=user)}
