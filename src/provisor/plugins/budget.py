"""A Jinja2 sandbox that counts a render's work and refuses outsized results.

Jinja2's ``SandboxedEnvironment`` stops templates from reaching Python internals but not from
spending: two nested ``range(100000)`` loops run for minutes, ``'x' * 10**8`` builds 100 MB.
:class:`BudgetedEnvironment` adds a per-render :class:`Budget`:

- every loop iteration and every call (macros, methods, ``loop()``) is a tick; every
  ``CHECK_EVERY`` ticks the render's thread CPU time is compared with the limit;
- operators, filters and string methods whose result size is chosen by an argument
  (``*``, ``**``, ``%``, ``+``, ``~``, ``format``, ``center``, ``indent``, ``join``, ``replace``,
  ``batch``, ``slice``, ``wordwrap``, ``ljust``…) are checked against the output limit before
  (or, when cheap, right after) they run;
- the rendered text is capped at the output limit.

This bounds trusted templates rendered in the server process. A single C-level call can still
take long between two ticks, so templates a tenant supplies are rendered in a worker process
that the kernel stops on CPU time and address space (:mod:`provisor.plugins.render_worker`):
the counting gives clean errors there, the worker's limits are the guarantee.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from provisor.errors import PluginError

__all__ = [
    "Budget",
    "BudgetedEnvironment",
    "RenderLimitError",
    "RenderLimits",
    "budget_scope",
    "render_capped",
    "template_failure",
]

#: Ticks between two CPU-time readings (a reading costs about as much as 20 ticks).
CHECK_EVERY = 256
#: Output chunks counted at once (a chunk is a literal or one size-checked value).
OUTPUT_BATCH = 64
#: Largest integer a template may compute with ``**`` (bits): phone files hold small numbers.
MAX_POW_BITS = 4096


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """What one render may spend: CPU seconds and output characters."""

    cpu_seconds: float = 1.0
    max_bytes: int = 4 * 1024 * 1024


class RenderLimitError(PluginError):
    """A render exceeded its budget; ``kind`` is ``cpu``, ``output`` or ``memory``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Budget:
    """The work counter of one render (one per render, never shared)."""

    __slots__ = ("_deadline", "_ticks", "limits")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self._ticks = 0
        # read at the first check, not here: a CPU clock reading is a system call (~2 µs),
        # most renders never reach CHECK_EVERY ticks, and the first ticks are cheap ones
        self._deadline: float | None = None

    def tick(self) -> None:
        """Count one unit of work; raise once the CPU time is spent."""
        self._ticks += 1
        if self._ticks % CHECK_EVERY == 0:
            now = time.thread_time()
            if self._deadline is None:
                self._deadline = now + self.limits.cpu_seconds
            elif now > self._deadline:
                raise RenderLimitError(
                    "cpu",
                    f"render stopped: CPU budget of {self.limits.cpu_seconds:g} s exceeded",
                )

    def size(self, n: int, what: str = "value") -> None:
        """Refuse a value (or the output) larger than the output limit."""
        if n > self.limits.max_bytes:
            raise RenderLimitError(
                "output",
                f"render stopped: {what} of {n} characters exceeds the output limit "
                f"of {self.limits.max_bytes} bytes",
            )

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable`` with a tick per item (wraps every template loop)."""
        for item in iterable:
            self.tick()
            yield item


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "provisor_render_budget", default=None
)


class budget_scope:  # noqa: N801 - used as a context manager, like contextlib helpers
    """Make ``budget`` the one charged by templates rendered in this block."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._token: contextvars.Token[Budget | None] | None = None

    def __enter__(self) -> Budget:
        self._token = _current.set(self.budget)
        return self.budget

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)


def _budget() -> Budget | None:
    return _current.get()


# -- size checks ---------------------------------------------------------------------------------

_PRINTF_NUMBERS = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_NUMBERS = re.compile(r"\{[^{}]*?[:!][^{}]*?(\d+)[^{}]*\}")


def _check_format_string(budget: Budget, fmt: str, printf: bool) -> None:
    """Refuse widths and precisions above the output limit (``'%09999999d'``)."""
    if printf:
        for width, precision in _PRINTF_NUMBERS.findall(fmt):
            for number in (width, precision):
                if number == "*":
                    raise RenderLimitError("output", "render stopped: '*' widths are refused")
                if number:
                    budget.size(int(number), "format width")
    else:
        for match in _FORMAT_NUMBERS.finditer(fmt):
            for number in re.findall(r"\d+", match.group(0).split(":", 1)[-1]):
                budget.size(int(number), "format width")


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return len(str(value))


