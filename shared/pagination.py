"""Cursor pagination that costs the page, not the collection; and reads of one document.

Why (measured on the embedded SecantusDB, 2 cores shared, a feedback-shaped collection of 20,000 and
200,000 documents across 1,000 branches; medians of 3-7 runs, the machine busy with other work):

=====================================================================  ==========  ==========
query (a page of 50)                                                   20,000      200,000
=====================================================================  ==========  ==========
range on a field with its own index, BOUNDED both ends (50 inside)     8-10 ms     8 ms
the same range, open at one end, ``.limit(51)`` without sort           330-760 ms  8.5 s
the same with ``.sort().limit(51)``                                    0.5-1.1 s   6.5 s
the bounded range with ``.hint()`` (hint makes it walk the index)      2.1-2.5 s   15.7 s
bounded range on ``_id`` (``_id`` ranges scan)                         1.1-1.9 s   15.6 s
multikey string keys ``org|scope|time|id``, bounded window of 50       7-17 ms     8-9 ms
  the same plus a residual field (``channel``), key clause first       9-15 ms     11 ms
  an empty window (a probe)                                            2-3 ms      4 ms
a top-level ``$and`` (or ``$or``, or ``$in`` on the scope)             2.8-3.9 s   24 s (scan)
the old list: ``{org, lineage: region}`` sorted on ``_id``, limit 51   280-350 ms  890 ms
the old list, page 2: ``$and[{org}, {_id > cursor}]``                  1.4-1.6 s   16.8 s
compound ``(org, scopes, time)`` bounded: alone / plus any residual    10 ms       -- / scan
``count_documents`` on a bounded key window of 50                      8-10 ms     6 ms
``estimated_document_count``                                           280-460 ms  7.9 s
a bounded window of 500 / 5,000 documents                              38-65 ms /  156 ms /
                                                                       345-600 ms  1.4 s
=====================================================================  ==========  ==========

So this server answers a query by reading every index entry its range covers (a limit never stops it
early), a compound index serves only filters made of its own fields, and any ``$``-operator at the top
of a filter scans. What costs the page alone: a range bounded at both ends, about a page wide, on a
single-field index, listed first in the filter; residual fields after it are checked on what it read.
The same query is an ordinary bounded index range on MongoDB.

The scheme (``keyset_page``):

- Every listed document carries ``page_keys``: one string per scope it is listed under,
  ``<org> US <scope> US <time> US <id>`` (``page_keys(...)``), where the scopes are ``*`` (the whole
  organisation) and every path of the document's unit lineage (``list_scopes(lineage)``), or just
  ``*`` for lists with no unit. ``<time>`` is the list's order (fixed-width UTC to the millisecond,
  then the nanoseconds of the id's own clock within it, so that a batch sharing one time still spreads
  over keys a window can split) and ``<id>`` breaks what ties remain. Declare ``page_keys_index()``
  (a single-field multikey index on ``page_keys``) in the service's indexes. On this server one index
  with five entries a document cost intake the same as the old ``(org, lineage, _id)`` index (about
  970 against 910 documents a second in batches of 100); a second such index halves it, so a list
  should replace its old scope index rather than add one.
- A page reads windows of time, newest first (or oldest first from a given ``since``: growing windows
  up from 1970 would meet the first items with a window as wide as the empty years below them), one
  bounded range per visible scope (the caller's subtrees, narrowed to a requested unit). A window that
  read nothing grows 32-fold (an empty window is one probe, 2-4 ms, whatever its width); a sparse one
  grows toward a page's worth; the cursor carries the last key and the width that held the page, so
  the next page reads about a page. Per list, scopes and filter the process also remembers where a
  first page found its items and the width there: later first pages start at now with that width,
  and a window grown over a quiet stretch stops at that position instead of swallowing what lies
  behind it (a cold first page behind a quiet stretch may read one burst whole, once). A time-range
  filter (``since``/``until``)
  bounds the windows themselves. Any other filter (channel, kind, state, level, topic...) is a
  ``match`` of plain field conditions (equality, ``$in``, ``$all``, ranges, ``$type: "string"``),
  checked here on what a window read (``matches``), so the database query is the key range alone and
  costs the same on this server and on MongoDB. A filter multiplies the reading by one over its
  selectivity, within the budget below; a filter that is both common and very selective deserves
  scopes of its own (e.g. ``f"{unit}#{state}"`` keys for open alerts). The one case a window reads
  more than a page: a burst of items right behind a long empty stretch (the window grew over the gap);
  it then reads that burst once, bounded by the scope's density, not the collection.
- A request reads at most ``scan_budget`` documents and a fixed number of windows; when it stops
  early the page may hold fewer items than ``limit`` (even none) with a ``next_cursor`` to go on: keep
  following ``next_cursor`` until it is null. Items erased between pages simply are not there; items
  that arrive after a cursor's position are not in that walk (newest first: they are newer than page
  one); every item present throughout is returned exactly once.
- No counts: a total would read every match. Where a list needs a figure, pre-aggregate it when
  writing, or count a bounded window.
- A unit move rewrites the moved unit's documents' keys (``moved_page_keys`` in an update pipeline).
- Configuration set on a subtree (rules, silences, channels, matrix entries, plans, risks) is keyed
  with ``scope_page_keys``: under the paths down to its scope, as a unit's documents are, and under
  ``<scope>#on`` too, so that ``overlapping_scopes`` also lists what was set on a unit above the caller.
- Every list pages this way: no ``_id`` order, no ``$and``/``$or`` query behind any list endpoint.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from pymongo import ASCENDING, IndexModel, UpdateOne

from shared.problems import NotFound, Problem
from shared.storage import Database, Document
from shared.tree import WHOLE_ORGANISATION, in_subtree, lineage

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PAGE_KEYS = "page_keys"
KEY_SEPARATOR = "\x1f"
_ESCAPE = "\x1e"
_TOP = "\x7f"  # above every key suffix: suffixes start with a digit of the year
FLOOR = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_WINDOW = timedelta(seconds=1)
MIN_WINDOW = timedelta(microseconds=1)
MAX_WINDOW = timedelta(days=366 * 100)
CEILING = datetime(9999, 1, 1, tzinfo=UTC) - MAX_WINDOW  # a window added to any bound still fits a datetime
EMPTY_GROWTH = 32
MAX_WINDOWS = 24
TIME_WIDTH = len("2026-01-01T00:00:00.000000000Z")
WINDOW_HINTS_KEPT = 10_000
SCAN_PAGES = 10  # a request reads at most this many pages' worth of documents


class Page(BaseModel):
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _escape(part: str) -> str:
    return part.replace(_ESCAPE, _ESCAPE + "e").replace(KEY_SEPARATOR, _ESCAPE + "s")


def time_text(moment: datetime, sub_millisecond_ns: int | None = None) -> str:
    """A moment as fixed-width UTC text: to the millisecond, then nanoseconds within it (naive: UTC).

    The database keeps datetimes to the millisecond; the nanoseconds within it come from the caller
    (``page_keys``: the id's clock), so that documents sharing a millisecond (a batch posted without
    times, an import of units) still spread over distinct keys that a window can split.
    """
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    sub = sub_millisecond_ns if sub_millisecond_ns is not None else moment.microsecond % 1000 * 1000
    # The year is padded here: strftime's %Y does not pad years before 1000 on glibc.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}{sub:06d}Z"


def _parse_time(text: str) -> datetime:
    seconds = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return seconds + timedelta(microseconds=int(text[20:23]) * 1000 + int(text[23:29]) // 1000)


def _id_nanoseconds(ident: str) -> int | None:
    """The sub-millisecond nanoseconds of a ``shared.ids.new_id`` (``<prefix>_<16 hex of ns><random>``)."""
    clock = ident.partition("_")[2][:16]
    try:
        return int(clock, 16) % 1_000_000 if len(clock) == 16 else None
    except ValueError:
        return None


def key_prefix(org: str, scope: str) -> str:
    """The part of every page key of ``org`` listed under ``scope``."""
    return f"{_escape(org)}{KEY_SEPARATOR}{_escape(scope)}{KEY_SEPARATOR}"


def list_scopes(lineage: Iterable[str]) -> list[str]:
    """The scopes a document of a unit with this lineage is listed under: the organisation and each path."""
    return [WHOLE_ORGANISATION, *lineage]


def page_keys(org: str, scopes: Iterable[str], at: datetime, ident: str) -> list[str]:
    """The ``page_keys`` of a document listed at ``at`` (its order, to the ms; then its id's clock) under ``scopes``."""
    suffix = f"{time_text(at, _id_nanoseconds(ident))}{KEY_SEPARATOR}{_escape(ident)}"
    return [key_prefix(org, scope) + suffix for scope in scopes]


def exact_scope(scope: str) -> str:
    """The list scope of the documents set on ``scope`` itself (unit ids hold no ``#``)."""
    return f"{scope}#on"


def scope_page_keys(org: str, scope: str, at: datetime, ident: str) -> list[str]:
    """The keys of a document set on a subtree (``scope``: a unit path or ``*``), such as a rule or an entry.

    It is listed under the organisation and every path down to its scope (for callers above or at it),
    and under its exact scope (``overlapping_scopes``: for callers below it, whom it concerns too).
    """
    paths = [] if scope == WHOLE_ORGANISATION else lineage(scope)
    return page_keys(org, dict.fromkeys([*list_scopes(paths), exact_scope(scope)]), at, ident)


def overlapping_scopes(principal_scopes: Iterable[str]) -> list[str]:
    """The scopes to list what concerns a caller: documents set inside their subtrees or on a unit above them."""
    inside = visible_scopes(principal_scopes)
    if inside == [WHOLE_ORGANISATION]:
        return inside
    above = {WHOLE_ORGANISATION, *(path for scope in inside for path in lineage(scope)[:-1])}
    return [*inside, *(exact_scope(path) for path in sorted(above))]


def page_keys_index(field: str = PAGE_KEYS) -> IndexModel:
    """The index a keyed list needs: its keys alone (a compound index would not serve residual filters)."""
    return IndexModel([(field, ASCENDING)])


def moved_page_keys(org: str, scopes: Sequence[str], field: str = PAGE_KEYS) -> dict[str, Any]:
    """An update-pipeline expression: the document's keys rebuilt under new ``scopes`` (a unit move)."""
    skip = len(key_prefix(org, WHOLE_ORGANISATION))
    # Every key of a document ends with the same suffix; the organisation-wide key is the first.
    suffix = {"$substrCP": [{"$arrayElemAt": [f"${field}", 0]}, skip, 1000]}
    return {"$map": {"input": [key_prefix(org, s) for s in scopes], "as": "p", "in": {"$concat": ["$$p", suffix]}}}


def visible_scopes(principal_scopes: Iterable[str], unit_path: str | None = None) -> list[str]:
    """The scopes to list: the caller's subtrees (nested ones folded), narrowed to ``unit_path`` if given."""
    scopes = sorted(set(principal_scopes))
    if WHOLE_ORGANISATION in scopes:
        scopes = [WHOLE_ORGANISATION]
    outer = [s for s in scopes if not any(o != s and in_subtree(s, o) for o in scopes)]
    if unit_path is None:
        return outer
    if any(in_subtree(unit_path, s) for s in outer):
        return [unit_path]
    return [s for s in outer if in_subtree(s, unit_path)]


def _within_range(moment: datetime | None) -> datetime | None:
    """A time bound moved into the years a walk can step through (a far year would overflow its windows)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return min(max(moment, FLOOR), CEILING)


@dataclass
class _Walk:
    """Where a keyset walk stands: the exclusive bound it continues from, and its window width."""

    position: str | None  # a key suffix or a time text; None: the start (now, or the floor)
    window: timedelta


def _encode(walk: _Walk) -> str:
    raw = json.dumps({"p": walk.position, "w": walk.window.total_seconds()})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode(cursor: str) -> _Walk:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position, window = state["p"], timedelta(seconds=float(state["w"]))
        if not isinstance(position, str):
            raise ValueError("no position")
        _parse_time(position)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise Problem(400, "Invalid cursor", "pass back the next_cursor of a previous page") from error
    return _Walk(position, min(max(window, MIN_WINDOW), MAX_WINDOW))


# Per list, scopes and filter, in this process: the newest position a first page found and the width that
# held a page there. Later first pages start at now with that width, and a window grown over a quiet
# stretch stops at that position, instead of swallowing the items behind the stretch at once.
_WINDOW_HINTS: OrderedDict[tuple[str, str, tuple[str, ...]], tuple[datetime | None, timedelta]] = OrderedDict()


def _remember_window(key: tuple[str, str, tuple[str, ...]], window: timedelta, top: datetime | None = None) -> None:
    _WINDOW_HINTS[key] = (top, window)
    _WINDOW_HINTS.move_to_end(key)
    if len(_WINDOW_HINTS) > WINDOW_HINTS_KEPT:
        _WINDOW_HINTS.popitem(last=False)


def _suffix(document: Document, field: str) -> str:
    return str(document[field][0]).split(KEY_SEPARATOR, 2)[2]


def _next_window(window: timedelta, *, read: int, limit: int) -> timedelta:
    """The width likely to read about a page, after ``window`` read ``read`` documents."""
    growth = EMPTY_GROWTH if read == 0 else min(EMPTY_GROWTH, max(1.0, limit / read))
    return min(max(window * growth, MIN_WINDOW), MAX_WINDOW)


async def keyset_page(
    db: Database,
    collection: str,
    *,
    org: str,
    scopes: Sequence[str],
    cursor: str | None,
    limit: int,
    match: dict[str, Any] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    newest_first: bool = True,
    view: Callable[[Document], dict[str, Any]] | None = None,
    field: str = PAGE_KEYS,
    scan_budget: int | None = None,
) -> Page:
    """One page of the documents keyed under any of ``scopes`` that match ``match``, in key order.

    ``since``/``until`` bound the order time (inclusive/exclusive); ``match`` holds plain field
    conditions, checked on each window. Reads at most ``scan_budget`` documents (default ten pages),
    never the collection.
    """
    if not newest_first and since is None:
        # Growing windows up from the floor would reach the first items with a window as wide as the
        # empty years below them, and read them all: an oldest-first walk starts from a known time.
        raise ValueError("an oldest-first walk needs since (e.g. the list's creation time)")
    shown = view or public_view
    since, until = _within_range(since), _within_range(until)
    rows = await _keyset_rows(
        db,
        collection,
        org=org,
        scopes=sorted(set(scopes)),
        walk=_decode(cursor) if cursor else None,
        limit=limit,
        match=match or {},
        since=since,
        until=until,
        newest_first=newest_first,
        field=field,
        scan_budget=scan_budget if scan_budget is not None else SCAN_PAGES * limit,
    )
    return Page(items=[shown(row) for row in rows[0]], next_cursor=_encode(rows[1]) if rows[1] else None)


async def _keyset_rows(
    db: Database,
    collection: str,
    *,
    org: str,
    scopes: list[str],
    walk: _Walk | None,
    limit: int,
    match: dict[str, Any],
    since: datetime | None,
    until: datetime | None,
    newest_first: bool,
    field: str,
    scan_budget: int,
) -> tuple[list[Document], _Walk | None]:
    # Per filter too: a rare filter's newest match may be old, and the first window reads all above it.
    hint_key = (db.name, collection, (*scopes, repr(sorted(match.items())), repr(since)))
    now = datetime.now(UTC)
    first_page = walk is None and newest_first and until is None
    hinted_top, hinted_window = _WINDOW_HINTS.get(hint_key, (None, FIRST_WINDOW))
    if walk is None:
        start = until if newest_first else since
        walk = _Walk(time_text(start) if start else None, hinted_window)
    if not scopes:
        return [], None
    floor, ceiling = since or FLOOR, until
    found: list[Document] = []
    read = 0
    for _ in range(MAX_WINDOWS):
        at = _parse_time(walk.position) if walk.position else (now if newest_first else floor)
        if newest_first:
            edge = max(at - walk.window, floor)
            if hinted_top is not None and at > hinted_top and edge < hinted_top - hinted_window:
                # A window grown over a quiet stretch stops where a page was found last time, so it
                # meets the items there with a page-sized window rather than swallowing them all.
                edge = max(hinted_top - hinted_window, floor)
            last = edge <= floor
            low, high = time_text(edge) if not last or since else "", walk.position or _TOP
        else:
            edge = at + walk.window
            last = (ceiling is not None and edge >= ceiling) or (ceiling is None and edge >= now)
            high = time_text(ceiling) if ceiling and last else (_TOP if last else time_text(edge))
            low = walk.position or ""
        window_read = await _read_window(db, collection, org, scopes, low, high, field)
        read += len(window_read)
        window_rows = [row for row in window_read if matches(row, match)]
        window_rows.sort(key=lambda d: _suffix(d, field), reverse=newest_first)
        wanted = limit - len(found)
        if len(window_rows) > wanted:
            found.extend(window_rows[:wanted])
            # The span that held this page's share of the window's items: exact for a burst.
            span = abs(_parse_time(_suffix(window_rows[0], field)) - _parse_time(_suffix(found[-1], field)))
            fitted = min(max(span * limit / wanted, MIN_WINDOW), MAX_WINDOW)
            if first_page:
                _remember_window(hint_key, fitted, _parse_time(_suffix(found[0], field)))
            return found, _Walk(_suffix(found[-1], field), fitted)
        found.extend(window_rows)
        if last:
            return found, None
        walk = _Walk(time_text(edge), _next_window(walk.window, read=len(window_read), limit=limit))
        if len(found) == limit or read >= scan_budget:
            break
    return found, walk


async def _read_window(
    db: Database,
    collection: str,
    org: str,
    scopes: Sequence[str],
    low: str,
    high: str,
    field: str,
    projection: dict[str, Any] | None = None,
) -> list[Document]:
    """The documents with a key strictly between ``low`` and ``high`` (suffixes) under any scope, once each."""
    rows: dict[Any, Document] = {}
    for scope in scopes:
        prefix = key_prefix(org, scope)
        keys = {field: {"$gt": prefix + low, "$lt": prefix + high}}
        for document in await db[collection].find(keys, projection).to_list(None):
            rows[document["_id"]] = document
    return list(rows.values())


async def keyed_in_window(
    db: Database,
    collection: str,
    *,
    org: str,
    scopes: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    projection: dict[str, Any] | None = None,
    field: str = PAGE_KEYS,
) -> list[Document]:
    """Every document keyed under any of ``scopes`` with its order time in [since, until), once each.

    For figures over a bounded stretch (counts): the key ranges alone, so the read costs what the
    stretch holds, never the collection. The caller bounds the stretch (or the scope, e.g. open alerts).
    """
    since, until = _within_range(since), _within_range(until)
    low = time_text(since) if since else ""
    high = time_text(until) if until else _TOP
    return await _read_window(db, collection, org, sorted(set(scopes)), low, high, field, projection)


def _value(document: Document, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _holds(value: Any, condition: Any) -> bool:
    """One field condition, as MongoDB reads it for the operators lists use."""
    if not isinstance(condition, dict):
        return value == condition or (isinstance(value, list) and condition in value)
    for operator, operand in condition.items():
        if operator == "$in":
            candidates = value if isinstance(value, list) else [value]
            if not any(c in operand for c in candidates):
                return False
        elif operator == "$all":
            if not isinstance(value, list) or not all(o in value for o in operand):
                return False
        elif operator == "$type":
            if operand != "string":
                raise ValueError(f"$type {operand!r} is not supported in a keyset match")
            if not isinstance(value, str):
                return False
        elif operator in _COMPARISONS:
            if value is None or isinstance(value, list) or not _COMPARISONS[operator](value, operand):
                return False
        else:
            raise ValueError(f"{operator} is not supported in a keyset match")
    return True


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$ne": lambda a, b: a != b,
}


def matches(document: Document, match: dict[str, Any]) -> bool:
    """Whether a document meets every plain field condition of ``match`` (eq, $in, $all, ranges, $type string)."""
    return all(_holds(_value(document, path), condition) for path, condition in match.items())


async def backfill_page_keys(
    db: Database, collection: str, keys_of: Callable[[Document], list[str]], *, field: str = PAGE_KEYS
) -> int:
    """Give every document of ``collection`` without ``field`` its keys; how many were given (a scan)."""
    done = 0
    batch: list[UpdateOne] = []
    async for document in db[collection].find({field: {"$exists": False}}, batch_size=1000):
        batch.append(UpdateOne({"_id": document["_id"]}, {"$set": {field: keys_of(document)}}))
        if len(batch) == 1000:
            done += (await db[collection].bulk_write(batch, ordered=False)).modified_count
            batch = []
    if batch:
        done += (await db[collection].bulk_write(batch, ordered=False)).modified_count
    return done


async def find_or_404(db: Database, collection: str, query: dict[str, Any], *, kind: str, ident: str) -> dict[str, Any]:
    """The document matching ``query`` (which carries the caller's tenancy), or a 404 as for a missing one."""
    document = await db[collection].find_one(query)
    if document is None:
        raise NotFound(kind, ident)
    return document


HIDDEN_FIELDS = ("_id", "org", "lineage", PAGE_KEYS)


def public_view(document: dict[str, Any]) -> dict[str, Any]:
    """A stored document as an API shows it: ``_id`` as ``id``, without the tenancy and paging fields."""
    return {"id": document["_id"], **{k: v for k, v in document.items() if k not in HIDDEN_FIELDS}}
