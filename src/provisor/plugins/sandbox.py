"""Jinja2 sandbox shared by every plugin and every tenant-supplied template override.

Templates are data a tenant administrator may upload, so they run in Jinja2's
``SandboxedEnvironment``: no attribute access to Python internals, no unsafe callables.
Plugin templates and overrides share one rendering path so an override can never do more
than a shipped template.
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

__all__ = ["TemplateSet", "check_template", "render_template"]


def _filters() -> dict[str, Any]:
    return {
        "mac_hex": lambda m: "".join(c for c in str(m or "") if c.isalnum()).lower(),
        "mac_upper": lambda m: "".join(c for c in str(m or "") if c.isalnum()).upper(),
        "yesno": lambda v, yes="1", no="0": yes if v else no,
    }


def _make_env(loader: BaseLoader) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=loader,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=400,
    )
    env.filters.update(_filters())
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
                self._plain = _make_env(FileSystemLoader(self.root))
            return self._plain
        key = tuple(sorted(overrides.items()))
        env = self._overridden.get(key)
        if env is None:
            if len(self._overridden) > 256:
                self._overridden.clear()
            env = _make_env(
                ChoiceLoader([DictLoader(dict(overrides)), FileSystemLoader(self.root)])
            )
            self._overridden[key] = env
        return env


def render_template(env: SandboxedEnvironment, name: str, variables: Mapping[str, Any]) -> str:
    """Render one template of the environment with the given variables."""
    return env.get_template(name).render(variables)


def check_template(source: str) -> None:
    """Refuse a template override that does not compile; InvalidInput says where."""
    env = _make_env(DictLoader({}))
    env.undefined = StrictUndefined
    try:
        env.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"template: line {exc.lineno}: {exc.message}") from None
    except TemplateError as exc:  # pragma: no cover - parse raises only syntax errors
        raise InvalidInput(f"template: {exc}") from None
