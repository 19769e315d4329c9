from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema


class WorkspaceOut(Schema):
    slug: str
    name: str
    role: str


class MeOut(Schema):
    email: str
    workspaces: list[WorkspaceOut]


class MemberOut(Schema):
    email: str
    role: str


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The bearer value. Shown once; only a digest is stored.")


class HealthOut(Schema):
    database: str
    redis: str
    workers: int
    detail: str | None = None