def _check_repeat(budget: Budget, left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int):
            budget.size(len(seq) * max(count, 0), "repeated sequence")


def _check_pow(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if left.bit_length() * right > MAX_POW_BITS:
            raise RenderLimitError(
                "output", f"render stopped: a power above {MAX_POW_BITS} bits is refused"
            )


def _sized(budget: Budget, result: Any, what: str) -> Any:
    if isinstance(result, (str, bytes, list, tuple)):
        budget.size(len(result), what)
    return result


# -- filters whose arguments choose the size of their result ------------------------------------


def _guard_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a built-in filter with a pre-check of its size arguments and a post-check."""

    def check(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        budget = _budget()
        if budget is None:
            return
        budget.tick()
        arg = args[0] if args else None
        if name == "center":
            width = kwargs.get("width", arg)
            if isinstance(width, int):
                budget.size(width, "centered width")
        elif name == "indent":
            width = kwargs.get("width", arg)
            per_line = width if isinstance(width, int) else _length(width or "")
            budget.size(per_line * (str(value).count("\n") + 1) + _length(value), "indented text")
        elif name == "format":
            _check_format_string(budget, str(value), printf=True)
        elif name == "join":
            sep = kwargs.get("d", arg if arg is not None else "")
            items = value if isinstance(value, (list, tuple, str, range)) else ()
            budget.size(_length(sep) * len(items), "joined text")
        elif name == "replace":
            old, new = (list(args) + [kwargs.get("old", ""), kwargs.get("new", "")])[:2]
            text = str(value)
            grows = max(0, _length(new) - _length(old))
            hits = (len(text) + 1) if not old else text.count(str(old))
            budget.size(len(text) + grows * hits, "replaced text")
        elif name == "batch":
            fill = kwargs.get("fill_with", args[1] if len(args) > 1 else None)
            if fill is not None and isinstance(arg, int):
                budget.size(arg, "batch")
        elif name == "slice":
            if isinstance(arg, int):
                budget.size(arg, "slice count")
        elif name == "wordwrap":
            wrap = kwargs.get("wrapstring", args[2] if len(args) > 2 else "\n") or "\n"
            budget.size(_length(value) * (1 + _length(wrap)), "wrapped text")

    # the value follows the context, eval context or environment the filter may take
    value_index = 0 if getattr(original, "jinja_pass_arg", None) is None else 1

    def guarded(*a: Any, **kw: Any) -> Any:
        if len(a) > value_index:
            check(a[value_index], a[value_index + 1 :], kw)
        result = original(*a, **kw)
        budget = _budget()
        return result if budget is None else _sized(budget, result, f"result of |{name}")

    if hasattr(original, "jinja_pass_arg"):
        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    guarded.__name__ = getattr(original, "__name__", name)
    guarded.__doc__ = original.__doc__
    return guarded


_GUARDED_FILTERS = ("center", "indent", "format", "join", "replace", "batch", "slice", "wordwrap")

#: str methods whose arguments choose their result's size
_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join"})


def _check_str_method(
    budget: Budget, owner: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    if name == "join":
        items = args[0] if args else ()
        if isinstance(items, (list, tuple, str, range)):
            budget.size(len(owner) * len(items), "joined text")
    elif name == "replace":
        new = args[1] if len(args) > 1 else kwargs.get("new", "")
        budget.size(len(owner) + (len(owner) + 1) * _length(new), "replaced text")
    else:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int):
                budget.size(arg * (8 if name == "expandtabs" else 1), f"{name} width")


def _tick_iter(value: Any) -> Any:
    budget = _budget()
    return value if budget is None else budget.iterate(value)


def _check_size(value: Any) -> Any:
    budget = _budget()
    return value if budget is None else _sized(budget, value, "concatenation")


#: What ``getattr`` finds on any dict (its methods and dunders): those names go the slow way.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class BudgetCodeGenerator(CodeGenerator):
    """Jinja2's code generator with every loop's iterable and every ``~`` charged."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        """Compile the loop over a ticking iterator (each iteration counts)."""
        ticking = nodes.Filter(node.iter, "_budget_iter", [], [], None, None, lineno=node.lineno)
        super().visit_For(
            nodes.For(
                node.target,
                ticking,
                node.body,
                node.else_,
                node.test,
                node.recursive,
                lineno=node.lineno,
            ),
            frame,
        )

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        """Compile ``a ~ b`` followed by a size check (doubling a string in a loop)."""
        self.write(f"{self.filters['_budget_size']}(")
        super().visit_Concat(node, frame)
        self.write(")")

    def pull_dependencies(self, nodes_: Iterable[nodes.Node]) -> None:
        """Declare the budget filters the rewritten nodes use."""
        for name in ("_budget_iter", "_budget_size"):
            # declared in every function the generator opens (root and each block)
            if name not in self.filters:
                self.filters[name] = self.temporary_identifier()
            self.writeline(f"{self.filters[name]} = environment.filters[{name!r}]")
        super().pull_dependencies(nodes_)


class BudgetedEnvironment(SandboxedEnvironment):
    """The sandbox with a work budget (inactive outside :class:`budget_scope`)."""

    code_generator_class = BudgetCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name in _GUARDED_FILTERS:
            self.filters[name] = _guard_filter(name, self.filters[name])
        self.filters["_budget_iter"] = _tick_iter
        self.filters["_budget_size"] = _check_size

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute``; a plain dict's item is read without first failing ``getattr``.

        Templates read dicts by attribute (``line.username``) hundreds of times a file. The
        sandbox tries the attribute first and reads the item after an AttributeError; for an
        exact ``dict`` that error is certain unless the name is one of dict's own attributes,
        so the item is read directly: the same value or the same undefined, without raising.
        """
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check the result size of ``*``, ``**``, ``%`` and ``+`` before computing it."""
        budget = _budget()
        if budget is not None:
            budget.tick()
            if operator == "*":
                _check_repeat(budget, left, right)
            elif operator == "**":
                _check_pow(left, right)
            elif operator == "%" and isinstance(left, str):
                _check_format_string(budget, left, printf=True)
            elif operator == "+" and isinstance(left, (str, list, tuple)):
                budget.size(_length(left) + _length(right), "sum")
        result = self.binop_table[operator](left, right)
        return result if budget is None else _sized(budget, result, f"result of {operator}")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Count every call and check the size arguments of str methods."""
        budget = _budget()
        if budget is not None:
            budget.tick()
            # the sandbox hands str.format out wrapped; the wrapped method names the string
            target = getattr(__obj, "__wrapped__", __obj)
            owner = getattr(target, "__self__", None)
            name = getattr(target, "__name__", "")
            if isinstance(owner, str) and name in _STR_METHODS:
                _check_str_method(budget, owner, name, args, kwargs)
            elif isinstance(owner, str) and name in ("format", "format_map"):
                _check_format_string(budget, owner, printf=False)
        result = super().call(__context, __obj, *args, **kwargs)
        if budget is None:
            return result
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (list, dict, set)):
            budget.size(len(owner), "collection")  # l.extend(l) doubles in place
        return _sized(budget, result, "call result")


