"""The list parameters shared by ``/dev_mgr/devices`` and ``/cfg_mgr/configs``.

``q``/``q64`` selectors, ``fields`` projection, ``skip``/``limit`` paging and
``sort``/``sort_ord``, validated strictly: a bad value is a 400 naming it, never "everything".
"""

from __future__ import annotations

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
from provisor.store.documents import Page

__all__ = ["ListQuery", "list_query"]


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
    skip, limit = parse_paging(qp.get("skip"), qp.get("limit"))
    sort = parse_sort(qp.get("sort"), qp.get("sort_ord"))
    return ListQuery(
        selector=selector,
        fields=parse_fields(qp.get("fields")),
        page=Page(skip=skip, limit=limit, sort=sort),
    )
