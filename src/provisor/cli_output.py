"""How the CLI prints lists and records: JSON, a table on a terminal, tab-separated in a pipe.

``--json`` prints exactly one JSON document on standard output (a list for ``list`` commands,
an object for ``show`` commands) with the field names documented in docs/cli.md. Without it,
a terminal gets a rich table whose identifier columns never shrink or wrap (descriptions do);
anything else (a pipe, a file) gets plain tab-separated lines, a header first, with nothing cut,
because ``awk``/``cut`` and copy-paste must see whole UUIDs, MACs and addresses.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["Column", "JsonOpt", "print_json", "print_record", "print_rows"]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (fields: docs/cli.md)")
]


#: Width a description column keeps on a narrow terminal before the table grows past it.
DESCRIPTION_MIN = 16


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its header, the row key it shows, and whether it is an identifier."""

    header: str
    key: str
    ident: bool = True


def _default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """Print one JSON document on standard output."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    # a tab or a newline inside a value would break the line/field structure of the output
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def print_rows(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> None:
    """A table on a terminal, tab-separated lines otherwise; identifiers are never cut."""
    if not sys.stdout.isatty():
        lines = ["\t".join(c.header for c in columns)]
        lines += ["\t".join(_cell(row.get(c.key)) for c in columns) for row in rows]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return
    table = Table()
    needed = 1  # the table's left border
    for c in columns:
        width = max([len(c.header), *(len(_cell(row.get(c.key))) for row in rows)])
        if c.ident:
            table.add_column(c.header, no_wrap=True, min_width=width)
            needed += width + 3
        else:
            table.add_column(c.header, overflow="ellipsis")
            needed += min(width, DESCRIPTION_MIN) + 3
    for row in rows:
        table.add_row(*(_cell(row.get(c.key)) for c in columns))
    console = Console()
    # wider than the terminal rather than cut: the terminal wraps the line, the values survive
    Console(width=max(console.width, needed)).print(table)


def print_record(record: Mapping[str, Any]) -> None:
    """One record as ``key<TAB>value`` lines (nested values as compact JSON)."""
    lines = []
    for key, value in record.items():
        shown = (
            json.dumps(value, sort_keys=True, default=_default)
            if isinstance(value, (dict, list))
            else _cell(value)
        )
        lines.append(f"{key}\t{shown}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