def template_failure(exc: BaseException) -> str:
    """What went wrong in a template, without its message (it may quote a secret value)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        names = tb.tb_frame.f_globals
        if "__jinja_template__" in names or "__jinja_exception__" in names:
            line = tb.tb_lineno
        tb = tb.tb_next
    return type(exc).__name__ + (f" at line {line}" if line is not None else "")


def render_capped(
    env: SandboxedEnvironment, name: str, variables: Mapping[str, Any], limits: RenderLimits
) -> str:
    """Render template ``name`` under a fresh budget, stopping once the output is too large.

    Compiling runs under the budget too: Jinja2 folds constant expressions at compile time
    (``'x'|center(10**9)``), and a guarded filter refusing there defers it to the render.
    """
    budget = Budget(limits)
    parts: list[str] = []
    total = 0
    limit = limits.max_bytes
    with budget_scope(budget):
        template = env.get_template(name)
        # the root render function itself, as Template.render does: generate() would add a
        # generator frame per output chunk
        chunks = template.root_render_func(template.new_context(dict(variables)))
        try:
            # counted in batches at C speed; one value is already size-checked
            while batch := list(islice(chunks, OUTPUT_BATCH)):
                total += sum(map(len, batch))
                if total > limit:
                    budget.size(total, "rendered file")
                parts += batch
        except Exception:
            env.handle_exception()  # re-raises with the template's own line numbers
    return "".join(parts)
