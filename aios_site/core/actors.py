"""Who did something: a person, an agent's run, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass

USER, AGENT, SYSTEM = "user", "agent", "system"


@dataclass(frozen=True)
class Actor:
    kind: str
    label: str
    user_id: int | None = None
    run_id: int | None = None

    @classmethod
    def of_user(cls, user) -> Actor:
        return cls(USER, user.get_username(), user_id=user.pk)

    @classmethod
    def of_run(cls, run) -> Actor:
        return cls(AGENT, f"{run.agent.slug} (run {run.pk})", run_id=run.pk)

    @classmethod
    def system(cls, label: str) -> Actor:
        return cls(SYSTEM, label)


# What the installation does by itself (demo data, an agent a connected store creates).
SETUP = Actor(SYSTEM, "aios")
