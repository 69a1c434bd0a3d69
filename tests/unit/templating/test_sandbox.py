"""The shared sandbox: fallbacks, missing-variable paths, filters, escapes and bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, TemplateSyntaxError

from engine.templating.direct import DirectTemplate, _compiled_renderer, render_template
from engine.templating.limits import RenderBudget, TemplateLimitError
from engine.templating.sandbox import compile_template
from engine.templating.wrapped import MissingVariableError, wrap_variables

VARIABLES = {
    "contact": {
        "id": "con_1",
        "external_id": "lead-1",
        "first_name": "Ann",
        "empty": "",
        "nothing": None,
        "zero": 0,
        "no": False,
        "tags": ["a", "b"],
        "address": {"city": "Cork"},
        "items": "data wins over dict methods",
    },
    "campaign": {"id": "cmp_1", "name": "Spring"},
    "now": "2026-11-22T10:00:00Z",
}


def render(source: str, variables: dict | None = None, time_limit: float = 2.0) -> str:
    with RenderBudget(time_limit):
        return render_template(
            source, wrap_variables(VARIABLES if variables is None else variables)
        )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ contact.first_name }}", "Ann"),
        ('{{ contact.first_name | default("there") }}', "Ann"),
        ('{{ contact.missing | default("there") }}', "there"),
        ('{{ contact.nothing | default("there") }}', "there"),
        ('{{ contact.empty | default("there") }}', "there"),
        ('{{ contact.zero | default("there") }}', "0"),
        ('{{ contact.no | default("there") }}', "False"),
        ('{{ contact.zero | default("there", true) }}', "there"),
        ('{{ contact.missing | d("x") }}', "x"),
        ('{{ event.properties.score | default("none") }}', "none"),
        ("{{ contact.address.city }}", "Cork"),
        ('{{ contact["address"]["city"] }}', "Cork"),
        ('{{ contact.address.zip | default("-") }}', "-"),
        ("{{ contact.tags[1] }}", "b"),
        ('{{ contact.tags[7] | default("-") }}', "-"),
        ("{{ contact.tags | join(', ') }}", "a, b"),
        ("{{ contact.items }}", "data wins over dict methods"),
        ("{{ contact.nothing }}", ""),
        ("{{ contact.tags }}", '["a","b"]'),
        ("{{ contact.address }}", '{"city":"Cork"}'),
        ("{% if contact.vip %}vip{% else %}regular{% endif %}", "regular"),
        ("{% if contact.first_name %}yes{% endif %}", "yes"),
        ("{{ contact.vip is defined }}/{{ contact.first_name is defined }}", "False/True"),
        ('{{ contact.vip or "no" }}', "no"),
        ("{% for t in contact.tags %}[{{ t }}]{% endfor %}", "[a][b]"),
        ("{% for k, v in contact.address.items() %}{{ k }}={{ v }}{% endfor %}", "city=Cork"),
        ("{{ range(3) | list | length }}", "3"),
        ("{{ contact.first_name ~ '!' }}", "Ann!"),
        ("{{ 'ab' * 2 }}{{ 2 ** 10 }}{{ 7 % 3 }}", "abab10241"),
        ("{{ contact.first_name.upper() }}", "ANN"),
    ],
)
def test_renders_variables_with_fallback_semantics(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("{{ contact.last_name }}", "contact.last_name"),
        ("{{ event.properties.score }}", "event.properties.score"),
        ("{{ contact.address.zip }}", "contact.address.zip"),
        ("{{ contact.tags[5] }}", "contact.tags[5]"),
        ("{{ contact.last_name | upper }}", "contact.last_name"),
        ("{{ contact.last_name ~ 'x' }}", "contact.last_name"),
        ("{% for x in contact.missing %}{% endfor %}", "contact.missing"),
        ("{{ contact.score > 3 }}", "contact.score"),
        ("{% if contact.plan == 'pro' %}{% endif %}", "contact.plan"),
        ("{{ contact.score + 1 }}", "contact.score"),
        ("{{ contact.missing | tojson }}", "contact.missing"),
        ("{{ contact.missing | urlencode }}", "contact.missing"),
        ("{{ unknown_name }}", "unknown_name"),
    ],
)
def test_missing_variable_without_fallback_fails_naming_its_path(source: str, path: str) -> None:
    with pytest.raises(MissingVariableError) as caught:
        render(source)
    assert caught.value.path == path
    assert path in str(caught.value)


@pytest.mark.parametrize(
    "value",
    ['say "hi"', "line\nbreak\ttab", "emoji 🎉 ünïcödé", "</script><script>alert(1)</script>",
     "back\\slash", "\u2028", None, 12.5, True, {"a": [1, "x"]}],
)  # fmt: skip
def test_tojson_produces_valid_json_equal_to_the_data(value: object) -> None:
    text = render('{"v": {{ contact.v | tojson }}}', {"contact": {"v": value}})
    assert json.loads(text) == {"v": value}


def test_tojson_does_not_html_escape() -> None:
    assert render("{{ '</script>&' | tojson }}", {}) == '"</script>&"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a b/c?d=e&f#g", "a%20b%2Fc%3Fd%3De%26f%23g"),
        ("ünï 🎉", "%C3%BCn%C3%AF%20%F0%9F%8E%89"),
        ("safe-._~", "safe-._~"),
        (42, "42"),
        ({"q": "a b", "n": 1}, "q=a%20b&n=1"),
    ],
)
def test_urlencode_encodes_everything_but_unreserved(value: object, expected: str) -> None:
    assert render("{{ contact.v | urlencode }}", {"contact": {"v": value}}) == expected


ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__ }}",
    "{{ contact.tags.__class__ }}",
    "{{ ().__class__.__base__ }}",
    "{{ range.__globals__ }}",
    "{{ dict.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '{x}'.format_map({'x': 1}) }}",
    "{{ ''|attr('format') }}",
    "{{ (''|attr('format'))('{0.__class__}', 1) }}",
    "{{ ''|attr('__class__') }}",
    "{{ ''['__class__'] }}",
    "{{ '%s' % contact }}",
    "{{ (1).to_bytes(8, 'big') }}",
    "{{ dict.fromkeys([1]) }}",
    "{{ dict.mro() }}",
    "{{ 'a'.center(10) }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{% endfor %}",
    "{{ loop.__class__ }}{% for x in [1] %}{{ loop.__class__ }}{% endfor %}",
    "{{ [].append(1) }}",
    "{{ {}.update({'a': 1}) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_known_escapes_are_refused(source: str) -> None:
    with pytest.raises(SecurityError):
        render(source)


@pytest.mark.parametrize(
    "source",
    ["{{ contact.tags.append('x') }}", "{{ contact.address.update({'city': 'x'}) }}"],
)
def test_variables_cannot_be_mutated(source: str) -> None:
    variables = json.loads(json.dumps(VARIABLES))
    with pytest.raises((SecurityError, MissingVariableError)):
        render(source, variables)
    assert variables == VARIABLES


@pytest.mark.parametrize(
    "source",
    ["{{ cycler }}", "{{ joiner }}", "{{ namespace }}", "{{ lipsum }}"],
)
def test_dangerous_globals_are_gone(source: str) -> None:
    with pytest.raises(MissingVariableError):
        render(source)


@pytest.mark.parametrize(
    "source",
    ['{% include "x" %}', '{% import "x" as y %}', '{% extends "x" %}', '{% from "x" import y %}'],
)
def test_template_composition_is_refused(source: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="not available"):
        compile_template(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 10**9 * 'a' }}",
        "{{ [1] * 10**9 }}",
        "{{ 2 ** 100000000 }}",
        "{{ range(10**6) }}",
        "{% set a = 'x' * 200000 %}{{ a ~ a }}",
        "{% set a = 'x' * 200000 %}{{ a + a }}",
        "{% set a = 'x' * 200000 %}{{ [a, a] | join }}",
        "{{ 'x' | center(10**9) }}",
        "{{ ('x\n' * 1000) | indent(10**6) }}",
        "{{ ('x' * 100000) | replace('', 'yy') }}",
        "{{ [1] | batch(10**9, 0) | list }}",
        "{{ [1] | slice(10**9) | list }}",
        "{{ 1 | tojson(indent=10**9) }}",
        "{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}",
        "{% set a = 'x' * 100000 %}{% for i in range(100) %}{{ a }}{% endfor %}",
        "{% set s %}{% for i in range(1000) %}{{ 'x' * 200000 }}{% endfor %}{% endset %}",
    ],
)
def test_size_bounds_abort_the_render(source: str) -> None:
    with pytest.raises(TemplateLimitError):
        render(source)


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
        "{{ '' }}{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_time_bound_ends_long_renders(source: str) -> None:
    with pytest.raises(TemplateLimitError, match="too long"):
        render(source, time_limit=0.05)


def test_deep_recursion_fails_cleanly() -> None:
    with pytest.raises(RecursionError):
        render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")


def test_compiled_templates_are_cached_by_source() -> None:
    source = "{{ contact.first_name }} cached"
    assert compile_template(source) is compile_template(source)


def _outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", function(*args)
    except Exception as exc:  # the outcome is what is compared
        return type(exc).__name__, str(exc)


def _render_with_jinja(template: Any, wrapped: dict[str, Any]) -> str:
    return "".join(template.root_render_func(template.new_context(wrapped)))


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact.first_name }}",
        'Hi {{ contact.first_name | default("there") }}!',
        '{{ contact.missing | default("x") }} and {{ contact.empty | d("y", true) }}',
        "{{ contact.missing }}",
        "{{ contact.missing.deeper }}",
        "{{ nobody.name }}",
        "{{ contact.tags[1] }}{{ contact.tags[9] }}",
        '{{ contact["address"]["city"] | upper }}',
        "{{ contact.address }} {{ contact.tags }} {{ contact.nothing }}",
        "{{ contact.external_id | urlencode }}",
        "{{ contact.missing | urlencode }}",
        "{{ contact.address | tojson }}",
        "{{ contact.__class__ }}",
        "{{ contact.first_name.__class__ }}",
        "{{ contact.first_name.upper }}",
        "{{ contact.items }}",
        "{{ contact.zero | string | length }}",
    ],
)
def test_direct_templates_render_exactly_like_jinja(source: str) -> None:
    """Simple templates skip the Jinja context; output and errors must be identical."""
    direct = _compiled_renderer(source)
    assert isinstance(direct, DirectTemplate)
    template = compile_template(source)
    for variables in (VARIABLES, {}, {"contact": {"external_id": "a/b ü?&"}}):
        wrapped = wrap_variables(variables)
        with RenderBudget(2.0):
            expected = _outcome(_render_with_jinja, template, wrapped)
            assert _outcome(direct.render, wrapped) == expected


@pytest.mark.parametrize(
    "source",
    ["{{ range(3) }}", "{{ self }}", "{% if a %}x{% endif %}", "{{ a ~ b }}", "{{ a|join(',') }}"],
)
def test_templates_beyond_paths_and_filters_use_jinja(source: str) -> None:
    assert not isinstance(_compiled_renderer(source), DirectTemplate)
