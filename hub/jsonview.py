"""Protobuf messages as plain JSON-ready dicts for `--json` output.

Field names are the schema's; 64-bit integers stay numbers (protobuf's own JSON
mapping turns them into strings, which scripts then have to convert); enums are
their value names; bytes are standard base64; a double that is not finite is
the string "NaN", "Infinity" or "-Infinity" (as in protobuf's JSON mapping), so
the output stays valid JSON; unset oneof members and unset optional fields are
left out. Unknown fields (whatever a producer sends that the schema does not
declare, kept byte-exact) have no names and are not shown.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def message_to_dict(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        if field.is_repeated:
            result[field.name] = [_value(field, v) for v in getattr(message, field.name)]
        elif field.has_presence and not message.HasField(field.name):
            continue
        else:
            result[field.name] = _value(field, getattr(message, field.name))
    return result


def _value(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_dict(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value) if field.enum_type else None
        return enum_value.name if enum_value is not None else value
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    return value
