"""Venue options: one function reads a [venues.NAME] table into its dataclass, and reports
every problem at once; the catalogue does so for a whole config file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Literal

import pytest

from recorder import config
from recorder.catalogue import Catalogue
from recorder.options import OptionProblems, check, opt, typed
from recorder.venues import CATALOGUE
from recorder.venues.mackinac import VENUE as MACKINAC


@dataclass(frozen=True)
class Opts:
    names: tuple[str, ...] = opt(MISSING, "a non-empty list of names", bool)
    depth: Literal[1, 10] = opt(10, "one of [1, 10]")
    every: float = opt(30.0, "a duration of at least 1 s", lambda v: v >= 1)
    key_env: str | None = opt(None, "the NAME of an environment variable")
    flag: bool = opt(False, "true or false")

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.flag and self.key_env is None:
            yield ".flag", "needs key_env"


def test_values_are_read_as_their_types() -> None:
    o = typed(Opts, {"names": ["a", "b", "a"], "depth": 1, "every": "2m", "key_env": "K"},
              "[venues.x]")
    assert o == Opts(names=("a", "b"), depth=1, every=120.0, key_env="K")


def test_every_problem_at_once() -> None:
    obj, problems = check(Opts, {"depth": True, "every": "soon", "flag": "yes", "colour": 1},
                          "[venues.x]")
    assert obj is None
    assert problems == [
        ("[venues.x]", "unknown setting 'colour' (known: names, depth, every, key_env, flag)"),
        ("[venues.x].names", "required: a non-empty list of names"),
        ("[venues.x].depth", "one of [1, 10], got True"),  # True == 1, yet not a depth
        ("[venues.x].every", "a duration of at least 1 s, got 'soon'"),
        ("[venues.x].flag", "true or false, got 'yes'"),
    ]
    with pytest.raises(OptionProblems, match=r"^5 problems: \[venues.x\]: unknown") as e:
        typed(Opts, {"depth": True, "every": "soon", "flag": "yes", "colour": 1}, "[venues.x]")
    assert len(e.value.problems) == 5 and "\n" not in str(e.value)


def test_rules_across_fields_run_once_the_fields_are_read() -> None:
    assert check(Opts, {"names": ["a"], "flag": True}, "[venues.x]")[1] == [
        ("[venues.x].flag", "needs key_env")]


def test_the_catalogue_checks_a_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("""
[venues.mackinac]
url = "ws://127.0.0.1:9/feed"
symbols = "hl:ETH"
history_limit = 5000
[venues.derive]
url = "ws://127.0.0.1:9/ws"
variant = "v4"
[venues.other]
adapter = "nope"
url = "ws://x"
""")
    cfg = config.load(p)
    with pytest.raises(OptionProblems) as e:
        CATALOGUE.check(cfg)
    assert str(e.value).startswith(f"{p}: 4 problems: ")
    assert [w for w, _ in e.value.problems] == [
        "[venues.mackinac].symbols", "[venues.mackinac].history_limit",
        "[venues.derive].variant", "[venues.other].adapter"]


def test_a_catalogue_refuses_two_venues_or_tables_of_one_name() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        Catalogue.of(MACKINAC, MACKINAC)
    assert set(CATALOGUE.tables) >= {"session_events", "unhandled", "mackinac_print"}
