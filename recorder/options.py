"""A venue's options: one ``[venues.NAME]`` table read into a frozen dataclass.

One function (:func:`typed`) checks every key of the table against the dataclass's fields,
their types (from the annotations) and the rules declared beside them (:func:`opt`), and
reports every problem at once, each as ``(where, why)``. Unknown keys are errors, so a typo
cannot silently turn a setting off. TOML arrays become tuples without repeats (a channel
named twice would be subscribed twice); a ``float`` also reads a duration (``"30s"``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, field, fields
from typing import Any, Literal, TypeVar, get_args, get_origin

from recorder.config import parse_duration
from recorder.errors import ConfigError

T = TypeVar("T")
Problem = tuple[str, str]  # (where: "[venues.x].key", why)


class OptionProblems(ConfigError):
    """A venue section with one or more problems; ``problems`` lists ``(where, why)``."""

    def __init__(self, problems: list[Problem], path: object = None) -> None:
        self.problems = list(problems)
        self.path = path
        head = f"{path}: " if path is not None else ""
        if len(problems) == 1:
            text = head + "{}: {}".format(*problems[0])
        else:  # one line still: the CLI prints errors as one line
            text = f"{head}{len(problems)} problems: " + "; ".join(
                f"{where}: {why}" for where, why in problems)
        super().__init__(text)


def opt(default: Any, why: str, ok: Callable[[Any], bool] | None = None,
        convert: Callable[[Any], Any] | None = None) -> Any:
    """A field with its rule: ``why`` says what the value must be (the error text), ``ok``
    checks a value of the right type further, ``convert`` reads the TOML value first (e.g.
    ``"all"`` -> None). ``default=MISSING`` makes the key required."""
    return field(default=default, metadata={"why": why, "ok": ok, "convert": convert})


class _Bad(Exception):
    pass


def _read(tp: Any, v: Any) -> Any:
    """``v`` as type ``tp``, or :class:`_Bad`."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in get_args(tp):
            return None
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return _read(arg, v)
            except _Bad:
                continue
        raise _Bad
    if origin is Literal:
        # type() too: True == 1, and a Literal[1, 10] must not take `true`.
        if any(type(v) is type(c) and v == c for c in get_args(tp)):
            return v
        raise _Bad
    if origin is tuple:
        item = get_args(tp)[0]
        if not isinstance(v, list | tuple):
            raise _Bad
        return tuple(dict.fromkeys(_read(item, x) for x in v))
    if tp is float:
        if isinstance(v, str):
            try:
                return parse_duration(v)
            except ConfigError:
                raise _Bad from None
        if type(v) is int or type(v) is float:
            return float(v)
        raise _Bad
    if tp in (bool, int, str):
        if type(v) is not tp:
            raise _Bad
        return v
    raise TypeError(f"options: no reader for type {tp!r}")


def check(cls: type[T], section: Mapping[str, Any], where: str) -> tuple[T | None,
                                                                          list[Problem]]:
    """``section`` as ``cls`` and every problem found (the object is None when there are
    any). After the fields, ``cls.problems(obj)`` (when defined) checks rules that join
    several fields."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key in section:
        if key not in known:
            problems.append((where, f"unknown setting {key!r} (known: {', '.join(known)})"))
    for name, f in known.items():
        if name not in section:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append((f"{where}.{name}", f"required: {f.metadata.get('why')}"))
            continue
        raw = section[name]
        meta = f.metadata
        why = meta.get("why") or f"a {hints[name]}"
        try:
            v = meta["convert"](raw) if meta.get("convert") else raw
            v = _read(hints[name], v)
            ok = meta.get("ok")
            if ok is not None and v is not None and not ok(v):
                raise _Bad
        except _Bad:
            problems.append((f"{where}.{name}", f"{why}, got {raw!r}"))
            continue
        values[name] = v
    if problems:
        return None, problems
    obj = cls(**values)
    joint: Callable[[T], Iterable[Problem]] | None = getattr(cls, "problems", None)
    if joint is not None:
        problems += [(f"{where}{w}", why) for w, why in joint(obj)]
    return (None, problems) if problems else (obj, [])


def typed(cls: type[T], section: Mapping[str, Any], where: str) -> T:
    """``section`` as ``cls``; raises :class:`OptionProblems` naming every problem."""
    obj, problems = check(cls, section, where)
    if problems:
        raise OptionProblems(problems)
    assert obj is not None
    return obj


# --- rules shared by several venues ------------------------------------------------------------

def filled(v: Any) -> bool:
    """A non-empty list with no empty string in it."""
    return bool(v) and all(x != "" for x in v)


def within(allowed: Iterable[Any]) -> Callable[[Any], bool]:
    """Every item is one of ``allowed``."""
    ok = frozenset(allowed)
    return lambda v: all(x in ok for x in v)
