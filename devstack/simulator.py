"""Realistic feedback for a demo organisation: a tree of branches, their service quality, incidents.

Plain Python and seeded, so a run can be repeated. Each branch has an underlying quality (the chance
that a customer is satisfied); ratings, comments, complaints and mystery-shopper audits follow it,
with daily and weekly rhythms in how much feedback arrives. Incidents change a branch's or a region's
quality from a moment on: a collapse (one branch falls at once), a drift (a region slides slowly)
and a complaint burst.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

REGIONS = (("north", "华北区", "North"), ("east", "华东区", "East"), ("south", "华南区", "South"))
CITIES = {
    "north": [
        ("bj", "北京", "Beijing"),
        ("tj", "天津", "Tianjin"),
        ("sjz", "石家庄", "Shijiazhuang"),
        ("ty", "太原", "Taiyuan"),
        ("hhht", "呼和浩特", "Hohhot"),
        ("jn", "济南", "Jinan"),
        ("qd", "青岛", "Qingdao"),
        ("dl", "大连", "Dalian"),
        ("sy", "沈阳", "Shenyang"),
        ("cc", "长春", "Changchun"),
    ],
    "east": [
        ("sh", "上海", "Shanghai"),
        ("nj", "南京", "Nanjing"),
        ("hz", "杭州", "Hangzhou"),
        ("sz", "苏州", "Suzhou"),
        ("nb", "宁波", "Ningbo"),
        ("hf", "合肥", "Hefei"),
        ("fz", "福州", "Fuzhou"),
        ("xm", "厦门", "Xiamen"),
        ("nc", "南昌", "Nanchang"),
        ("wx", "无锡", "Wuxi"),
    ],
    "south": [
        ("gz", "广州", "Guangzhou"),
        ("shz", "深圳", "Shenzhen"),
        ("fs", "佛山", "Foshan"),
        ("dg", "东莞", "Dongguan"),
        ("zh", "珠海", "Zhuhai"),
        ("nn", "南宁", "Nanning"),
        ("hk", "海口", "Haikou"),
        ("cs", "长沙", "Changsha"),
        ("wh", "武汉", "Wuhan"),
        ("km", "昆明", "Kunming"),
    ],
}
DISTRICTS = ("中心", "东城", "西城", "南湖", "北苑", "新区", "高新", "滨江", "开发区", "站前", "大学城", "港口")
CHANNELS = ("kiosk", "app", "call_centre", "survey", "web")
POSITIVE = {
    "zh": [
        "柜员态度很好，办理很快。",
        "服务热情周到，点赞！",
        "环境整洁，等候时间短，很满意。",
        "工作人员很专业，解答耐心。",
    ],
    "en": ["Friendly staff and a quick visit.", "Great service, thank you!", "Clean branch and no queue, very happy."],
}
NEGATIVE = {
    "zh": [
        "排队太久了，等了一个小时。",
        "柜员态度很差，很不耐烦。",
        "系统又坏了，白跑一趟。",
        "只开了一个窗口，效率太低。",
    ],
    "en": [
        "Waited over an hour, terrible.",
        "The clerk was rude and unhelpful.",
        "The system was down again, wasted trip.",
    ],
}
COMPLAINT_CATEGORIES = ("waiting_time", "attitude", "system_outage", "fees", "environment")
AUDIT_ITEMS = ("greeting", "queue_management", "product_knowledge", "cleanliness", "farewell")
# Feedback per hour of the day (branches open 9–17, busiest late morning) and per weekday (Mon=0).
HOURLY = (0, 0, 0, 0, 0, 0, 0, 1, 3, 8, 10, 9, 6, 7, 8, 7, 5, 2, 1, 0, 0, 0, 0, 0)
WEEKLY = (1.0, 0.9, 0.9, 0.95, 1.1, 0.6, 0.4)


@dataclass(frozen=True)
class Unit:
    """One unit of the demo tree."""

    id: str
    name: str
    kind: Literal["region", "city", "branch"]
    parent_id: str | None
    name_en: str

    def as_import_row(self) -> dict[str, Any]:
        """The unit as the units import endpoint takes it."""
        row: dict[str, Any] = {"id": self.id, "name": self.name, "kind": self.kind}
        if self.parent_id:
            row["parent_id"] = self.parent_id
        return row


@dataclass
class Incident:
    """From ``start`` on, the units under ``scope`` change: quality falls (or slides), complaints burst."""

    kind: Literal["collapse", "drift", "complaint_burst", "recovery"]
    scope: str
    start: datetime
    quality: float = 0.2
    per_hour: float = 0.0


@dataclass
class Organisation:
    """The demo tree, each branch's underlying quality and the incidents planned."""

    units: list[Unit]
    quality: dict[str, float]
    paths: dict[str, str]
    incidents: list[Incident] = field(default_factory=list)

    @property
    def branches(self) -> list[Unit]:
        """The leaves of the tree, where feedback is given."""
        return [u for u in self.units if u.kind == "branch"]

    def quality_at(self, branch: str, moment: datetime) -> float:
        """The branch's chance of a satisfied customer at ``moment``, incidents applied."""
        quality = self.quality[branch]
        path = self.paths[branch]
        for incident in self.incidents:
            if moment < incident.start or not (path == incident.scope or path.startswith(incident.scope + "/")):
                continue
            if incident.kind == "collapse":
                quality = incident.quality
            elif incident.kind == "drift":
                hours = (moment - incident.start).total_seconds() / 3600
                quality = max(incident.quality, quality - 0.02 * hours)
            elif incident.kind == "recovery":
                quality = incident.quality
        return quality


