"""Sorting, paging and projection of list calls, shared by the device and config stores."""

from __future__ import annotations

from typing import Any

from provisor.domain.selector import get_path, sort_key

__all__ = ["Page", "apply_page"]


class Page:
    """Sorting, paging and projection parameters of a list call."""

    def __init__(
        self,
        *,
        skip: int = 0,
        limit: int | None = None,
        sort: tuple[str, bool] | None = None,
    ) -> None:
        self.skip = skip
        self.limit = limit
        self.sort = sort


def apply_page(docs: list[dict[str, Any]], page: Page | None) -> list[dict[str, Any]]:
    """``docs`` sorted and cut to the page (all of them without one)."""
    if page is None:
        return docs
    if page.sort is not None:
        key, desc = page.sort
        docs.sort(key=lambda d: sort_key(get_path(d, key)), reverse=desc)
    end = None if page.limit is None else page.skip + page.limit
    return docs[page.skip : end]
