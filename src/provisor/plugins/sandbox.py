"""Jinja2 sandbox shared by every plugin and every tenant-supplied template override.

Templates are data a tenant administrator may upload, so they run in Jinja2's
``SandboxedEnvironment``: no attribute access to Python internals, no unsafe callables.
Plugin templates and overrides share one rendering path so an override can never do more
than a shipped template. The environment counts each render's work and caps its output
(:mod:`provisor.plugins.budget`); overrides are rendered in a worker process
(:mod:`provisor.plugins.render_pool`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    DictLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from provisor.errors import InvalidInput
from provisor.plugins.budget import BudgetedEnvironment, RenderLimits, render_capped
from provisor.plugins.memo import MemoExtension

__all__ = ["MAX_TEMPLATE_SOURCE", "TemplateSet", "check_template", "make_env", "render_template"]


def _filters() -> dict[str, Any]:
    return {
        "mac_hex": lambda m: "".join(c for c in str(m or "") if c.isalnum()).lower(),
        "mac_upper": lambda m: "".join(c for c in str(m or "") if c.isalnum()).upper(),
        "yesno": lambda v, yes="1", no="0": yes if v else no,
    }


#: Largest template override source accepted (parsing runs in the API's request).
MAX_TEMPLATE_SOURCE = 256 * 1024


def make_env(loader: BaseLoader, *, memo: bool = False) -> SandboxedEnvironment:
    """The budgeted sandbox every plugin template and override renders in.

    ``memo`` keeps the output of ``{% memo %}`` blocks (:mod:`provisor.plugins.memo`): only for
    a plugin's shipped templates, never where a tenant's override may be loaded.
    """
    env = BudgetedEnvironment(
        extensions=[MemoExtension],
        loader=loader,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=400,
    )
    env.filters.update(_filters())
    env.memo_enabled = memo  # type: ignore[attr-defined]
    return env


class TemplateSet:
    """The sandboxed environments of one loaded plugin (a new load gets fresh ones)."""

    def __init__(self, templates_dir: Path) -> None:
        self.root = str(templates_dir)
        self._plain: SandboxedEnvironment | None = None
        self._overridden: dict[tuple[tuple[str, str], ...], SandboxedEnvironment] = {}

    def environment(self, overrides: Mapping[str, str] | None = None) -> SandboxedEnvironment:
        """The sandbox for the plugin's templates, with per-tenant overrides first."""
        if not overrides:
            if self._plain is None:
                self._plain = make_env(FileSystemLoader(self.root), memo=True)
            return self._plain
        key = tuple(sorted(overrides.items()))
        env = self._overridden.get(key)
        if env is None:
            if len(self._overridden) > 256:
                self._overridden.clear()
            env = make_env(ChoiceLoader([DictLoader(dict(overrides)), FileSystemLoader(self.root)]))
            self._overridden[key] = env
        return env


def render_template(
    env: SandboxedEnvironment,
    name: str,
    variables: Mapping[str, Any],
    limits: RenderLimits | None = None,
) -> str:
    """Render one template of the environment under a CPU and output budget."""
    return render_capped(env, name, variables, limits or RenderLimits())


def check_template(source: str) -> None:
    """Refuse a template override that does not compile; InvalidInput says where."""
    if len(source) > MAX_TEMPLATE_SOURCE:
        raise InvalidInput(
            f"template.source: {len(source)} characters, more than {MAX_TEMPLATE_SOURCE}"
        )
    env = make_env(DictLoader({}))
    env.undefined = StrictUndefined
    try:
        env.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"template: line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise InvalidInput("template: nested too deeply") from None
    except TemplateError as exc:  # pragma: no cover - parse raises only syntax errors
        raise InvalidInput(f"template: {exc}") from None