def build_organisation(
    *, regions: int = 3, cities_per_region: int = 10, branches: int = 1000, seed: int = 1
) -> Organisation:
    """A tree of regions, cities and branches (Chinese names, English ones beside), with their qualities."""
    rng = random.Random(seed)
    units: list[Unit] = []
    paths: dict[str, str] = {}
    cities: list[Unit] = []
    for region_id, zh, en in REGIONS[:regions]:
        units.append(Unit(region_id, zh, "region", None, en))
        paths[region_id] = region_id
        for city_id, city_zh, city_en in CITIES[region_id][:cities_per_region]:
            city = Unit(f"{region_id}-{city_id}", f"{city_zh}市", "city", region_id, city_en)
            units.append(city)
            cities.append(city)
            paths[city.id] = f"{region_id}/{city.id}"
    quality: dict[str, float] = {}
    for index in range(branches):
        city = cities[index % len(cities)]
        district = DISTRICTS[(index // len(cities)) % len(DISTRICTS)]
        number = index // len(cities) + 1
        branch = Unit(
            f"{city.id}-b{number:03d}",
            f"{city.name.removesuffix('市')}{district}支行{number}",
            "branch",
            city.id,
            f"{city.name_en} branch {number}",
        )
        units.append(branch)
        paths[branch.id] = f"{paths[city.id]}/{branch.id}"
        quality[branch.id] = min(0.97, max(0.55, rng.gauss(0.85, 0.06)))
    return Organisation(units, quality, paths)


def feedback_stream(
    org: Organisation, *, start: datetime, hours: float, per_hour: float, seed: int = 2
) -> Iterator[dict[str, Any]]:
    """Feedback bodies (as the REST API takes them), in time order, ``per_hour`` on average over the tree."""
    rng = random.Random(seed)
    branches = org.branches
    moment = start
    end = start + timedelta(hours=hours)
    while moment < end:
        weight = HOURLY[moment.hour] / max(HOURLY) * WEEKLY[moment.weekday()]
        count = _poisson(rng, per_hour / 60 * weight * 2)
        for _ in range(count):
            branch = rng.choice(branches)
            yield one_feedback(org, branch.id, moment + timedelta(seconds=rng.uniform(0, 60)), rng)
        for incident in org.incidents:
            if incident.kind == "complaint_burst" and moment >= incident.start:
                for _ in range(_poisson(rng, incident.per_hour / 60)):
                    yield complaint(incident.scope.rsplit("/", 1)[-1], moment, rng, severity="serious")
        moment += timedelta(minutes=1)


def one_feedback(org: Organisation, branch: str, moment: datetime, rng: random.Random) -> dict[str, Any]:
    """One customer's feedback at a branch: ratings from its quality, sometimes a comment or an audit."""
    quality = org.quality_at(branch, moment)
    happy = rng.random() < quality
    language = "zh" if rng.random() < 0.8 else "en"
    body: dict[str, Any] = {
        "unit_id": branch,
        "channel": rng.choice(CHANNELS),
        "occurred_at": moment.isoformat(),
        "ratings": {
            "csat": rng.choice((4, 5)) if happy else rng.choice((1, 2, 3)),
            "nps": rng.randint(8, 10) if happy else rng.randint(0, 6),
            "ces": rng.randint(1, 3) if happy else rng.randint(4, 7),
            "dimensions": {"speed": 5 if happy else rng.randint(1, 3), "attitude": 5 if happy else rng.randint(1, 3)},
        },
    }
    if rng.random() < 0.3:
        body["comment"] = rng.choice((POSITIVE if happy else NEGATIVE)[language])
    if not happy and rng.random() < 0.05:
        return {**complaint(branch, moment, rng), "occurred_at": moment.isoformat()}
    if rng.random() < 0.01:
        body.update(audit(branch, moment, quality, rng))
    return body


def complaint(branch: str, moment: datetime, rng: random.Random, *, severity: str | None = None) -> dict[str, Any]:
    """A complaint (投诉) at a branch."""
    return {
        "unit_id": branch,
        "channel": "call_centre",
        "kind": "complaint",
        "occurred_at": moment.isoformat(),
        "comment": rng.choice(NEGATIVE["zh"]),
        "complaint": {
            "category": rng.choice(COMPLAINT_CATEGORIES),
            "severity": severity or rng.choice(("minor", "moderate", "moderate", "serious")),
        },
        "ratings": {"csat": 1},
    }


def audit(branch: str, moment: datetime, quality: float, rng: random.Random) -> dict[str, Any]:
    """A mystery-shopper visit (神秘顾客): each checklist item scored out of 10, around the branch's quality."""
    items = [
        {"item": item, "score": round(min(10.0, max(0.0, rng.gauss(quality * 10, 1.5))), 1), "max_score": 10}
        for item in AUDIT_ITEMS
    ]
    return {
        "kind": "audit",
        "channel": "in_branch",
        "audit": {"visit_date": moment.date().isoformat(), "checklist": items},
    }


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth's method; means here are small)."""
    if mean <= 0:
        return 0
    limit, product, count = pow(2.718281828459045, -mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count
