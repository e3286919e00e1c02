#!/usr/bin/env python3
"""Independent reference implementation of leadscore's scoring contract.

This file implements /work/shared/SCORING.md sections 2-6 (the model,
engagement with decay, time limits, duplicates, qualification) directly from
the text of the contract, without looking at the Go code, so that integration
tests can cross-check the Go pipeline against it. It favours obviousness over
speed.

Usage:

    python3 bench/reference/scoring_ref.py --model FILE.yaml \\
        --input touchpoints.jsonl [--now-ms N] > expected.jsonl

Input: JSON lines {"partition": int, "offset": int, "key": str, "value": V}
where V is the canonical touchpoint JSON object of SCORING.md 1 (or a string
holding its JSON text). Lines are processed in the order given.

Output: JSON lines, in processing order:

    {"lead_id", "sequence", "trigger_event_id", "score", "fit", "qualified_at_ms"}
        one per MQL event;
    {"dead_letter": reason, "partition", "offset"}
        one per touchpoint that would be dead-lettered;
    {"duplicate": true, "partition", "offset"}
        one per duplicate delivery;

and at the end, sorted by lead id, one line per lead that has state:

    {"final": true, "lead", "e_ref", "t_ref", "fit", "armed", "mql_count"}

DECISIONS
=========
Where SCORING.md leaves room, this implementation decides as follows (the Go
side should match, or the difference should be known):

D1  Lead identity. A touchpoint's lead is its value's `lead_id` when that is
    a non-empty string, else its `anonymous_id`. The record key is not used.
D2  Validation, in this order, each failure dead-lettered with the reason:
      invalid_json   the value is not a JSON object (or not valid JSON text);
      bad_field      a known field has the wrong JSON type: event_id, lead_id,
                     anonymous_id, account_id, type, channel, campaign must be
                     strings (null counts as absent); properties and traits
                     must be objects (null counts as absent);
      missing_field  event_id or type absent or "", or neither lead_id nor
                     anonymous_id set, or occurred_at absent/null;
      too_long       event_id over 128 bytes, lead_id or anonymous_id over
                     256 bytes (UTF-8);
      bad_time       occurred_at is neither an RFC 3339 string nor an integer
                     JSON number (epoch milliseconds);
      future         occurred_at > now + max_future_skew (strictly more);
      too_late       the lead has state and occurred_at < t_ref - max_lateness
                     (strictly more than max_lateness before t_ref).
    No record-size limit is applied (the reference gets decoded values).
D3  RFC 3339: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)", upper-case T
    and Z only (as Go's time.RFC3339 layout), seconds 00-59. Fractions of a
    millisecond are truncated (toward the past for times after 1970). Epoch
    milliseconds must be a JSON integer (no fraction, no exponent); a string
    of digits is bad_time.
D4  Check order: decode/validate, future, too_late, duplicate, apply. So a
    re-delivery that has become too late is dead-lettered as too_late, not
    reported as a duplicate. Dead-lettered and duplicate deliveries change
    no state: no traits, no t_ref, no dedupe entry, no re-arming.
D5  Duplicates: a delivery is a duplicate when the same lead already had a
    delivery of the same event_id APPLIED, whose event time t_first is
    within dedupe_window of this delivery's event time:
    |t - t_first| <= dedupe_window. The lead's clock (t_ref) plays no part:
    a re-delivery with the same occurred_at is a duplicate for as long as it
    is not too_late (7 days by default), beyond the guaranteed 24 hours. The
    first applied delivery stays the reference: a delivery outside the window
    is applied, and does not replace t_first.
D6  Every accepted touchpoint is applied, with 0 points when no rule matches
    or the cap is used up: it moves t_ref forward (when later), its traits
    update the lead's fit, and qualification is checked after it.
D7  Rule matching: type equal; channel and campaign, when the rule sets them,
    equal to the touchpoint's (a touchpoint without the field does not
    match); each property present with a scalar value whose string form the
    glob matches. Specificity = 1 + (channel set) + (campaign set) + number
    of properties; the most specific wins; ties go to the first in the file.
D8  Globs match UTF-8 bytes, case-sensitively: '*' any run of bytes ('/'
    included), '?' exactly one byte (models/model.go says "byte"; for ASCII
    this is one character). No escapes, no classes.
D9  String form of JSON scalars (properties and traits): strings as they
    are; numbers exactly as written in the JSON text ("1e3" stays "1e3",
    "250.0" stays "250.0"); true/false as "true"/"false". null, objects and
    arrays are not scalars: such a property counts as absent, such a trait
    is ignored (it neither sets nor clears the stored value).
D10 Caps: per rule, per lead, per UTC day of the touchpoint's event time
    (day = floor(t_ms / 86400000)), in processing order, positive points only:
    applied = max(0, min(points, cap - used)); used += applied. Negative
    points are never capped and do not give cap back.
D11 Fit: the lead keeps the latest processed (D4) string value of each trait;
    fit = sum of the points of every fit rule that matches its trait's
    value (all matching fit rules add, not only the most specific). equals:
    any listed value equal ignoring case (Python str.lower() on both sides);
    glob: D8, case-sensitive; min/max: the value is a finite decimal number
    (optional sign, digits, optional fraction, optional exponent; no hex,
    no '_', no spaces, no inf/nan) and min <= x < max. Fit is 0 for a lead
    without matching traits.
D12 Decay: SCORING.md 3 literally, in float64, times in integer ms, H in ms
    as a float (half_life's nanoseconds / 1e6):
      first touchpoint: E_ref = p, t_ref = t;
      t >= t_ref: E_ref = E_ref * 2**(-(t - t_ref) / H) + p, t_ref = t;
      t <  t_ref: E_ref = E_ref + p * 2**(-(t_ref - t) / H).
D13 Re-arming (before applying an accepted touchpoint at t): a disarmed lead
    is armed when E_ref * 2**(-(max(t, t_ref) - t_ref) / H) < rearm
    (strictly below).
D14 Qualification (after applying the touchpoint at t): armed and
    E_ref >= mql (E_ref as it stands at t_ref, not decayed to t) and
    (fit_min unset or fit >= fit_min) and cooldown passed. Cooldown passed:
    no earlier MQL, or cooldown is 0, or t - qualified_at_ms(last MQL) >=
    cooldown, using the trigger touchpoint's own event time t (so a late
    touchpoint may fail the cooldown). Then one MQL: sequence = previous + 1,
    qualified_at_ms = t, score = E_ref, fit = the lead's fit; disarm.
D15 Model YAML: the schema of package models (durations with a 'd' unit of
    24 h; defaults half_life 14d, max_lateness 7d, max_future_skew 5m,
    dedupe_window 24h, top_contributors 5, rearm mql/2, cooldown 0). Scalars
    are read as written (YAML 1.2 style: "NO" is a string, not false).
    Validation here is basic (required keys, unknown keys, types); package
    models is the strict validator.
D16 --now-ms defaults to the wall clock; cross-checks must pass it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable, Iterator

import yaml

MS_PER_DAY = 86_400_000
NS_PER_MS = 1_000_000

# ---------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------

_UNIT_NS = {
    "ns": Decimal(1),
    "us": Decimal(1_000),
    "µs": Decimal(1_000),  # U+00B5 micro sign
    "μs": Decimal(1_000),  # U+03BC greek mu
    "ms": Decimal(1_000_000),
    "s": Decimal(1_000_000_000),
    "m": Decimal(60_000_000_000),
    "h": Decimal(3_600_000_000_000),
    "d": Decimal(86_400_000_000_000),
}
_DUR_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_duration_ns(text: str) -> int:
    """Parses a model duration (Go syntax plus 'd' = 24 h) to nanoseconds."""
    s = text.strip() if isinstance(text, str) else str(text)
    if s in ("0", "+0", "-0"):
        return 0
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = Decimal(0)
    pos = 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r}")
        total += Decimal(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return sign * int(total)  # int() truncates fractional nanoseconds


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Rule:
    name: str
    type: str
    channel: str | None
    campaign: str | None
    properties: list[tuple[str, str]]  # file order
    points: float
    cap: float  # 0 = no cap

    @property
    def specificity(self) -> int:
        return 1 + (self.channel is not None) + (self.campaign is not None) + len(self.properties)


@dataclasses.dataclass
class FitRule:
    name: str
    trait: str
    equals: list[str] | None
    glob: str | None
    min: float | None
    max: float | None
    points: float


@dataclasses.dataclass
class Model:
    name: str
    version: str
    half_life_ns: int
    max_lateness_ns: int
    max_future_skew_ns: int
    dedupe_window_ns: int
    top_contributors: int
    mql: float
    fit_min: float | None
    rearm: float
    cooldown_ns: int
    rules: list[Rule]
    fit: list[FitRule]


class ModelError(ValueError):
    pass


_TOP = {"name", "version", "half_life", "max_lateness", "max_future_skew", "dedupe_window",
        "top_contributors", "thresholds", "rules", "fit"}
_THRESH = {"mql", "fit_min", "rearm", "cooldown"}
_RULE = {"name", "type", "channel", "campaign", "properties", "points", "cap"}
_FIT = {"name", "trait", "equals", "glob", "min", "max", "points"}


def _num(v: Any, where: str) -> float:
    """Reads a number written as YAML text (BaseLoader keeps all scalars as
    strings), YAML 1.2 style: decimal, 0x hex, 0o octal."""
    if not isinstance(v, str):
        raise ModelError(f"{where}: must be a number, got {v!r}")
    s = v.replace("_", "")
    try:
        if re.fullmatch(r"[-+]?0x[0-9a-fA-F]+|[-+]?0o[0-7]+", s):
            return float(int(s, 0))
        if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", s):
            return float(s)
    except ValueError:
        pass
    raise ModelError(f"{where}: must be a finite number, got {v!r}")


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise ModelError(f"{where}: must be a string, got {v!r}")
    return v


def _map(v: Any, where: str, keys: set[str]) -> dict:
    if not isinstance(v, dict):
        raise ModelError(f"{where}: must be a mapping")
    unknown = set(v) - keys
    if unknown:
        raise ModelError(f"{where}: unknown keys {sorted(unknown)}")
    return v


def _dur(v: Any, where: str) -> int:
    try:
        return parse_duration_ns(_str(v, where))
    except ValueError as e:
        raise ModelError(f"{where}: {e}") from None


def _is_empty(v: Any) -> bool:
    # BaseLoader reads null (an empty value, "~", "null") as a string.
    return v is None or v in ("", "~", "null", "Null", "NULL")


def load_model_text(text: str) -> Model:
    # BaseLoader: every scalar as written, no YAML 1.1 surprises (NO, 1:30).
    doc = yaml.load(text, Loader=yaml.BaseLoader)
    top = _map(doc, "model", _TOP)
    for k in ("name", "version", "rules", "thresholds"):
        if k not in top:
            raise ModelError(f"{k}: required")
    th = _map(top["thresholds"], "thresholds", _THRESH)
    if "mql" not in th:
        raise ModelError("thresholds.mql: required")
    mql = _num(th["mql"], "thresholds.mql")
    rules: list[Rule] = []
    if not isinstance(top["rules"], list) or not top["rules"]:
        raise ModelError("rules: must be a non-empty list")
    for i, r in enumerate(top["rules"]):
        where = f"rules[{i}]"
        r = _map(r, where, _RULE)
        if "type" not in r or "points" not in r:
            raise ModelError(f"{where}: type and points are required")
        props: list[tuple[str, str]] = []
        if "properties" in r and not _is_empty(r["properties"]):
            pm = r["properties"]
            if not isinstance(pm, dict):
                raise ModelError(f"{where}.properties: must be a mapping")
            props = [(k, _str(g, f"{where}.properties.{k}")) for k, g in pm.items()]  # dict keeps file order
        rule = Rule(
            name="",
            type=_str(r["type"], where + ".type"),
            channel=_str(r["channel"], where + ".channel") if "channel" in r else None,
            campaign=_str(r["campaign"], where + ".campaign") if "campaign" in r else None,
            properties=props,
            points=_num(r["points"], where + ".points"),
            cap=_num(r["cap"], where + ".cap") if "cap" in r else 0.0,
        )
        if rule.cap < 0:
            raise ModelError(f"{where}.cap: must not be negative")
        if "name" in r:
            rule.name = _str(r["name"], where + ".name")
        else:
            rule.name = rule.type + "".join(
                [f"/channel={rule.channel}"] * (rule.channel is not None)
                + [f"/campaign={rule.campaign}"] * (rule.campaign is not None)
                + [f"/{k}={g}" for k, g in props])
        rules.append(rule)
    fits: list[FitRule] = []
    fit_list = top.get("fit")
    if not _is_empty(fit_list):
        if not isinstance(fit_list, list):
            raise ModelError("fit: must be a list")
        for i, f in enumerate(fit_list):
            where = f"fit[{i}]"
            f = _map(f, where, _FIT)
            if "trait" not in f or "points" not in f:
                raise ModelError(f"{where}: trait and points are required")
            equals = None
            if "equals" in f:
                if not isinstance(f["equals"], list) or not f["equals"]:
                    raise ModelError(f"{where}.equals: must be a non-empty list")
                equals = [_str(v, f"{where}.equals") for v in f["equals"]]
            fr = FitRule(
                name=_str(f.get("name", ""), where + ".name"),
                trait=_str(f["trait"], where + ".trait"),
                equals=equals,
                glob=_str(f["glob"], where + ".glob") if "glob" in f else None,
                min=_num(f["min"], where + ".min") if "min" in f else None,
                max=_num(f["max"], where + ".max") if "max" in f else None,
                points=_num(f["points"], where + ".points"),
            )
            kinds = (fr.equals is not None) + (fr.glob is not None) + (fr.min is not None or fr.max is not None)
            if kinds != 1:
                raise ModelError(f"{where}: set exactly one of equals, glob, min/max")
            fits.append(fr)
    model = Model(
        name=_str(top["name"], "name"),
        version=_str(top["version"], "version"),
        half_life_ns=_dur(top["half_life"], "half_life") if "half_life" in top else 14 * MS_PER_DAY * NS_PER_MS,
        max_lateness_ns=_dur(top["max_lateness"], "max_lateness") if "max_lateness" in top else 7 * MS_PER_DAY * NS_PER_MS,
        max_future_skew_ns=_dur(top["max_future_skew"], "max_future_skew") if "max_future_skew" in top else 5 * 60_000 * NS_PER_MS,
        dedupe_window_ns=_dur(top["dedupe_window"], "dedupe_window") if "dedupe_window" in top else MS_PER_DAY * NS_PER_MS,
        top_contributors=int(_num(top["top_contributors"], "top_contributors")) if "top_contributors" in top else 5,
        mql=mql,
        fit_min=_num(th["fit_min"], "thresholds.fit_min") if "fit_min" in th else None,
        rearm=_num(th["rearm"], "thresholds.rearm") if "rearm" in th else mql / 2,
        cooldown_ns=_dur(th["cooldown"], "thresholds.cooldown") if "cooldown" in th else 0,
        rules=rules,
        fit=fits,
    )
    if model.half_life_ns <= 0:
        raise ModelError("half_life: must be positive")
    if model.rearm >= model.mql:
        raise ModelError("thresholds.rearm: must be below mql")
    return model


def load_model(path: str) -> Model:
    with open(path, encoding="utf-8") as f:
        return load_model_text(f.read())


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------

_glob_cache: dict[str, re.Pattern[bytes]] = {}


def glob_match(pattern: str, value: str) -> bool:
    """D8: '*' any run of bytes, '?' one byte, over UTF-8, case-sensitive."""
    rx = _glob_cache.get(pattern)
    if rx is None:
        parts = []
        for b in pattern.encode("utf-8"):
            if b == ord("*"):
                parts.append(b".*")
            elif b == ord("?"):
                parts.append(b".")
            else:
                parts.append(re.escape(bytes([b])))
        rx = re.compile(b"".join(parts), re.DOTALL)
        _glob_cache[pattern] = rx
    return rx.fullmatch(value.encode("utf-8")) is not None


_DECIMAL = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


def decimal_value(s: str) -> float | None:
    """D11: a finite decimal number, or None."""
    if not _DECIMAL.fullmatch(s):
        return None
    x = float(s)
    return x if math.isfinite(x) else None


def fit_matches(rule: FitRule, value: str) -> bool:
    if rule.equals is not None:
        v = value.lower()
        return any(v == e.lower() for e in rule.equals)
    if rule.glob is not None:
        return glob_match(rule.glob, value)
    x = decimal_value(value)
    if x is None:
        return False
    return (rule.min is None or x >= rule.min) and (rule.max is None or x < rule.max)


# ---------------------------------------------------------------------------
# Touchpoints
# ---------------------------------------------------------------------------


class JNum(str):
    """A JSON number kept as the text it was written as (D9)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def json_loads(text: str) -> Any:
    return json.loads(text, parse_int=JNum, parse_float=JNum, parse_constant=_reject_constant)


