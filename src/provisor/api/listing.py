"""The list parameters shared by ``/dev_mgr/devices`` and ``/cfg_mgr/configs``.

``q``/``q64`` selectors, ``fields`` projection, ``skip``/``limit`` paging and
``sort``/``sort_ord``, validated strictly: a bad value is a 400 naming it, never "everything".
``skip`` and ``limit`` are ASCII digits within :data:`MAX_PAGING` (a 32-bit count, what every
database takes for OFFSET/LIMIT), checked before any conversion to int.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from provisor.domain.selector import (
    Selector,
    parse_fields,
    parse_paging,
    parse_selector,
    parse_sort,
    project,
)
from provisor.errors import InvalidInput
from provisor.store.documents import Page

__all__ = ["MAX_PAGING", "ListQuery", "checked_count", "list_query"]

#: Largest ``skip`` or ``limit`` accepted.
MAX_PAGING = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def checked_count(name: str, text: str | None) -> str | None:
    """``text`` unchanged when it is a count within 0..MAX_PAGING, else a 400 naming it."""
    if text is None or text == "":
        return text
    if not _DIGITS.fullmatch(text) or int(text) > MAX_PAGING:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise InvalidInput(f"{name}: {shown!r} is not an integer between 0 and {MAX_PAGING}")
    return text


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request."""

    selector: Selector
    fields: list[str] | None
    page: Page

    def project(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply the ``fields`` projection."""
        if self.fields is None:
            return docs
        return [project(d, self.fields) for d in docs]


def list_query(request: Request) -> ListQuery:
    """Parse the list parameters of a request."""
    qp = request.query_params
    selector = parse_selector(qp.get("q"), qp.get("q64"))
    skip, limit = parse_paging(
        checked_count("skip", qp.get("skip")), checked_count("limit", qp.get("limit"))
    )
    sort = parse_sort(qp.get("sort"), qp.get("sort_ord"))
    return ListQuery(
        selector=selector,
        fields=parse_fields(qp.get("fields")),
        page=Page(skip=skip, limit=limit, sort=sort),
    )
