"""Typed settings: frozen pydantic models that refuse unknown keys and fail in one line.

Every settings class of the package (the training recipes, the i-PI drivers, the
reference calculations) derives from :class:`Settings`. Values are kept as given:
the number types below accept an ``int`` or a ``float`` and keep which it was, and no
string is turned into a number. That matters: ``to_dict()`` is hashed into the cache
keys of trained models and the content keys of reference jobs, so the same input must
give the same dictionary as before. Bad input raises
:class:`~ase_bodyorder.expansion.BodyOrderError` with one line naming the field
(``num_epochs must be a positive integer, got 0``), never pydantic's multi-line report.

A field's requirement in words is a :class:`Rule` in its annotation; a validator that
raises ``ValueError`` writes its whole message itself (naming the field).
"""

from __future__ import annotations

import math
import typing
from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Gt, Lt, MinLen
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from .expansion import BodyOrderError

__all__ = [
    "DeviceName",
    "Fraction",
    "NonNegativeInt",
    "NonNegativeNumber",
    "Number",
    "PositiveInt",
    "PositiveNumber",
    "Rule",
    "Settings",
]


class Rule(str):
    """What a field must be, in words (``"a positive integer"``): the error message's
    ``FIELD must be RULE, got VALUE``."""


def _finite(value):
    if not math.isfinite(value):  # reported through the field's Rule
        raise PydanticCustomError("not_finite", "Input should be finite")
    return value


#: a real number, kept as given (an ``int`` stays an ``int``); no bool, no string
Number = Annotated[StrictInt | StrictFloat, Rule("a number")]
PositiveInt = Annotated[StrictInt, Gt(0), Rule("a positive integer")]
NonNegativeInt = Annotated[StrictInt, Ge(0), Rule("a non-negative integer")]
PositiveNumber = Annotated[
    StrictInt | StrictFloat, Gt(0), AfterValidator(_finite), Rule("a positive finite number")
]
NonNegativeNumber = Annotated[
    StrictInt | StrictFloat, Ge(0), AfterValidator(_finite), Rule("a non-negative number")
]
#: a number strictly between 0 and 1
Fraction = Annotated[StrictInt | StrictFloat, Gt(0), Lt(1), Rule("a number in (0, 1)")]
DeviceName = Annotated[StrictStr, MinLen(1), Rule("a device name")]


class Settings(BaseModel):
    """Frozen settings that refuse unknown keys; bad input is a one-line
    :class:`~ase_bodyorder.expansion.BodyOrderError`.

    Fields may also be given by position, in their order (as the dataclasses these
    classes were). ``settings_name`` names the settings in the message about unknown
    keys (``unknown MACE setting(s) 'r_maxx'``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    settings_name: ClassVar[str] = "settings"

    def __init__(self, /, *args, **data):
        if args:
            names = list(type(self).model_fields)
            if len(args) > len(names):
                raise BodyOrderError(
                    f"{type(self).__name__} takes at most {len(names)} positional "
                    f"settings, got {len(args)}"
                )
            given = sorted(set(names[: len(args)]) & set(data))
            if given:
                raise BodyOrderError(
                    f"{type(self).__name__} setting(s) {', '.join(given)} given twice"
                )
            data = {**dict(zip(names, args, strict=False)), **data}
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise BodyOrderError(_error_line(error, type(self))) from None

    @classmethod
    def from_dict(cls, data: dict):
        """Settings from a dictionary (e.g. parsed JSON); unknown keys are an error."""
        if not isinstance(data, dict):
            raise BodyOrderError(
                f"{cls.settings_name} settings must be a dictionary, got {type(data).__name__}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise BodyOrderError(_error_line(error, cls)) from None

    def to_dict(self) -> dict:
        """The settings as a dictionary (inverse of :meth:`from_dict`): values as given,
        nested settings as dictionaries."""
        return self.model_dump()

    def replace(self, **changes):
        """These settings with ``changes`` applied (checked like new settings)."""
        return type(self)(**{**dict(self), **changes})


def _rule(annotation) -> Rule | None:
    """The first :class:`Rule` in an annotation (through ``Annotated``, unions, ``None``)."""
    for arg in typing.get_args(annotation):
        if isinstance(arg, Rule):
            return arg
        found = _rule(arg)
        if found is not None:
            return found
    return None


def _field(cls: type[BaseModel], loc) -> tuple[str, Any]:
    """``(dotted field name, FieldInfo)`` an error location points at (nested settings
    included; list indices and union branches are left out)."""
    names, info = [], None
    for part in loc:
        fields = getattr(cls, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            break
        names.append(part)
        info = fields[part]
        cls = info.annotation
    return ".".join(names), info


def _error_line(error: ValidationError, cls: type[Settings]) -> str:
    """One line for pydantic's report on settings of class ``cls``: every unknown key,
    else the first field in error, what it must be and the value given (nested settings
    build themselves, so their errors arrive here as one line already)."""
    errors = error.errors(include_url=False)
    unknown = [repr(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:  # (nested settings report their own, through the value error below)
        return (
            f"unknown {cls.settings_name} setting(s) {', '.join(unknown)}; "
            f"known settings: {', '.join(sorted(cls.model_fields))}"
        )
    first = errors[0]
    name, info = _field(cls, first["loc"])
    name = name or cls.__name__
    if first["type"] == "value_error":
        message = str(first["ctx"]["error"])  # a validator's own message names its field
        nested = info is not None and isinstance(info.annotation, type)
        if nested and issubclass(info.annotation, Settings):
            return f"{name} settings: {message}"
        return message
    missing = [_field(cls, e["loc"])[0] for e in errors if e["type"] == "missing"]
    if missing:
        return f"{cls.__name__} needs {', '.join(missing)}"
    rule = None
    if info is not None:
        rule = next((m for m in info.metadata if isinstance(m, Rule)), None)
        rule = rule or _rule(info.annotation)
    if rule is not None:
        return f"{name} must be {rule}, got {first['input']!r}"
    message = first["msg"][:1].lower() + first["msg"][1:]
    return f"{name}: {message}, got {first['input']!r}"
