"""What the list endpoints share about paging."""

from __future__ import annotations

from math import isinf

from ninja import Field, Query, Schema
from ninja.conf import settings
from ninja.pagination import LimitOffsetPagination

# PostgreSQL's LIMIT and OFFSET are bigints: a larger one is an error there (and, inside a
# transaction, leaves it aborted), so it is refused here.
MAX_OFFSET = 2**63 - 1
MAX_LIMIT = MAX_OFFSET if isinf(settings.PAGINATION_MAX_LIMIT) else settings.PAGINATION_MAX_LIMIT


class Paging(LimitOffsetPagination):
    """`limit` and `offset`, as django-ninja pages, each bounded."""

    class Input(Schema):
        limit: int = Field(settings.PAGINATION_PER_PAGE, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)


def offset_param():
    """The `offset` query parameter of a list that pages by hand, bounded like Paging's."""
    return Query(0, ge=0, le=MAX_OFFSET)
