"""``{% memo %}…{% endmemo %}``: a template block rendered once per distinct input.

A new phone's whole-state file is mostly the same text for every phone of a model: every
account and key slot written blank. Rendering those slots is most of a boot storm's CPU. A
shipped template wraps such a region in ``{% memo %}``; its output is then kept, keyed by the
block and by the values of **every variable the block reads** (found when the template is
compiled, not listed by hand), so a block's output is reused only where rendering it again
would give the same text.

- The key is the pickle of those values: exact for the plain data a render gets (dicts,
  lists, strings, numbers, the plugins' dataclasses). A value that cannot be pickled (a macro,
  ``loop``) makes the block render every time. Two different values never share a pickle, so
  a stale or foreign output cannot be served; equal values pickled differently only miss.
- A block must not change anything outside itself: a namespace assignment or a call of a
  mutating method inside ``{% memo %}`` is refused when the template is compiled.
- Only the environment of a plugin's shipped templates keeps outputs
  (:func:`provisor.plugins.sandbox.make_env` ``memo=True``). Where tenant overrides apply, the
  tag is accepted and its block rendered every time: a tenant's template never shares outputs,
  and never fills this process's memory.
- Outputs are held up to :data:`MAX_ENTRIES` and :data:`MAX_BYTES` per environment (the
  oldest go first). A hit still counts towards the render's output cap.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.parser import Parser

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "MemoExtension"]

#: Outputs kept per environment (a plugin's shipped templates: a few per model and config).
MAX_ENTRIES = 1024
#: Characters of outputs and bytes of keys kept per environment (one per loaded plugin).
MAX_BYTES = 4 * 1024 * 1024

#: Methods that change their object: a block calling one has an effect a kept output skips.
_MUTATING = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
    }
)


def _read_names(body: Sequence[nodes.Node]) -> tuple[str, ...]:
    """Every name the block loads, in a stable order (a name it also sets is kept: harmless)."""
    found: dict[str, None] = {}
    for stmt in body:
        for name in stmt.find_all(nodes.Name):
            if name.ctx == "load":
                found.setdefault(name.name, None)
    return tuple(found)


def _refuse_effects(body: Sequence[nodes.Node], parser: Parser, lineno: int) -> None:
    for stmt in body:
        for node in stmt.find_all((nodes.NSRef, nodes.Call, nodes.ExprStmt)):
            mutating = (
                isinstance(node, nodes.Call)
                and isinstance(node.node, nodes.Getattr)
                and node.node.attr in _MUTATING
            )
            if not isinstance(node, nodes.Call) or mutating:
                raise TemplateSyntaxError(
                    "memo: a block that changes state outside itself cannot be kept",
                    lineno,
                    parser.name,
                    parser.filename,
                )


class MemoExtension(Extension):
    """The ``memo`` tag; keeps outputs only when the environment's ``memo_enabled`` is set."""

    tags = {"memo"}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.extend(memo_enabled=False)
        self._kept: OrderedDict[tuple[str, bytes], str] = OrderedDict()
        self._bytes = 0
        self._blocks = 0
        self._lock = threading.Lock()  # the console's previews may render off the loop

    def parse(self, parser: Parser) -> nodes.Node:
        """Compile the block as a call that renders it only when its inputs are new."""
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endmemo",), drop_needle=True)
        _refuse_effects(body, parser, lineno)
        self._blocks += 1
        # the block's identity: template, line, and a count (a recompiled template gets new
        # ids, so nothing kept from an older source of the same name is served)
        block = f"{parser.name}:{lineno}:{self._blocks}"
        read = [nodes.Name(n, "load", lineno=lineno) for n in _read_names(body)]
        call = self.call_method(
            "_render", [nodes.Const(block), nodes.Tuple(read, "load")], lineno=lineno
        )
        return nodes.CallBlock(call, [], [], body, lineno=lineno)

    @property
    def kept(self) -> tuple[int, int]:
        """How many outputs are kept, and their size with their keys."""
        return len(self._kept), self._bytes

    def _render(self, block: str, values: tuple[Any, ...], caller: Callable[[], str]) -> str:
        if not self.environment.memo_enabled:  # type: ignore[attr-defined]
            return caller()
        try:
            key = (block, pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL))
        except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError):
            return caller()  # not plain data: no key can stand for it
        kept = self._kept.get(key)
        if kept is not None:
            return kept
        text = str(caller())
        with self._lock:
            if key not in self._kept:
                self._kept[key] = text
                self._bytes += len(key[1]) + len(text)
            while self._kept and (self._bytes > MAX_BYTES or len(self._kept) > MAX_ENTRIES):
                old_key, old = self._kept.popitem(last=False)
                self._bytes -= len(old_key[1]) + len(old)
        return text