def scalar_text(v: Any) -> str | None:
    """D9: the string form of a JSON scalar, or None for non-scalars."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):  # includes JNum: the text as written
        return str(v)
    # Values built in Python rather than decoded by json_loads.
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isfinite(v):
        return json.dumps(v)
    return None


@dataclasses.dataclass
class Touchpoint:
    event_id: str
    lead: str
    type: str
    channel: str | None
    campaign: str | None
    t: int  # occurred_at, epoch ms
    props: dict[str, str]
    traits: dict[str, str]


class DeadLetter(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def parse_time_ms(v: Any) -> int:
    """D3: RFC 3339 text or integer epoch milliseconds."""
    if isinstance(v, JNum):
        if not re.fullmatch(r"-?[0-9]+", v):
            raise DeadLetter("bad_time")
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool):  # built in Python
        return v
    if not isinstance(v, str):
        raise DeadLetter("bad_time")
    m = _RFC3339.fullmatch(v)
    if not m:
        raise DeadLetter("bad_time")
    year, mon, day, hh, mm, ss = (int(m.group(i)) for i in range(1, 7))
    frac, zone = m.group(7) or "", m.group(8)
    if ss > 59:
        raise DeadLetter("bad_time")
    try:
        base = datetime(year, mon, day, hh, mm, ss, tzinfo=timezone.utc)
    except ValueError:
        raise DeadLetter("bad_time") from None
    if zone not in ("Z", "z"):
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            raise DeadLetter("bad_time")
        off = timedelta(hours=oh, minutes=om)
        base = base - off if zone[0] == "+" else base + off
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    delta = base - epoch
    secs = delta.days * 86400 + delta.seconds
    ms = int((frac + "000")[:3]) if frac else 0
    return secs * 1000 + ms


def _opt_str(obj: dict, key: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or isinstance(v, JNum):
        raise DeadLetter("bad_field")
    return v


def _opt_obj(obj: dict, key: str) -> dict:
    v = obj.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise DeadLetter("bad_field")
    return v


def decode(value: Any) -> Touchpoint:
    """D2 (without the time limits): a value to a Touchpoint or DeadLetter."""
    if isinstance(value, str) and not isinstance(value, JNum):
        try:
            value = json_loads(value)
        except ValueError:
            raise DeadLetter("invalid_json") from None
    if not isinstance(value, dict):
        raise DeadLetter("invalid_json")
    event_id = _opt_str(value, "event_id")
    lead_id = _opt_str(value, "lead_id")
    anon_id = _opt_str(value, "anonymous_id")
    _opt_str(value, "account_id")
    typ = _opt_str(value, "type")
    channel = _opt_str(value, "channel")
    campaign = _opt_str(value, "campaign")
    props = _opt_obj(value, "properties")
    traits = _opt_obj(value, "traits")
    if not event_id or not typ or not (lead_id or anon_id) or value.get("occurred_at") is None:
        raise DeadLetter("missing_field")
    if (len(event_id.encode()) > 128 or len((lead_id or "").encode()) > 256
            or len((anon_id or "").encode()) > 256):
        raise DeadLetter("too_long")
    t = parse_time_ms(value["occurred_at"])
    return Touchpoint(
        event_id=event_id,
        lead=lead_id or anon_id,
        type=typ,
        channel=channel,
        campaign=campaign,
        t=t,
        props={k: s for k, v in props.items() if (s := scalar_text(v)) is not None},
        traits={k: s for k, v in traits.items() if (s := scalar_text(v)) is not None},
    )


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Lead:
    e_ref: float = 0.0
    t_ref: int | None = None
    armed: bool = True
    mql_count: int = 0
    last_mql_at: int | None = None
    traits: dict[str, str] = dataclasses.field(default_factory=dict)
    fit: float = 0.0
    first_seen: dict[str, int] = dataclasses.field(default_factory=dict)  # event_id -> t_first
    cap_used: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)  # (rule, day)


class Scorer:
    def __init__(self, model: Model, now_ms: int):
        self.m = model
        self.now_ms = now_ms
        self.leads: dict[str, Lead] = {}
        self.h_ms = model.half_life_ns / NS_PER_MS

    def decay(self, dt_ms: int) -> float:
        return 2.0 ** (-dt_ms / self.h_ms)

    def match(self, tp: Touchpoint) -> int | None:
        """D7: index of the winning rule, or None."""
        best, best_n = None, 0
        for i, r in enumerate(self.m.rules):
            if r.type != tp.type:
                continue
            if r.channel is not None and r.channel != tp.channel:
                continue
            if r.campaign is not None and r.campaign != tp.campaign:
                continue
            if not all(k in tp.props and glob_match(g, tp.props[k]) for k, g in r.properties):
                continue
            if r.specificity > best_n:  # strictly: ties keep the earlier rule
                best, best_n = i, r.specificity
        return best

    def points(self, lead: Lead, tp: Touchpoint) -> float:
        i = self.match(tp)
        if i is None:
            return 0.0
        r = self.m.rules[i]
        p = r.points
        if r.cap > 0 and p > 0:  # D10
            key = (i, tp.t // MS_PER_DAY)
            used = lead.cap_used.get(key, 0.0)
            p = max(0.0, min(p, r.cap - used))
            lead.cap_used[key] = used + p
        return p

    def compute_fit(self, lead: Lead) -> float:
        total = 0.0
        for fr in self.m.fit:
            v = lead.traits.get(fr.trait)
            if v is not None and fit_matches(fr, v):
                total += fr.points
        return total

    def process(self, partition: int, offset: int, value: Any) -> list[dict]:
        m = self.m
        try:
            tp = decode(value)
            if tp.t * NS_PER_MS > self.now_ms * NS_PER_MS + m.max_future_skew_ns:
                raise DeadLetter("future")
            lead = self.leads.get(tp.lead)
            if lead is not None and lead.t_ref is not None and \
                    tp.t * NS_PER_MS < lead.t_ref * NS_PER_MS - m.max_lateness_ns:
                raise DeadLetter("too_late")
        except DeadLetter as dl:
            return [{"dead_letter": dl.reason, "partition": partition, "offset": offset}]

        if lead is not None:
            first = lead.first_seen.get(tp.event_id)
            if first is not None and abs(tp.t - first) * NS_PER_MS <= m.dedupe_window_ns:  # D5
                return [{"duplicate": True, "partition": partition, "offset": offset}]
        else:
            lead = self.leads[tp.lead] = Lead()

        # D13: re-arm before applying.
        if not lead.armed and lead.t_ref is not None:
            at = max(tp.t, lead.t_ref)
            if lead.e_ref * self.decay(at - lead.t_ref) < m.rearm:
                lead.armed = True

        p = self.points(lead, tp)
        # D12: apply.
        if lead.t_ref is None:
            lead.e_ref, lead.t_ref = p, tp.t
        elif tp.t >= lead.t_ref:
            lead.e_ref = lead.e_ref * self.decay(tp.t - lead.t_ref) + p
            lead.t_ref = tp.t
        else:
            lead.e_ref = lead.e_ref + p * self.decay(lead.t_ref - tp.t)
        lead.first_seen.setdefault(tp.event_id, tp.t)
        if tp.traits:
            lead.traits.update(tp.traits)
            lead.fit = self.compute_fit(lead)

        # D14: qualify after applying.
        cooldown_ok = (lead.last_mql_at is None or m.cooldown_ns == 0
                       or (tp.t - lead.last_mql_at) * NS_PER_MS >= m.cooldown_ns)
        fit_ok = m.fit_min is None or lead.fit >= m.fit_min
        if lead.armed and lead.e_ref >= m.mql and fit_ok and cooldown_ok:
            lead.armed = False
            lead.mql_count += 1
            lead.last_mql_at = tp.t
            return [{
                "lead_id": tp.lead,
                "sequence": lead.mql_count,
                "trigger_event_id": tp.event_id,
                "score": lead.e_ref,
                "fit": lead.fit,
                "qualified_at_ms": tp.t,
            }]
        return []

    def finals(self) -> list[dict]:
        return [{
            "final": True,
            "lead": name,
            "e_ref": lead.e_ref,
            "t_ref": lead.t_ref,
            "fit": lead.fit,
            "armed": lead.armed,
            "mql_count": lead.mql_count,
        } for name, lead in sorted(self.leads.items())]


def run(model: Model, records: Iterable[dict], now_ms: int) -> Iterator[dict]:
    """Scores records ({"partition", "offset", "key", "value"}) in order and
    yields the output objects described in the module docstring."""
    s = Scorer(model, now_ms)
    for rec in records:
        yield from s.process(int(rec["partition"]), int(rec["offset"]), rec.get("value"))
    yield from s.finals()


def read_records(lines: Iterable[str]) -> Iterator[dict]:
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield json_loads(line)
            except ValueError as e:
                raise SystemExit(f"scoring_ref: input line {n}: {e}") from None


def _dump(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model YAML file")
    ap.add_argument("--input", required=True, help="touchpoints JSONL ('-' for stdin)")
    ap.add_argument("--now-ms", type=int, default=None,
                    help="wall clock for the future check, epoch ms (default: now)")
    args = ap.parse_args(argv)
    try:
        model = load_model(args.model)
    except (OSError, ModelError, yaml.YAMLError) as e:
        print(f"scoring_ref: model {args.model}: {e}", file=sys.stderr)
        return 2
    now_ms = args.now_ms if args.now_ms is not None else int(time.time() * 1000)
    f = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    with f:
        out = sys.stdout
        for obj in run(model, read_records(f), now_ms):
            out.write(_dump(obj))
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
