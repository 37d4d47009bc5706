"""Evaluation stage: scores and feedback in, each applicable rule kind's verdict per fingerprint out.

Score-driven kinds read the unit's stored series of their period (kept here from ``score.updated``,
for the indicators the organisation's rules watch and the composite); feedback-driven kinds read one
feedback. Every verdict goes to ``pipeline.decide``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.alerts import pipeline, repository, rules
from services.alerts.pipeline import Book, UnitInfo
from services.alerts.rules.base import Feedback, Observation, Point
from shared.events import Envelope, FeedbackReceived, ScoreUpdated
from shared.storage import Document
from shared.tree import lineage

# Points kept per unit and period: enough for the baselines and control charts rules can ask for.
SERIES_CAPS = {"all": 200, "hour": 72, "day": 120, "week": 60, "month": 24}
ROLLED_UP_KINDS = frozenset({"burn_rate"})


def encode(indicator: str) -> str:
    """An indicator id as a field name (MongoDB paths split on dots)."""
    return indicator.replace(".", "~")


def point_key(score: ScoreUpdated, at: datetime) -> str:
    """The series key of a score: its period's start, or the minute it came for the period ``all``."""
    if score.period != "all" and score.period_start is not None:
        return score.period_start.isoformat()
    return at.replace(second=0, microsecond=0).isoformat()


def points_of(series: Document, indicator: str) -> list[tuple[str, Point]]:
    """A stored series' points of one indicator, oldest first."""
    field = encode(indicator)
    out = []
    for key in sorted(series.get("points", {})):
        figure = series["points"][key].get(field)
        if figure is not None:
            out.append((key, Point(datetime.fromisoformat(key), figure[0], figure[1], figure[2])))
    return out


@dataclass
class Rules:
    """The active rules of the organisations in a batch, by organisation."""

    by_org: dict[str, list[Document]]

    @classmethod
    async def load(cls, book: Book, orgs: Sequence[str]) -> Rules:
        """Read the active rules of these organisations."""
        by_org: dict[str, list[Document]] = {}
        for rule in await repository.list_active_rules(book.db, sorted(set(orgs)), session=book.session):
            by_org.setdefault(rule["org"], []).append(rule)
        return cls(by_org)

    def watching(self, org: str, source: str, period: str | None = None) -> list[Document]:
        """An organisation's rules driven by this source (and reading this period)."""
        return [
            r
            for r in self.by_org.get(org, [])
            if rules.source_of(pipeline.params_of(r)) == source
            and (period is None or pipeline.params_of(r).period == period)
        ]


async def units_of(book: Book, pairs: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str], UnitInfo]:
    """Units by (org, unit id) from the read copy of the tree; the event's path when the copy lacks one."""
    keys = sorted({repository.unit_key(org, unit_id) for org, unit_id, _ in pairs})
    known = {d["_id"]: d for d in await repository.list_units(book.db, keys, session=book.session)}
    out: dict[tuple[str, str], UnitInfo] = {}
    for org, unit_id, path in pairs:
        copy = known.get(repository.unit_key(org, unit_id))
        out[(org, unit_id)] = (
            UnitInfo(org, unit_id, copy["path"], copy.get("kind", "unit")) if copy else UnitInfo(org, unit_id, path)
        )
    return out


async def on_scores(book: Book, envelopes: Sequence[Envelope[ScoreUpdated]]) -> None:
    """Keep the series the rules need and evaluate every score-driven rule on each new figure, in order."""
    active = await Rules.load(book, [e.data.org for e in envelopes])
    # Deepest units first: when a branch and its region breach together, the branch's alert opens the group
    # and its breach goes out first, so the group's action is routed to whoever owns the branch.
    ordered = sorted(envelopes, key=lambda e: -e.data.unit_path.count("/"))
    watched = [(e, active.watching(e.data.org, "score", e.data.period)) for e in ordered]
    watched = [(e, r) for e, r in watched if r]
    if not watched:
        return
    units = await units_of(book, [(e.data.org, e.data.unit_id, e.data.unit_path) for e, _ in watched])
    series_keys = sorted({repository.series_key(e.data.org, e.data.unit_id, e.data.period) for e, _ in watched})
    series = {
        d["_id"]: d for d in await repository.list_by_ids(book.db, repository.SERIES, series_keys, session=book.session)
    }
    await book.load([pipeline.fingerprint(r["_id"], e.data.unit_id) for e, rs in watched for r in rs])
    touched: dict[str, set[str]] = {}
    for envelope, org_rules in watched:
        score = envelope.data
        unit = units[(score.org, score.unit_id)]
        key = repository.series_key(score.org, score.unit_id, score.period)
        stored = series.setdefault(key, {"_id": key, "points": {}})
        at = point_key(score, envelope.time)
        indicators = {pipeline.params_of(r).indicator for r in org_rules} | {"composite"}
        stored["points"][at] = {
            encode(i): [f.value, f.sample_size, f.insufficient] for i in indicators if (f := score.indicators.get(i))
        }
        touched.setdefault(key, set()).add(at)
        for rule in org_rules:
            if pipeline.applies(rule, unit):
                await _evaluate_score(book, rule, unit, stored, at, envelope)
    for key, ats in touched.items():
        _stage_series(book, series[key], key, ats)
    book.flush()


