"""One spelling for located validation errors: ``a.b[2].c``, ``_schema`` folded upward."""

from __future__ import annotations

from web.schemas.errors import flatten_messages


def test_nested_messages_flatten_to_dotted_paths_with_bracketed_positions() -> None:
    messages = {
        "webhook": {"body": {"fields": {1: {"name": ["required"]}}}, "url": ["bad"]},
        "headers": {"0": {"value": ["too long"]}},
        "conditions": {"all": [{"op": ["unknown"]}, {"any": [{"value": ["missing"]}]}]},
        "name": ["short"],
    }
    assert flatten_messages(messages) == {
        "webhook.body.fields[1].name": ["required"],
        "webhook.url": ["bad"],
        "headers[0].value": ["too long"],
        "conditions.all[0].op": ["unknown"],
        "conditions.all[1].any[0].value": ["missing"],
        "name": ["short"],
    }


def test_schema_messages_fold_into_their_parent() -> None:
    messages = {"_schema": ["whole"], "body": {"_schema": ["mode"], "fields": ["needed"]}}
    assert flatten_messages(messages) == {
        "_schema": ["whole"],
        "body": ["mode"],
        "body.fields": ["needed"],
    }
    assert flatten_messages(messages, "webhook") == {
        "webhook": ["whole"],
        "webhook.body": ["mode"],
        "webhook.body.fields": ["needed"],
    }
    assert flatten_messages({"_schema": ["must be an object"]}, root="event") == {
        "event": ["must be an object"]
    }
    assert flatten_messages({"name": ["bad"]}, "events[3]") == {"events[3].name": ["bad"]}


def test_messages_for_one_path_are_kept_together() -> None:
    messages = {"fields": {1: {"name": ["required"]}}, "fields[1].name": ["needs a name"]}
    assert flatten_messages(messages) == {"fields[1].name": ["required", "needs a name"]}
    assert flatten_messages("plain") == {"_schema": ["plain"]}
