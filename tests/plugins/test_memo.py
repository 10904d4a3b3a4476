"""``{% memo %}`` blocks: kept outputs are exact, bounded, and never kept for overrides."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from jinja2 import DictLoader, TemplateSyntaxError

from provisor.domain.raw_config import apply_defaults
from provisor.errors import InvalidInput
from provisor.plugins.budget import RenderLimitError, RenderLimits
from provisor.plugins.contract import RenderContext
from provisor.plugins.memo import MAX_BYTES, MAX_ENTRIES, MemoExtension
from provisor.plugins.sandbox import check_template, make_env, render_template
from tests.plugins.conftest import plugin_by_id, render_path, sample_raw_config


class Counted:
    """A value that counts how often a template turns it into text."""

    shown: ClassVar[int] = 0

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        Counted.shown += 1
        return self.text


def _memo(env: Any) -> MemoExtension:
    ext = env.extensions[MemoExtension.identifier]
    assert isinstance(ext, MemoExtension)
    return ext


def test_a_kept_block_is_keyed_by_every_value_it_reads() -> None:
    env = make_env(DictLoader({"t": "{% memo %}{{ a }}-{{ b.c }}{% endmemo %}|{{ d }}"}), memo=True)
    first = render_template(env, "t", {"a": 1, "b": {"c": 2}, "d": "x"})
    nested_change = render_template(env, "t", {"a": 1, "b": {"c": 3}, "d": "y"})
    same_again = render_template(env, "t", {"a": 1, "b": {"c": 2}, "d": "z"})
    type_change = render_template(env, "t", {"a": "1", "b": {"c": 2}, "d": "z"})
    assert (first, nested_change, same_again, type_change) == ("1-2|x", "1-3|y", "1-2|z", "1-2|z")
    # "1" and 1 print the same but are different inputs: two entries, plus b.c = 3
    assert _memo(env).kept[0] == 3


def test_a_hit_does_not_render_the_block_again() -> None:
    env = make_env(DictLoader({"t": "{% memo %}{{ v }}{% endmemo %}"}), memo=True)
    Counted.shown = 0
    assert render_template(env, "t", {"v": Counted("a")}) == "a"
    assert render_template(env, "t", {"v": Counted("a")}) == "a"
    assert Counted.shown == 1


def test_overrides_environment_renders_every_time() -> None:
    # make_env without memo: the environments that load tenants' overrides
    env = make_env(DictLoader({"t": "{% memo %}{{ v }}{% endmemo %}"}))
    Counted.shown = 0
    render_template(env, "t", {"v": Counted("a")})
    render_template(env, "t", {"v": Counted("a")})
    assert Counted.shown == 2
    assert _memo(env).kept == (0, 0)


def test_the_tenant_override_path_keeps_nothing() -> None:
    plugin = plugin_by_id("yealink")
    route = plugin.route("001565112233.cfg")
    assert route is not None
    source = (plugin.root / "templates" / "device.cfg").read_text()
    ctx = RenderContext(
        route=route,
        device={"id": "d1", "mac": "00:15:65:11:22:33", "model": "T46S"},
        raw_config=sample_raw_config(),
        with_secrets=True,
        template_overrides={"device.cfg": source},
    )
    shipped = render_path(
        plugin, "001565112233.cfg", device=ctx.device, raw_config=sample_raw_config()
    )
    assert plugin.render(ctx) == shipped  # the copied template, memo tags and all
    assert _memo(plugin.templates.environment(ctx.template_overrides)).kept == (0, 0)
    assert _memo(plugin.templates.environment()).kept[0] > 0


def test_a_value_that_cannot_be_pickled_renders_every_time() -> None:
    env = make_env(
        DictLoader(
            {"t": "{% for i in 'ab' %}{% memo %}{{ loop.index }}{{ i }}{% endmemo %}{% endfor %}"}
        ),
        memo=True,
    )
    assert render_template(env, "t", {}) == "1a2b"
    assert render_template(env, "t", {}) == "1a2b"
    assert _memo(env).kept == (0, 0)


@pytest.mark.parametrize(
    "body",
    [
        "{% set ns.x = 2 %}",
        "{{ items.append(1) }}",
        "{{ d.update({'a': 1}) }}",
    ],
)
def test_a_block_with_effects_outside_itself_is_refused(body: str) -> None:
    source = "{% set ns = namespace(x=1) %}{% memo %}" + body + "{% endmemo %}"
    env = make_env(DictLoader({"t": source}), memo=True)
    with pytest.raises(TemplateSyntaxError, match="memo"):
        env.get_template("t")
    with pytest.raises(InvalidInput, match="memo"):
        check_template(source)


def test_kept_outputs_are_bounded() -> None:
    env = make_env(DictLoader({"t": "{% memo %}{{ n }}{{ pad }}{% endmemo %}"}), memo=True)
    pad = "x" * 5000
    for n in range(MAX_ENTRIES + 200):
        assert render_template(env, "t", {"n": n, "pad": pad}) == f"{n}{pad}"
    entries, size = _memo(env).kept
    assert entries <= MAX_ENTRIES
    assert size <= MAX_BYTES
    assert size > MAX_BYTES // 2  # it does keep up to the bound


def test_a_hit_still_counts_towards_the_output_cap() -> None:
    env = make_env(DictLoader({"t": "{% memo %}{{ v * 100 }}{% endmemo %}"}), memo=True)
    assert len(render_template(env, "t", {"v": "ab"})) == 200
    with pytest.raises(RenderLimitError):
        render_template(env, "t", {"v": "ab"}, RenderLimits(max_bytes=100))


def test_dict_attributes_read_as_before() -> None:
    env = make_env(DictLoader({"t": "{{ d.x }}|{{ d.items() | list | length }}|{{ d.missing }}|"}))
    assert render_template(env, "t", {"d": {"x": 1, "items": 5}}) == "1|2||"


STORM = [
    ("yealink", "{mac}.cfg", "T46S"),
    ("cisco-mpp", "{mac}.xml", "7841"),
    ("fanvil", "Fanvil/{mac}.cfg", "X4U"),
    ("grandstream", "Grandstream/cfg{mac}.xml", "GXP2160"),
]


@pytest.mark.parametrize(("plugin_id", "path", "model"), STORM)
def test_kept_blocks_give_the_bytes_of_a_full_render(plugin_id: str, path: str, model: str) -> None:
    """New phones, then configured ones, then new ones again: each file as rendered without
    memo (the same shipped template in an environment that keeps nothing)."""
    plugin = plugin_by_id(plugin_id)
    configs: list[dict[str, Any]] = [
        {"http_base_url": "http://10.0.0.1:8667/key"},
        sample_raw_config(lines=1),
        sample_raw_config(lines=2),
        {**sample_raw_config(lines=2), "sip_transport": "tcp", "ntp_enabled": False},
        {"http_base_url": "http://10.0.0.1:8667/key"},
    ]
    source = (plugin.root / "templates").iterdir()
    overrides = {p.name: p.read_text() for p in source if p.is_file()}
    for n, raw in enumerate(configs * 2):
        mac = f"00:15:65:00:00:{n:02x}"
        device = {"id": f"d{n}", "mac": mac, "model": model}
        route = plugin.route(path.format(mac=mac.replace(":", "")))
        assert route is not None
        plain = RenderContext(
            route=route, device=device, raw_config=apply_defaults(raw), with_secrets=True
        )
        full = RenderContext(
            route=route,
            device=device,
            raw_config=apply_defaults(raw),
            with_secrets=True,
            template_overrides=overrides,
        )
        assert plugin.render(plain) == plugin.render(full)
    assert _memo(plugin.templates.environment()).kept[0] > 0
