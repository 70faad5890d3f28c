"""Settings values converted to their type, or refused with a message that says why.

Settings often come from the environment, so a string stands for a number or a
boolean: ``"300"`` is 300 and ``"false"`` is False (never true because it is a
non-empty string). Anything else of the wrong type is refused at load time with
a :class:`SettingError` naming the setting, the type expected and the type
given, never the value (it may be a secret). Each kind of refusal has its own
system check id (``ftauth.checks``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

# One system check id per rule (docs/settings.md).
UNKNOWN_KEY = "ftauth.E001"
WRONG_TYPE = "ftauth.E006"
OUT_OF_RANGE = "ftauth.E007"
UNKNOWN_REALM = "ftauth.E008"
BAD_ALGORITHMS = "ftauth.E009"
NO_USERINFO_URL = "ftauth.E010"

TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0", ""})


class SettingError(ConfigurationError):
    """One setting is wrong; ``check_id`` names the rule it breaks."""

    def __init__(self, message: str, *, check_id: str) -> None:
        super().__init__(message)
        self.check_id = check_id


def _type_name(value: Any) -> str:
    return type(value).__name__


def wrong_type(name: str, expected: str, value: Any) -> SettingError:
    return SettingError(f"{name} must be {expected}, not {_type_name(value)}", check_id=WRONG_TYPE)


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise wrong_type(name, 'a boolean (True/False, or "true"/"false")', value)


def _number(name: str, value: Any, expected: str) -> float:
    if isinstance(value, bool):
        raise wrong_type(name, expected, value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise SettingError(
                f"{name} must be {expected}, not a str that is no number", check_id=WRONG_TYPE
            ) from None
    else:
        raise wrong_type(name, expected, value)
    if not math.isfinite(number):
        raise SettingError(f"{name} must be a finite number", check_id=OUT_OF_RANGE)
    return number


def _at_least(name: str, number: float, minimum: float, strict: bool) -> None:
    if number < minimum or (strict and number == minimum):
        bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
        raise SettingError(f"{name} must be {bound}", check_id=OUT_OF_RANGE)


def as_int(name: str, value: Any, *, minimum: int = 0) -> int:
    number = _number(name, value, "an integer")
    if not number.is_integer():
        raise SettingError(f"{name} must be a whole number", check_id=WRONG_TYPE)
    _at_least(name, number, minimum, strict=False)
    return int(number)


def as_float(name: str, value: Any, *, minimum: float = 0.0, strict: bool = False) -> float:
    number = _number(name, value, "a number")
    _at_least(name, number, minimum, strict)
    return number


def as_str(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise wrong_type(name, "a str", value)


def as_optional_str(name: str, value: Any) -> str | None:
    return None if value is None or value == "" else as_str(name, value)


def as_str_tuple(name: str, value: Any) -> tuple[str, ...]:
    """A list of strings, or one string of comma- or space-separated items."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(item for item in value.replace(",", " ").split() if item)
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if not isinstance(item, str):
                raise wrong_type(f"{name} item", "a str", item)
        return tuple(value)
    raise wrong_type(name, "a list of str", value)


def as_mapping(name: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise wrong_type(f"{name} key", "a str", key)
        return value
    raise wrong_type(name, "a dict", value)


def as_rate_map(name: str, value: Any) -> dict[str, float]:
    """Calls per second per API name: each a number greater than zero."""
    return {
        api: as_float(f"{name}[{api!r}]", rate, strict=True)
        for api, rate in as_mapping(name, value).items()
    }


def as_str_map(name: str, value: Any) -> dict[str, str]:
    return {key: as_str(f"{name}[{key!r}]", item) for key, item in as_mapping(name, value).items()}
