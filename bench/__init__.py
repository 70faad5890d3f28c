"""Benchmarks of ftauth: run with ``make bench`` (``python -m bench``), never in the tests.

A benchmark is a module of this package with a ``run() -> Report`` function
(and optionally a ``TITLE``). ``python -m bench`` finds every such module, runs
them one after the other (or only those named on the command line) and prints
their reports. Each benchmark starts what it needs (servers, processes) and
stops it; options come from environment variables the module documents.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType


@dataclass
class Measure:
    """One figure, with the goal it is held to (``met`` is None when there is none)."""

    name: str
    value: str
    goal: str = ""
    met: bool | None = None


@dataclass
class Report:
    title: str
    measures: list[Measure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def add(self, name: str, value: str, goal: str = "", met: bool | None = None) -> None:
        self.measures.append(Measure(name, value, goal, met))

    @property
    def ok(self) -> bool:
        return not self.error and all(m.met is not False for m in self.measures)

    def render(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        if self.error:
            lines.append(f"NOT RUN: {self.error}")
        width = max((len(m.name) for m in self.measures), default=0)
        value_width = max((len(m.value) for m in self.measures), default=0)
        for m in self.measures:
            verdict = {True: "ok", False: "MISSED", None: ""}[m.met]
            goal = f"goal {m.goal}" if m.goal else ""
            lines.append(
                f"  {m.name:<{width}}  {m.value:<{value_width}}  {goal:<16} {verdict}".rstrip()
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def benchmarks(names: list[str] | None = None) -> list[ModuleType]:
    """The benchmark modules of this package (those with a ``run``), in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or (names and info.name not in names):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "run", None)):
            found.append(module)
    return found
