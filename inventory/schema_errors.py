"""Turn pydantic validation errors into inventory problems: plain wording, lines, no secrets."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.nodes import Node, ScalarNode

from inventory.model import WEAK_AUTH, WEAK_PRIV
from inventory.problems import SECRET_HIDDEN, Problem, safe_text
from inventory.source import Document, locate, mapping_get, render_path

SECRET_FIELDS = frozenset({"community", "auth_key", "priv_key", "password", "key_file"})
# A value given where a whole credential block is expected (`snmp: public`) is a secret too.
CREDENTIAL_SECTIONS = frozenset({"snmp", "ssh"})

_NAME_HINT = (
    "expected a name of letters, digits, '.', '_' or '-' starting with a letter or digit "
    "(at most 64 characters)"
)


def schema_problems(
    doc: Document, node: Node | None, prefix: str, model: type[BaseModel], errors: list[ErrorDetails]
) -> list[Problem]:
    """One problem per pydantic error of `model` validated from `node` (document path `prefix`)."""
    problems = []
    for err in errors:
        loc = list(err["loc"])
        kind = err["type"]
        line, parts = locate(node, loc, keep_last=kind == "missing")
        if kind == "union_tag_invalid":
            # The line of the selecting key itself (`type: htps`), not the entry's first line.
            tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
            line = locate(node, [*loc, tag])[0]
        message = _message(err, model)
        if "weak SNMPv3" in message:
            line = _weak_protocol_line(node, loc) or line
        problems.append(Problem(doc.file, line, render_path(prefix, parts), _shown(err), message))
    return problems


def _message(err: ErrorDetails, model: type[BaseModel]) -> str:
    kind, loc, ctx = err["type"], err["loc"], err.get("ctx") or {}
    msg = err["msg"]
    if kind == "missing":
        return f"missing required field '{loc[-1]}'"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(model, loc[:-1])
        text = f"unknown field '{safe_text(key, 64)}'"
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            text += f" (did you mean '{close[0]}'?)"
        return text + (f"; expected one of: {', '.join(allowed)}" if allowed else "")
    if kind in ("enum", "literal_error"):
        return f"expected one of {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        field = str(ctx.get("discriminator", "tag")).strip("'")
        return f"unknown {field} '{ctx.get('tag')!s}'; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "tag")).strip("'")
        return f"missing field '{field}', which selects the kind of entry"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "name":
        return _NAME_HINT
    if kind == "value_error" and msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping of fields (key: value lines)"
    for phrase in ("Input should be", "String should have", "List should have"):
        msg = msg.replace(phrase, "expected", 1)
    return msg


def _shown(err: ErrorDetails) -> str | None:
    """The offending value as it may be printed: scalars only, secrets never."""
    value = err.get("input")
    names = [el for el in err["loc"] if isinstance(el, str)]
    if err["type"] in ("missing", "union_tag_invalid", "union_tag_not_found"):
        return None
    if names and (names[-1] in SECRET_FIELDS or names[-1] in CREDENTIAL_SECTIONS):
        return SECRET_HIDDEN
    if err["type"] == "extra_forbidden":
        # An unknown key may be a misspelt secret field (`pasword: ...`): never echo its value.
        return None
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, str | int | float):
        return safe_text(str(value), 80)
    return None


def _weak_protocol_line(node: Node | None, loc: Sequence[int | str]) -> int | None:
    """Line of the weak `auth_protocol`/`priv_protocol` key under the credential block at `loc`."""
    found = None
    for element in loc:
        found = mapping_get(node, element) if isinstance(element, str) else None
        if found is not None:
            node = found[1]
    for key, weak in (("auth_protocol", WEAK_AUTH), ("priv_protocol", WEAK_PRIV)):
        pair = mapping_get(node, key)
        if pair is not None and isinstance(pair[1], ScalarNode) and pair[1].value.lower() in weak:
            return int(pair[0].start_mark.line) + 1
    return None


def _flatten(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _flatten(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [c for arg in get_args(tp) for c in _flatten(arg)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_of(tp: type[BaseModel], tag: int | str) -> bool:
    version = tp.model_fields.get("version")
    if version is not None and version.default == tag:
        return True
    kind = tp.model_fields.get("type")
    return kind is not None and tag in get_args(kind.annotation)


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names of the model(s) found at `loc` under `model` (for 'did you mean')."""
    current: list[Any] = (
        _flatten(model.model_fields["root"].annotation) if "root" in model.model_fields else [model]
    )
    for element in loc:
        advanced: list[Any] = []
        for tp in current:
            if _is_model(tp) and isinstance(element, str) and element in tp.model_fields:
                advanced += _flatten(tp.model_fields[element].annotation)
            elif get_origin(tp) is list and isinstance(element, int):
                advanced += _flatten(get_args(tp)[0])
        if advanced:
            current = advanced
        else:
            # A union tag ('2c', '3'; 'https'): keep the member whose `version` default or `type`
            # literal is that tag.
            tagged = [tp for tp in current if _is_model(tp) and _tag_of(tp, element)]
            current = tagged or current
    fields = {name for tp in current if _is_model(tp) for name in tp.model_fields}
    return sorted(fields)
