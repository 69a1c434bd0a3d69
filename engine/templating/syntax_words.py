"""Template syntax errors in a marketer's words: "missing closing }}", not Jinja's parser
talk ("unexpected end of template, expected 'end of print statement'").

Pure: takes Jinja's message and the names the sandbox knows, returns a sentence. Anything
not recognised keeps Jinja's own message, prefixed so it still reads as a template error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

#: Tags a template may use, for "did you mean" on an unknown one.
KNOWN_TAGS = ("if", "elif", "else", "endif", "for", "endfor", "set", "raw", "endraw")
#: Names other template languages (Liquid, Handlebars, Python) use for the same thing.
SYNONYMS = {
    "upcase": "upper",
    "uppercase": "upper",
    "downcase": "lower",
    "lowercase": "lower",
    "titlecase": "title",
    "capitalise": "capitalize",
    "json": "tojson",
    "to_json": "tojson",
    "url_encode": "urlencode",
    "escape_url": "urlencode",
    "url_escape": "urlencode",
    "size": "length",
    "len": "length",
    "strip": "trim",
    "elsif": "elif",
    "elseif": "elif",
    "else if": "elif",
}


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` — did you mean 'upper'?`` when a known name is close to ``name``, else ``""``."""
    names = sorted(known)
    if SYNONYMS.get(name.lower()) in names:
        return f" — did you mean '{SYNONYMS[name.lower()]}'?"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def describe_syntax_error(
    message: str, *, filters: Iterable[str] = (), tests: Iterable[str] = ()
) -> str:
    """The sentence for a Jinja ``TemplateSyntaxError`` message."""
    text = (message or "").strip()
    named = re.fullmatch(r"No (filter|test) named '([^']+)'\.?(?: \(.*\))?", text)
    if named:
        kind, name = named.groups()
        return f"unknown {kind} '{name}'" + did_you_mean(
            name, filters if kind == "filter" else tests
        )
    if text.startswith("unexpected end of template, expected 'end of print statement'"):
        return "missing closing }}"
    if text.startswith("unexpected end of template, expected 'end of statement block'"):
        return "missing closing %}"
    block = re.search(r"The innermost block that needs to be closed is '(\w+)'", text)
    if block:
        return f"missing {{% end{block.group(1)} %}} to close the {{% {block.group(1)} %}} block"
    if text.startswith("unexpected end of template"):
        return "the template ends too early: a }}, %} or closing quote is missing"
    tag = re.fullmatch(r"Encountered unknown tag '(\w+)'\.?.*", text, flags=re.S)
    if tag:
        return f"unknown tag {{% {tag.group(1)} %}}" + did_you_mean(tag.group(1), KNOWN_TAGS)
    closing = re.fullmatch(r"unexpected '\}', expected '([)\]])'", text)
    if closing:
        return f"missing closing {closing.group(1)} before }}}}"
    if text == "unexpected '}'":
        return "missing closing }} (only one } was found)"
    if text == "Expected an expression, got 'end of print statement'":
        return "empty {{ }}: put a variable or a value inside"
    if text == "Expected an expression, got 'end of statement block'":
        return "this {% %} tag needs a condition or a value"
    extra = re.fullmatch(r"expected token 'end of print statement', got '([^']*)'", text)
    if extra:
        return (
            f"unexpected '{extra.group(1)}' inside {{{{ }}}}: one value per {{{{ }}}} "
            "(use | for a filter, ~ to join text)"
        )
    if text == "expected name or number":
        return 'a dot must be followed by a name (use contact["my key"] for other keys)'
    char = re.fullmatch(r"unexpected char '(.)' at \d+", text)
    if char and char.group(1) in "\"'":
        return f"a quoted text is not closed (missing {char.group(1)})"
    if char:
        return f"the character '{char.group(1)}' is not allowed here"
    return f"template error: {text}"
