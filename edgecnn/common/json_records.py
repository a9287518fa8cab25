"""Dataclasses built from JSON that may come from elsewhere: a manifest, a device's bench report, a checkpoint's state.

    entry = from_json(ArtifactEntry, record, "artifact")   # TypeError: "artifact field bytes is 'x'"

Each field's value must have the field's type (JSON's 3 stands for 3.0 in a float field, and true or false are
no numbers); fields without a default must be there, other missing ones take their defaults, unknown ones are
dropped (a newer edgecnn may add fields). Messages show values shortened (reprlib): a record may be large.
"""

from __future__ import annotations

import functools
import reprlib
import typing
from dataclasses import MISSING, fields

# resolving a dataclass's annotations is most of what building a record costs, and they never change
_type_hints = functools.cache(typing.get_type_hints)


def from_json(cls, record, what: str):
    """An instance of the dataclass ``cls`` from the JSON object ``record``; TypeError, starting with ``what``,
    where ``record`` is not an object, a field has the wrong type, or a field without a default is missing."""
    if not isinstance(record, dict):
        raise TypeError(f"{what} {reprlib.repr(record)} is not an object")
    types = _type_hints(cls)
    values = {}
    for name, value in record.items():
        if name not in types:
            continue
        expected = types[name]
        if type(value) is int and not isinstance(value, expected) and isinstance(0.0, expected):
            value = float(value)
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            raise TypeError(f"{what} field {name} is {reprlib.repr(value)}")
        values[name] = value
    missing = [f.name for f in fields(cls)
               if f.default is MISSING and f.default_factory is MISSING and f.name not in values]
    if missing:
        raise TypeError(f"{what} {reprlib.repr(record)} lacks {', '.join(missing)}")
    return cls(**values)