def _stage_series(book: Book, stored: Document, key: str, changed: set[str]) -> None:
    """Stage a series' changed points, dropping the oldest beyond its period's cap in the same update."""
    org, unit_id, period = key.split("\x1f")
    keep = set(sorted(stored["points"])[-SERIES_CAPS[period] :])
    drop = sorted(set(stored["points"]) - keep)
    for at in sorted(changed & keep):
        figures = stored["points"][at]
        repository.set_series_point(
            book.unit, key, org=org, unit_id=unit_id, period=period, at=at, figures=figures, drop=drop
        )
        drop = []


async def _evaluate_score(
    book: Book, rule: Document, unit: UnitInfo, series: Document, at: str, envelope: Envelope[ScoreUpdated]
) -> None:
    params = pipeline.params_of(rule)
    figure = series["points"][at].get(encode(params.indicator))
    if figure is None:
        return
    history = tuple(p for k, p in points_of(series, params.indicator) if k < at)
    observation = Observation(
        at=envelope.time, point=Point(datetime.fromisoformat(at), figure[0], figure[1], figure[2]), history=history
    )
    key = pipeline.fingerprint(rule["_id"], unit.unit_id)
    firing = key in book.open_alerts
    verdict, state = rules.on_score(params, book.state(key), observation, firing=firing)
    book.set_state(key, state, org=unit.org, rule_id=rule["_id"], unit_id=unit.unit_id)
    await pipeline.decide(book, rule, unit, verdict, period=params.period, cause=envelope)


def feedback_of(event: FeedbackReceived) -> Feedback:
    """What rules on single feedback read of a feedback."""
    return Feedback(
        at=event.occurred_at,
        kind=event.kind,
        csat=event.ratings.csat,
        nps=event.ratings.nps,
        has_comment=event.comment_language is not None or event.sentiment is not None or bool(event.keywords),
        complaint_severity=event.complaint.severity if event.complaint else None,
        audit_percent=event.audit.percent if event.audit else None,
    )


async def on_feedback(book: Book, envelopes: Sequence[Envelope[FeedbackReceived]]) -> None:
    """Evaluate every feedback-driven rule on each feedback: on its unit, or (burn rates) its ancestors too."""
    active = await Rules.load(book, [e.data.org for e in envelopes])
    watched = [(e, active.watching(e.data.org, "feedback")) for e in envelopes]
    watched = [(e, r) for e, r in watched if r]
    if not watched:
        return
    units = await units_of(book, [(e.data.org, e.data.unit_id, e.data.unit_path) for e, _ in watched])
    work: list[tuple[Envelope[FeedbackReceived], Document, UnitInfo]] = []
    for envelope, org_rules in watched:
        own = units[(envelope.data.org, envelope.data.unit_id)]
        for rule in org_rules:
            for unit in _units_watched(rule, own):
                if pipeline.applies(rule, unit):
                    work.append((envelope, rule, unit))
    await book.load([pipeline.fingerprint(r["_id"], u.unit_id) for _, r, u in work])
    for envelope, rule, unit in work:
        params = pipeline.params_of(rule)
        key = pipeline.fingerprint(rule["_id"], unit.unit_id)
        firing = key in book.open_alerts
        verdict, state = rules.on_feedback(params, book.state(key), feedback_of(envelope.data), firing=firing)
        book.set_state(key, state, org=unit.org, rule_id=rule["_id"], unit_id=unit.unit_id)
        await pipeline.decide(book, rule, unit, verdict, period=params.period, cause=envelope)
    book.flush()


def _units_watched(rule: Document, own: UnitInfo) -> list[UnitInfo]:
    """The feedback's unit, and for rules that roll up (burn rates) each of its ancestors."""
    if pipeline.params_of(rule).kind not in ROLLED_UP_KINDS:
        return [own]
    # Path segments are unit ids, so an ancestor's id is the last segment of its path.
    return [UnitInfo(own.org, path.rpartition("/")[2], path) for path in lineage(own.path)[:-1]] + [own]


async def recheck(book: Book, org: str, rule_id: str, unit_id: str) -> None:
    """A rule kind's timer came due for one fingerprint: evaluate it again without new data."""
    rule = await repository.get_rule(book.db, org, rule_id, session=book.session)
    if rule is None or not rule["enabled"] or rule["deleted"]:
        return
    unit = (await units_of(book, [(org, unit_id, unit_id)]))[(org, unit_id)]
    key = pipeline.fingerprint(rule_id, unit_id)
    await book.load([key])
    params = pipeline.params_of(rule)
    verdict, state = rules.recheck(params, book.state(key), book.now, firing=key in book.open_alerts)
    book.set_state(key, state, org=org, rule_id=rule_id, unit_id=unit_id)
    await pipeline.decide(book, rule, unit, verdict, period=params.period, cause=None)
    book.flush()


def try_rule(params: rules.AnyParams, series: Document | None) -> tuple[list[dict[str, Any]], bool, int]:
    """Evaluate a score-driven rule over a stored series: its transitions, whether it fires at the end, points."""
    points = points_of(series, params.indicator) if series else []
    state: dict[str, Any] = {}
    firing, transitions = False, []
    for index, (_, point) in enumerate(points):
        history = tuple(p for _, p in points[:index])
        verdict, state = rules.on_score(params, state, Observation(point.at, point, history), firing=firing)
        if verdict.holds is not None and verdict.holds != firing:
            firing = verdict.holds
            transitions.append(
                {
                    "at": point.at,
                    "firing": firing,
                    "value": verdict.value,
                    "threshold": verdict.threshold,
                    "sample_size": verdict.sample_size,
                    "reason": verdict.reason,
                }
            )
    return transitions, firing, len(points)
