"""Located validation errors: one spelling for every 422 of the API and the builder.

marshmallow nests its messages (``{"webhook": {"body": {"fields": {1: {"name": [...]}}}}}``);
clients get them flat, keyed by the path of the bad field: dots between keys and list
positions in brackets, ``webhook.body.fields[1].name``, the spelling
``engine.templating.channel`` and
``engine.rules.conditions`` use for their own locations (``trigger.conditions.all[1].any[0].op``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten_messages(
    messages: Any, prefix: str = "", root: str = "_schema"
) -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"a.b[2].c": [...]}``.

    ``_schema`` (a message about the whole object) folds into its parent's path; integer or
    digit keys and list positions become ``[n]``. ``prefix`` goes before every path; with no
    prefix, messages about the whole body are keyed ``root``.
    """
    flat: dict[str, list[str]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "_schema":
                    walk(value, path)
                elif isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                    walk(value, f"{path}[{key}]")
                else:
                    walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list | tuple) and all(isinstance(item, str) for item in node):
            flat.setdefault(path or root, []).extend(node)
        elif isinstance(node, list | tuple):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")
        else:
            flat.setdefault(path or root, []).append(str(node))

    walk(messages, prefix)
    return flat
