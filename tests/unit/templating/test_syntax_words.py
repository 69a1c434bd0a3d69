"""Template syntax errors read in a marketer's words, with line and column."""

from __future__ import annotations

import pytest

from engine.templating.channel import validate_channel
from engine.templating.request import RenderSettings
from engine.templating.syntax_words import describe_syntax_error


@pytest.mark.parametrize(
    ("template", "column", "words"),
    [
        ("Hi {{ contact.name", 4, "missing closing }}"),
        ("{{ contact.name | upcase }}", 17, "unknown filter 'upcase' — did you mean 'upper'?"),
        ("{{ contact.name | uper }}", 17, "unknown filter 'uper' — did you mean 'upper'?"),
        ("{{ contact.n is evn }}", 14, "unknown test 'evn' — did you mean 'even'?"),
        ("{% if contact.vip %}VIP", 1, "missing {% endif %} to close the {% if %} block"),
        ("{% if contact.vip ", 1, "missing closing %}"),
        ("{% iff contact.vip %}", 1, "unknown tag {% iff %} — did you mean 'if'?"),
        ('{{ contact.x | default("a" }}', 1, "missing closing ) before }}"),
        ('{{ contact.x | default("a") }', 1, "missing closing }} (only one } was found)"),
        ("{{ }}", 1, "empty {{ }}: put a variable or a value inside"),
        ('{{ "abc }}', 1, 'a quoted text is not closed (missing ")'),
    ],
)
def test_syntax_errors_in_words_with_their_place(template: str, column: int, words: str) -> None:
    channel = {"url": "https://a.example/", "body": {"mode": "raw", "template": template}}
    channel["content_type"] = "form"
    (problem,) = [p for p in validate_channel(channel, RenderSettings()) if p.severity == "error"]
    assert (problem.location, problem.line, problem.column, problem.message) == (
        "body.template",
        1,
        column,
        words,
    )


def test_a_second_line_is_named() -> None:
    channel = {
        "url": "https://a.example/",
        "content_type": "form",
        "body": {"mode": "raw", "template": "line one\n  {{ contact.x | upcase }}"},
    }
    (problem,) = [p for p in validate_channel(channel, RenderSettings()) if p.severity == "error"]
    assert (problem.line, problem.column) == (2, 16)


def test_unknown_messages_keep_jinja_words_and_no_guess_when_nothing_is_close() -> None:
    assert describe_syntax_error("something new") == "template error: something new"
    assert describe_syntax_error("No filter named 'zzzz'.", filters=["upper"]) == (
        "unknown filter 'zzzz'"
    )
