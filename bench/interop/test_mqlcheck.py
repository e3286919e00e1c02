"""Tests of mqlcheck.py: it must reject what a consumer would trip over."""

import copy
import json
import os

import pytest

import mqlcheck

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(ROOT, "sinks", "mqlout", "mql.schema.json")

GOOD = {
    "mql_id": "0098669c-0f1c-8f33-b631-b4971c629921",
    "lead_id": "lead-000003",
    "account_id": "fabrikam.io",
    "sequence": 1,
    "qualified_at": "2026-11-10T13:10:51Z",
    "trigger_event_id": "smpl-0183",
    "score": 105.84032378336357,
    "fit": 30,
    "thresholds": {"mql": 100, "fit_min": 10, "rearm": 50, "cooldown_seconds": 2592000},
    "model": {"name": "b2b-default", "version": "1.0.0"},
    "contributors": [{"type": "form_submit", "channel": "web", "points": 40}],
    "emitted_at": "2026-11-24T23:03:56.615431552Z",
}


def rec(event, key=None, offset=0):
    payload = event if isinstance(event, str) else json.dumps(event)
    if key is None and isinstance(event, dict):
        key = event.get("lead_id")
    return {"partition": 0, "offset": offset, "key": key, "payload": payload}


@pytest.fixture(scope="module")
def validator():
    return mqlcheck.make_validator(SCHEMA)


def test_good_event_passes(validator):
    out, problems = mqlcheck.check_records([rec(GOOD)], validator)
    assert problems == []
    assert out[0]["mql"]["trigger_event_id"] == "smpl-0183"


def mutate(fn):
    ev = copy.deepcopy(GOOD)
    fn(ev)
    return ev


@pytest.mark.parametrize(
    "event, want",
    [
        (mutate(lambda e: e.pop("mql_id")), "'mql_id' is a required property"),
        (mutate(lambda e: e.update(sequence=0)), "sequence"),
        (mutate(lambda e: e.update(score="105")), "score"),
        (mutate(lambda e: e.update(qualified_at="2026-11-10 13:10:51")), "qualified_at"),
        (mutate(lambda e: e.update(emitted_at="2026-13-10T13:10:51Z")), "emitted_at"),
        (mutate(lambda e: e.update(mql_id="not-a-uuid")), "mql_id"),
        (mutate(lambda e: e["thresholds"].pop("rearm")), "thresholds"),
        ("{not json", "not JSON"),
    ],
)
def test_malformed_event_fails(validator, event, want):
    _, problems = mqlcheck.check_records([rec(event, key="lead-000003")], validator)
    assert problems, "no problem reported"
    assert any(want in p for p in problems), problems


def test_duplicate_mql_id_fails(validator):
    _, problems = mqlcheck.check_records([rec(GOOD, offset=0), rec(GOOD, offset=1)], validator)
    assert any("duplicate mql_id" in p for p in problems), problems


def test_duplicate_sequence_fails(validator):
    other = mutate(lambda e: e.update(mql_id="1098669c-0f1c-8f33-b631-b4971c629921"))
    _, problems = mqlcheck.check_records([rec(GOOD, offset=0), rec(other, offset=1)], validator)
    assert any("sequence 1" in p for p in problems), problems


def test_key_must_be_lead_id(validator):
    _, problems = mqlcheck.check_records([rec(GOOD, key="lead-000004")], validator)
    assert any("record key" in p for p in problems), problems


def test_rfc3339_fallback():
    assert mqlcheck._is_rfc3339("2026-11-24T23:03:56.615431552Z")
    assert mqlcheck._is_rfc3339("2026-11-24T23:03:56+01:00")
    assert not mqlcheck._is_rfc3339("2026-11-24 23:03:56Z")
    assert not mqlcheck._is_rfc3339("2026-02-30T00:00:00Z")
    assert not mqlcheck._is_rfc3339("2026-11-24T23:03:56")
