"""What every recipe section shares: value checks whose problem lines say what a value must be, the lines of a
failed validation (unknown keys with the key most likely meant), and the section base that raises them as one
ConfigError."""

from __future__ import annotations

from typing import Annotated, Any, Callable, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from assistant.errors import ConfigError, closest


def rule(ok: Callable[[Any], bool], want: str) -> AfterValidator:
    """A check on one value; `want` is what the problem line says the value must be."""

    def check(v: Any) -> Any:
        if not ok(v):
            raise PydanticCustomError("recipe", want)
        return v

    return AfterValidator(check)


def auto_or_count(v: Any) -> Any:
    """A whole number >= 1 or 'auto' (a command line gives numbers as text)."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return v
    if isinstance(v, str):
        word = v.strip().lower()
        if word == "auto":
            return word
        if word.isascii() and word.isdecimal() and int(word) >= 1:
            return int(word)
    raise PydanticCustomError("recipe", "a whole number >= 1 or auto")


def auto_or_bool(v: Any) -> Any:
    """true / false / 'auto', with YAML's and a command line's spellings of on and off."""
    words = {"auto": "auto", "true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
    if isinstance(v, bool) or v == "auto":
        return v
    if isinstance(v, str) and v.strip().lower() in words:
        return words[v.strip().lower()]
    raise PydanticCustomError("recipe", "true, false or auto")


def one_of(*choices: str) -> AfterValidator:
    return rule(lambda v: v in choices, f"one of {', '.join(choices)}")


def between(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, what: str = "") -> AfterValidator:
    ok = lambda v: (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)  # noqa: E731
    return rule(ok, what or f"between {lo:g} and {hi:g}")


_AT_LEAST_1 = rule(lambda v: v >= 1, "a whole number >= 1")
Positive = Annotated[int, _AT_LEAST_1]


def combination_problem(line: str) -> PydanticCustomError:
    """A problem of several settings together: `line` starts with the setting to change (after the section)."""
    return PydanticCustomError("recipe_combination", line)


_TYPES = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of settings",
}


def problem_lines(error: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per problem: `  - section.key: what it must be (got value)`."""
    out = []
    for e in error.errors(include_url=False):
        loc = [str(x) for x in e["loc"] if not isinstance(x, int)]
        path = prefix + ".".join(loc)
        if e["type"] == "extra_forbidden":
            names = _field_names(model, loc[:-1])
            close = closest(loc[-1], names)
            out.append(
                f"  - {path}: unknown key" + (f" (did you mean {path[: -len(loc[-1])]}{close}?)" if close else "")
            )
        elif e["type"] == "recipe_combination":
            out.append(f"  - {prefix + ''.join(x + '.' for x in loc)}{e['msg']}")
        elif e["type"] == "recipe":
            out.append(f"  - {path}: {e['msg']} (got {e['input']!r})")
        elif e["type"] in _TYPES:
            out.append(f"  - {path}: {_TYPES[e['type']]} (got {e['input']!r})")
        else:
            out.append(f"  - {path}: {e['msg']} (got {e['input']!r})")
    return out


def _field_names(model: type[BaseModel], loc: list[str]) -> set[str]:
    for name in loc:
        ann = model.model_fields[name].annotation if name in model.model_fields else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return set()
        model = ann
    return set(model.model_fields)


class RecipeSection(BaseModel):
    """A recipe section: unknown keys and values of the wrong type are problems (YAML's `1` is no `true`)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)
    _prefix: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            problems = problem_lines(e, type(self), self._prefix)
            raise ConfigError(f"{self._what(data)}: {len(problems)} problem(s):\n" + "\n".join(problems)) from None

    # a section inside a recipe is validated as part of it (its problems listed with the rest), not by this __init__
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def _what(cls, data: dict[str, Any]) -> str:
        return "recipe"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()
