"""Hand-computed cases for scoring_ref.py (run: python3 -m pytest bench/reference)."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scoring_ref as ref  # noqa: E402

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_740_992_400_000  # 2025-03-03T09:00:00Z
NOW = T0 + 365 * DAY

MODEL = """
name: test
version: "1"
half_life: 1d
max_lateness: 2d
max_future_skew: 5m
dedupe_window: 24h
thresholds: {mql: 100, rearm: 50}
rules:
  - {name: view, type: page_view, points: 4, cap: 10}
  - {name: pricing, type: page_view, properties: {url: "*/pricing*"}, points: 10}
  - {name: pricing-again, type: page_view, properties: {url: "*/pricing"}, points: 99}
  - {name: web-pricing, type: page_view, channel: web, properties: {url: "*/pricing*"}, points: 20}
  - {name: big, type: big, points: 100}
  - {name: half, type: half, points: 50}
  - {name: minus, type: minus, points: -30}
  - {name: zero, type: zero, points: 0}
fit:
  - {trait: title, equals: [VP, Director], points: 15}
  - {trait: industry, glob: "*oftware*", points: 5}
  - {trait: size, min: 200, max: 5000, points: 10}
"""


def model(text=MODEL, **subs):
    m = ref.load_model_text(textwrap.dedent(text))
    for k, v in subs.items():
        setattr(m, k, v)
    return m


def tp(eid, t, typ="big", lead="L1", **kw):
    v = {"event_id": eid, "lead_id": lead, "type": typ, "occurred_at": t}
    v.update(kw)
    return v


def score(m, values, now=NOW):
    recs = [{"partition": 0, "offset": i, "key": "k", "value": v} for i, v in enumerate(values)]
    out = list(ref.run(m, recs, now))
    finals = {o["lead"]: o for o in out if o.get("final")}
    events = [o for o in out if not o.get("final")]
    return events, finals


def mqls(events):
    return [e for e in events if "sequence" in e]


# ---- model ---------------------------------------------------------------


@pytest.mark.parametrize("text,ns", [
    ("14d", 14 * DAY * 10**6),
    ("1d12h", 36 * HOUR * 10**6),
    ("1.5d", 36 * HOUR * 10**6),
    ("90m", 90 * 60 * 10**9),
    ("250ms", 250 * 10**6),
    ("0", 0),
    ("-2h", -2 * HOUR * 10**6),
])
def test_parse_duration(text, ns):
    assert ref.parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "14", "3w", "d", "1d 2h", "1.d5"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        ref.parse_duration_ns(text)


def test_model_defaults_and_yaml12_scalars():
    m = ref.load_model_text(textwrap.dedent("""
        name: n
        version: 1.10
        thresholds: {mql: 80}
        rules: [{type: a, points: 1, properties: {z: "1", a: "2"}}]
        fit: [{trait: country, equals: [NO, on, 1:30], points: 1}]
    """))
    assert m.version == "1.10"
    assert m.half_life_ns == 14 * DAY * 10**6
    assert m.max_lateness_ns == 7 * DAY * 10**6
    assert m.max_future_skew_ns == 5 * 60 * 10**9
    assert m.dedupe_window_ns == DAY * 10**6
    assert m.rearm == 40 and m.cooldown_ns == 0 and m.fit_min is None
    assert m.rules[0].name == "a/z=1/a=2"
    assert m.rules[0].properties == [("z", "1"), ("a", "2")]  # file order
    assert m.fit[0].equals == ["NO", "on", "1:30"]  # as written, not YAML 1.1


def test_default_model_loads():
    here = os.path.dirname(os.path.abspath(__file__))
    m = ref.load_model(os.path.join(here, "..", "..", "models", "default.yaml"))
    assert m.name == "b2b-default" and m.mql == 100 and m.rearm == 50


@pytest.mark.parametrize("text", [
    "name: n\nversion: v\nrules: [{type: a, points: 1}]\n",  # no thresholds
    "name: n\nversion: v\nthresholds: {mql: 10}\nrules: [{type: a, poitns: 1}]\n",
    "name: n\nversion: v\nthresholds: {mql: 10, rearm: 10}\nrules: [{type: a, points: 1}]\n",
    "name: n\nversion: v\nthresholds: {mql: 10}\nrules: [{type: a, points: ten}]\n",
])
def test_model_rejects(text):
    with pytest.raises(ref.ModelError):
        ref.load_model_text(text)


# ---- decay (SCORING.md 3) --------------------------------------------------


def test_decay_halves_after_one_half_life():
    m = model()
    _, finals = score(m, [tp("a", T0, "half"), tp("b", T0 + DAY, "zero")])
    assert finals["L1"]["e_ref"] == 25.0  # 50 * 2^-1, exact
    assert finals["L1"]["t_ref"] == T0 + DAY


def test_decay_two_half_lives_and_sum():
    m = model()
    _, finals = score(m, [tp("a", T0, "half"), tp("b", T0 + 2 * DAY, "half")])
    assert finals["L1"]["e_ref"] == 50 * 0.25 + 50


def test_late_touchpoint_is_decayed_into_e_ref():
    m = model()
    events, finals = score(m, [tp("a", T0 + DAY, "half"), tp("b", T0, "half")])
    assert events == []
    assert finals["L1"]["t_ref"] == T0 + DAY  # unchanged by the late one
    assert finals["L1"]["e_ref"] == 50 + 25.0


def test_order_does_not_matter():
    m = model()
    vals = [tp("a", T0, "half"), tp("b", T0 + 5 * HOUR, "minus"), tp("c", T0 + 30 * HOUR, "half"),
            tp("d", T0 + 31 * HOUR, "zero")]
    _, f1 = score(m, vals)
    _, f2 = score(m, list(reversed(vals)))
    assert math.isclose(f1["L1"]["e_ref"], f2["L1"]["e_ref"], rel_tol=1e-12)
    expected = 50 * 2 ** (-31 / 24) - 30 * 2 ** (-26 / 24) + 50 * 2 ** (-1 / 24)
    assert math.isclose(f1["L1"]["e_ref"], expected, rel_tol=1e-12)


# ---- time (SCORING.md 4) ---------------------------------------------------


def test_too_late_boundary():
    m = model()  # max_lateness 2d
    events, finals = score(m, [
        tp("a", T0 + 10 * DAY, "half"),
        tp("b", T0 + 8 * DAY, "half"),  # exactly max_lateness before: applied
        tp("c", T0 + 8 * DAY - 1, "half"),  # 1 ms more: too late
    ])
    assert events == [{"dead_letter": "too_late", "partition": 0, "offset": 2}]
    assert finals["L1"]["e_ref"] == 50 + 50 * 0.25


def test_future_boundary():
    m = model()  # max_future_skew 5m
    now = T0
    events, finals = score(m, [tp("a", now + 5 * 60_000, "half"), tp("b", now + 5 * 60_000 + 1, "half")], now=now)
    assert events == [{"dead_letter": "future", "partition": 0, "offset": 1}]
    assert finals["L1"]["e_ref"] == 50


@pytest.mark.parametrize("value,reason", [
    ("not json", "invalid_json"),
    ([1, 2], "invalid_json"),
    ({"lead_id": "L", "type": "big", "occurred_at": T0}, "missing_field"),
    ({"event_id": "", "lead_id": "L", "type": "big", "occurred_at": T0}, "missing_field"),
    ({"event_id": "e", "type": "big", "occurred_at": T0}, "missing_field"),
    ({"event_id": "e", "lead_id": "L", "occurred_at": T0}, "missing_field"),
    ({"event_id": "e", "lead_id": "L", "type": "big"}, "missing_field"),
    ({"event_id": "e" * 129, "lead_id": "L", "type": "big", "occurred_at": T0}, "too_long"),
    ({"event_id": "e", "anonymous_id": "a" * 257, "type": "big", "occurred_at": T0}, "too_long"),
    ({"event_id": 7, "lead_id": "L", "type": "big", "occurred_at": T0}, "bad_field"),
    ({"event_id": "e", "lead_id": "L", "type": "big", "occurred_at": T0, "traits": [1]}, "bad_field"),
    ({"event_id": "e", "lead_id": "L", "type": "big", "occurred_at": "yesterday"}, "bad_time"),
    ({"event_id": "e", "lead_id": "L", "type": "big", "occurred_at": "2025-03-03 09:00:00Z"}, "bad_time"),
    ({"event_id": "e", "lead_id": "L", "type": "big", "occurred_at": "2025-02-30T09:00:00Z"}, "bad_time"),
])
def test_dead_letters(value, reason):
    events, finals = score(model(), [value])
    assert events == [{"dead_letter": reason, "partition": 0, "offset": 0}]
    assert finals == {}


@pytest.mark.parametrize("text,ms", [
    ("2025-03-03T09:00:00Z", T0),
    ("2025-03-03T09:00:00.123456Z", T0 + 123),
    ("2025-03-03T10:30:00+01:30", T0),
    ("2025-03-03T07:00:00.5-02:00", T0 + 500),
    ("1969-12-31T23:59:59.5Z", -500),
])
def test_rfc3339(text, ms):
    assert ref.parse_time_ms(text) == ms


def test_epoch_ms_from_json_text():
    assert ref.parse_time_ms(ref.json_loads(str(T0))) == T0
    with pytest.raises(ref.DeadLetter):
        ref.parse_time_ms(ref.json_loads("1.7e12"))


# ---- rules and caps (SCORING.md 2) -------------------------------------------


def test_most_specific_rule_wins_ties_go_first():
    m = model()
    s = ref.Scorer(m, NOW)
    pick = lambda **kw: m.rules[s.match(ref.decode(tp("x", T0, "page_view", **kw)))].name  # noqa: E731
    assert pick() == "view"
    assert pick(properties={"url": "https://a.io/en/pricing?x=1"}) == "pricing"
    assert pick(properties={"url": "https://a.io/pricing"}) == "pricing"  # tie with pricing-again: first wins
    assert pick(channel="web", properties={"url": "https://a.io/pricing"}) == "web-pricing"
    assert pick(channel="email", properties={"url": "/Pricing"}) == "view"  # globs are case-sensitive
    assert s.match(ref.decode(tp("x", T0, "other"))) is None


def test_glob():
    assert ref.glob_match("*/pricing*", "https://a.io/x/pricing/y")
    assert ref.glob_match("a?c", "a/c")
    assert not ref.glob_match("a?c", "ac")
    assert not ref.glob_match("?", "é")  # two bytes
    assert ref.glob_match("??", "é")
    assert ref.glob_match("", "") and not ref.glob_match("", "x")


def test_property_numbers_match_as_written():
    m = model("""
        name: n
        version: v
        thresholds: {mql: 1000}
        rules: [{type: a, properties: {n: "1e3"}, points: 7}, {type: a, properties: {b: "true"}, points: 3}]
    """)
    recs = [{"partition": 0, "offset": 0, "key": "k",
             "value": ref.json_loads('{"event_id":"e","lead_id":"L","type":"a","occurred_at":1,"properties":{"n":1e3}}')},
            {"partition": 0, "offset": 1, "key": "k",
             "value": '{"event_id":"f","lead_id":"M","type":"a","occurred_at":1,"properties":{"b":true}}'}]
    out = {o["lead"]: o for o in ref.run(m, recs, NOW) if o.get("final")}
    assert out["L"]["e_ref"] == 7 and out["M"]["e_ref"] == 3


def test_cap_per_rule_per_utc_day():
    m = model()  # view: 4 points, cap 10
    midnight = (T0 // DAY + 1) * DAY
    vals = [tp(f"v{i}", midnight - 4 * 60_000 + i * 60_000, "page_view") for i in range(4)]  # 4 before midnight
    vals += [tp(f"w{i}", midnight + i * 60_000, "page_view") for i in range(40)]  # 40 after
    s = ref.Scorer(m, NOW)
    got = []
    for i, v in enumerate(vals):
        lead = s.leads.get("L1")
        before = (lead.e_ref, lead.t_ref) if lead else (0.0, v["occurred_at"])
        s.process(0, i, v)
        lead = s.leads["L1"]
        got.append(lead.e_ref - before[0] * 2 ** (-(lead.t_ref - before[1]) / DAY))
    applied = [round(p, 9) for p in got]
    assert applied[:4] == [4, 4, 2, 0]  # 10 before midnight
    assert applied[4:8] == [4, 4, 2, 0]  # the cap resets on the next UTC day
    assert all(p == 0 for p in applied[8:])


def test_cap_does_not_limit_negative_points_and_other_rules():
    m = model()
    _, finals = score(m, [tp(f"v{i}", T0, "page_view") for i in range(5)] +
                      [tp("p", T0, "page_view", properties={"url": "/pricing"}), tp("m", T0, "minus")])
    assert finals["L1"]["e_ref"] == 10 + 10 - 30


# ---- duplicates (SCORING.md 5) -----------------------------------------------


def test_duplicates():
    m = model()
    events, finals = score(m, [
        tp("a", T0, "half"),
        tp("a", T0, "half"),  # same delivery again: duplicate
        tp("a", T0 + DAY, "half"),  # 24 h after the first's event time: still a duplicate
        tp("a", T0 + DAY + 1, "half"),  # 1 ms more: a new touchpoint
        tp("a", T0, "half", lead="L2"),  # another lead: not a duplicate
    ])
    assert events == [{"duplicate": True, "partition": 0, "offset": 1},
                      {"duplicate": True, "partition": 0, "offset": 2}]
    assert math.isclose(finals["L1"]["e_ref"], 50 * 2 ** (-(DAY + 1) / DAY) + 50, rel_tol=1e-12)
    assert finals["L2"]["e_ref"] == 50


def test_dead_lettered_delivery_does_not_register_for_dedupe():
    m = model()
    events, finals = score(m, [tp("b", T0 + 10 * DAY, "zero"), tp("a", T0, "half"),
                               tp("a", T0 + 9 * DAY, "half")])
    assert events == [{"dead_letter": "too_late", "partition": 0, "offset": 1}]
    assert finals["L1"]["e_ref"] == 25.0


# ---- qualification (SCORING.md 6) ----------------------------------------------


def test_mql_rearm():
    m = model()  # mql 100, rearm 50, half-life 1d
    events, finals = score(m, [
        tp("a", T0, "big"),  # 100: MQL 1
        tp("b", T0 + 12 * HOUR, "big"),  # 170.7 but disarmed, and 70.7 >= rearm before: no MQL
        tp("c", T0 + 84 * HOUR, "big"),  # before: 170.7 * 2^-3 = 21.3 < 50: re-armed; 121.3: MQL 2
    ])
    got = mqls(events)
    assert [(e["sequence"], e["trigger_event_id"], e["qualified_at_ms"]) for e in got] == [
        (1, "a", T0), (2, "c", T0 + 84 * HOUR)]
    assert got[0]["score"] == 100
    e_b = 100 * 2 ** -0.5 + 100
    assert math.isclose(got[1]["score"], e_b * 2 ** -3 + 100, rel_tol=1e-12)
    assert finals["L1"]["armed"] is False and finals["L1"]["mql_count"] == 2


def test_rearm_is_strictly_below():
    m = model()
    # 100 at T0 (MQL), then at T0+1d engagement is exactly 50 = rearm: not re-armed.
    events, _ = score(m, [tp("a", T0, "big"), tp("b", T0 + DAY, "big")])
    assert [e["sequence"] for e in mqls(events)] == [1]


def test_rearm_uses_max_of_t_and_t_ref():
    m = model()
    events, _ = score(m, [
        tp("a", T0 + 30 * HOUR, "big"),  # MQL 1; E_ref 100 at t_ref = T0+30h
        # Late by 30 h: engagement is judged at max(t, t_ref) = t_ref, where
        # it is 100 >= rearm: stays disarmed (decaying by |t - t_ref| would
        # give 42 and re-arm).
        tp("b", T0, "zero"),
        tp("c", T0 + 30 * HOUR, "half"),  # 150, still disarmed: no MQL
    ])
    assert [e["sequence"] for e in mqls(events)] == [1]


def test_cooldown():
    m = model(cooldown_ns=3 * DAY * 10**6)
    events, _ = score(m, [
        tp("a", T0, "big"),
        tp("b", T0 + 2 * DAY, "big"),  # re-armed (25 < 50), 125 >= mql, but cooldown: no MQL
        tp("c", T0 + 3 * DAY, "big"),  # still armed; 162.5; cooldown passed: MQL 2
    ])
    got = mqls(events)
    assert [(e["sequence"], e["trigger_event_id"]) for e in got] == [(1, "a"), (2, "c")]
    assert math.isclose(got[1]["score"], 125 / 2 + 100, rel_tol=1e-12)


def test_fit_gates_and_a_zero_point_touchpoint_can_trigger():
    m = model(fit_min=20.0)
    events, finals = score(m, [
        tp("a", T0, "big", traits={"title": "vp"}),  # fit 15 < 20: no MQL
        tp("b", T0 + HOUR, "zero", traits={"size": 1200}),  # fit 25; E = 97.2 < 100: no MQL
        tp("c", T0 + HOUR, "page_view", traits={"industry": "Software"}),  # +4: 101.2, fit 30: MQL
        tp("d", T0 + HOUR, "zero", traits={"industry": "SOFTWARE"}),  # glob is case-sensitive: fit 25
    ])
    got = mqls(events)
    assert len(got) == 1 and got[0]["trigger_event_id"] == "c" and got[0]["fit"] == 30
    assert finals["L1"]["fit"] == 25
    m2 = model(fit_min=15.0)
    events, _ = score(m2, [tp("a", T0, "big"), tp("b", T0, "zero", traits={"title": "Director"})])
    assert [e["trigger_event_id"] for e in mqls(events)] == ["b"]


def test_fit_latest_value_and_ranges():
    m = model()
    _, finals = score(m, [
        tp("a", T0, "zero", traits={"title": "VP", "size": "199", "industry": "software"}),
        tp("b", T0 + 1, "zero", traits={"title": "Intern", "size": "4999.5"}),
    ])
    # title Intern: 0; size 4999.5 in [200, 5000): 10; industry kept: 5.
    assert finals["L1"]["fit"] == 15
    assert ref.decimal_value("1e3") == 1000 and ref.decimal_value("0x10") is None
    assert ref.decimal_value("1_000") is None and ref.decimal_value("inf") is None


def test_anonymous_id_is_the_lead_without_lead_id():
    v = {"event_id": "e", "anonymous_id": "anon-1", "type": "half", "occurred_at": T0}
    _, finals = score(model(), [v])
    assert list(finals) == ["anon-1"]


# ---- CLI --------------------------------------------------------------------


def test_cli(tmp_path):
    mf = tmp_path / "m.yaml"
    mf.write_text(textwrap.dedent(MODEL))
    inp = tmp_path / "in.jsonl"
    lines = [
        {"partition": 0, "offset": 5, "key": "L1", "value": tp("a", "2025-03-03T09:00:00Z", "big")},
        {"partition": 1, "offset": 9, "key": "L2", "value": tp("b", T0 + DAY, "big", lead="L2")},
        {"partition": 0, "offset": 6, "key": "L1", "value": tp("a", T0, "big")},
        {"partition": 1, "offset": 10, "key": "L2", "value": "{broken"},
    ]
    inp.write_text("".join(json.dumps(x) + "\n" for x in lines))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scoring_ref.py")
    res = subprocess.run([sys.executable, script, "--model", str(mf), "--input", str(inp),
                          "--now-ms", str(T0 + DAY)], capture_output=True, text=True, check=True)
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert out == [
        {"lead_id": "L1", "sequence": 1, "trigger_event_id": "a", "score": 100, "fit": 0, "qualified_at_ms": T0},
        {"lead_id": "L2", "sequence": 1, "trigger_event_id": "b", "score": 100, "fit": 0,
         "qualified_at_ms": T0 + DAY},
        {"duplicate": True, "partition": 0, "offset": 6},
        {"dead_letter": "invalid_json", "partition": 1, "offset": 10},
        {"final": True, "lead": "L1", "e_ref": 100, "t_ref": T0, "fit": 0, "armed": False, "mql_count": 1},
        {"final": True, "lead": "L2", "e_ref": 100, "t_ref": T0 + DAY, "fit": 0, "armed": False, "mql_count": 1},
    ]


def test_default_model_hot_lead_and_page_views():
    """The scenarios of models/default_test.go, through the reference."""
    here = os.path.dirname(os.path.abspath(__file__))
    m = ref.load_model(os.path.join(here, "..", "..", "models", "default.yaml"))
    vp = {"title": "VP Marketing", "company_size": "800", "industry": "software", "country": "US"}
    pricing = {"url": "https://acme.io/pricing"}
    events, finals = score(m, [
        tp("a", T0, "webinar_registered", traits=vp),
        tp("b", T0 + 2 * DAY, "webinar_attended"),
        tp("c", T0 + 3 * DAY, "page_view", properties=pricing),
        tp("d", T0 + 3 * DAY + 60_000, "page_view", properties=pricing),
        tp("e", T0 + 3 * DAY + 120_000, "email_click"),
        tp("f", T0 + 4 * DAY, "demo_request"),
    ])
    got = mqls(events)
    assert len(got) == 1 and got[0]["trigger_event_id"] == "f" and got[0]["fit"] == 32
    assert math.isclose(got[0]["score"], 104.64, abs_tol=0.01)
    urls = ["/", "/product", "/pricing", "/customers/x", "/compare/y", "/blog/z", "/pricing?annual"]
    events, finals = score(m, [tp(f"v{i}", T0 + i * 300_000, "page_view", traits=vp,
                                  properties={"url": "https://acme.io" + urls[i % len(urls)]})
                               for i in range(40)])
    assert mqls(events) == [] and finals["L1"]["e_ref"] < 49
