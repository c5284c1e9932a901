"""Unit tests of the change-window guard rail: plugins/module_utils/change_window.py (when a window
is open, when the next one opens, overrides, bad input) and the module library/lms_change_window.py.

Dates used: 2026-11-29, 2026-07-05, 2026-03-29 and 2026-10-25 are Sundays; Europe/London springs
forward on 2026-03-29 at 01:00 GMT (clock 01:00 -> 02:00) and falls back on 2026-10-25 at
01:00 UTC (clock 02:00 BST -> 01:00 GMT).
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[2]

# tests/conftest.py puts plugins/module_utils on sys.path and maps ansible.module_utils.<name> to it.
import change_window as cw

LONDON_SUN = ["sun 02:00-04:00 Europe/London"]


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def is_open(windows, at: str) -> bool:
    return cw.window_at(cw.normalise_windows(windows, "x-live"), t(at)) is not None


def decide(windows, at, **kwargs) -> dict:
    return cw.check("globex-live", windows, at, **kwargs)


# ----- open or closed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-29T01:59:59+00:00", False),
        ("2026-11-29T02:00:00+00:00", True),  # start inclusive
        ("2026-11-29T03:59:59+00:00", True),
        ("2026-11-29T04:00:00+00:00", False),  # end exclusive
        ("2026-11-28T02:30:00+00:00", False),  # Saturday
        ("2026-11-29T02:30:00+01:00", False),  # 01:30 UTC
    ],
)
def test_start_inclusive_end_exclusive(at, expected):
    assert is_open(LONDON_SUN, at) is expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-27T22:59:00+00:00", False),  # Friday before
        ("2026-11-27T23:00:00+00:00", True),
        ("2026-11-28T00:30:00+00:00", True),  # Saturday morning: the window started on Friday
        ("2026-11-28T01:00:00+00:00", False),
        ("2026-11-28T23:30:00+00:00", False),  # Saturday is not a start day
        ("2026-11-26T23:30:00+00:00", False),  # Thursday
    ],
)
def test_window_across_midnight(at, expected):
    assert is_open(["fri 23:00-01:00 UTC"], at) is expected


def test_window_across_the_week_end():
    windows = ["sun 23:00-02:00 UTC"]
    assert is_open(windows, "2026-11-30T01:00:00+00:00")  # Monday 01:00, started Sunday
    assert not is_open(windows, "2026-11-30T02:00:00+00:00")
    result = decide(windows, "2026-11-25T12:00:00+00:00", override_reason="x")
    assert result["next_open"] == "2026-11-29T23:00:00+00:00"
    # a day range that wraps the week: fri-mon starts on fri, sat, sun and mon
    wrap = ["fri-mon 22:00-23:00 UTC"]
    assert is_open(wrap, "2026-11-30T22:30:00+00:00")  # Monday
    assert not is_open(wrap, "2026-11-26T22:30:00+00:00")  # Thursday


def test_end_at_24_00_and_all_day():
    assert is_open(["mon 22:00-24:00 UTC"], "2026-11-30T23:59:59+00:00")
    assert not is_open(["mon 22:00-24:00 UTC"], "2026-12-01T00:00:00+00:00")
    always = decide(["* 00:00-24:00 Europe/London"], "2026-11-26T01:00:00+00:00")
    assert always["open"] and always["open_until"] is None and "(always)" in always["msg"]


def test_touching_windows_are_one_open_period():
    result = decide(["mon 22:00-24:00 UTC", "tue 00:00-01:00 UTC"], "2026-11-30T22:30:00+00:00")
    assert result["open_until"] == "2026-12-01T01:00:00+00:00"


def test_time_zone_of_the_window_and_of_at():
    # summer: 02:00-04:00 London is 01:00-03:00 UTC
    assert is_open(LONDON_SUN, "2026-07-05T01:30:00+00:00")
    assert not is_open(LONDON_SUN, "2026-07-05T03:30:00+00:00")
    assert is_open(LONDON_SUN, "2026-07-05T02:30:00+01:00")
    assert is_open(LONDON_SUN, "2026-07-05T11:30:00+10:00")
    result = decide(LONDON_SUN, "2026-07-04T12:00:00Z", override_reason="x")
    assert result["next_open"] == "2026-07-05T01:00:00+00:00"
    # winter: the same window is 02:00-04:00 UTC
    result = decide(LONDON_SUN, "2026-11-26T01:00:00Z", override_reason="x")
    assert result["next_open"] == "2026-11-29T02:00:00+00:00"
    # no offset means UTC
    assert decide(LONDON_SUN, "2026-11-29T03:00:00")["open"]
    # a window that names no zone takes the given default
    assert cw.check("x-live", ["sun 02:00-04:00"], "2026-07-05T01:30:00Z", default_timezone="Europe/London")[
        "open"
    ]
    assert not cw.check("x-live", ["sun 02:00-04:00"], "2026-07-05T01:30:00Z", override_reason="x")["open"]


def test_inventory_shaped_windows():
    windows = [{"days": ["tue", "thu"], "start": "22:00", "end": "23:30", "timezone": "UTC"}]
    result = decide(windows, "2026-11-26T22:15:00Z")  # Thursday
    assert result["open"] and result["window"] == windows[0]
    assert result["open_until"] == "2026-11-26T23:30:00+00:00"


# ----- daylight saving ---------------------------------------------------------------------------


def test_spring_forward_gap_shortens_a_window():
    windows = ["sun 00:30-01:30 Europe/London"]  # the clock jumps from 00:59 GMT to 02:00 BST
    assert is_open(windows, "2026-03-29T00:45:00Z")
    assert not is_open(windows, "2026-03-29T01:00:00Z")
    assert decide(windows, "2026-03-29T00:45:00Z")["open_until"] == "2026-03-29T01:00:00+00:00"


def test_window_inside_the_gap_does_not_open_that_day():
    windows = ["sun 01:00-02:00 Europe/London"]
    assert not is_open(windows, "2026-03-29T00:30:00Z")
    assert not is_open(windows, "2026-03-29T01:30:00Z")
    result = decide(windows, "2026-03-28T12:00:00Z", override_reason="x")
    assert result["next_open"] == "2026-04-05T00:00:00+00:00"  # next Sunday 01:00 BST


def test_window_starting_in_the_gap_opens_when_the_clock_jumps():
    windows = ["sun 01:30-03:00 Europe/London"]
    assert not is_open(windows, "2026-03-29T00:59:00Z")
    assert is_open(windows, "2026-03-29T01:00:00Z")  # 02:00 BST
    result = decide(windows, "2026-03-28T12:00:00Z", override_reason="x")
    assert result["next_open"] == "2026-03-29T01:00:00+00:00"


def test_fall_back_repeated_hour_is_inside_both_times():
    windows = ["sun 01:00-02:00 Europe/London"]
    assert not is_open(windows, "2026-10-24T23:59:00Z")
    assert is_open(windows, "2026-10-25T00:30:00Z")  # 01:30 BST
    assert is_open(windows, "2026-10-25T01:30:00Z")  # 01:30 GMT
    assert not is_open(windows, "2026-10-25T02:00:00Z")
    assert decide(windows, "2026-10-25T00:30:00Z")["open_until"] == "2026-10-25T02:00:00+00:00"


# ----- the decision -------------------------------------------------------------------------------


def test_open_window_passes_and_ignores_an_override():
    result = decide(LONDON_SUN, "2026-11-29T02:30:00Z", override_reason="not needed")
    assert result["open"] and result["allowed"] and not result["overridden"]
    assert result["reason"] is None
    assert result["next_open"] == "2026-11-29T02:30:00+00:00"
    assert result["open_until"] == "2026-11-29T04:00:00+00:00"
    assert "sun 02:00-04:00 Europe/London is open" in result["msg"]


def test_closed_window_refused_with_site_windows_and_next_opening():
    result = decide([*LONDON_SUN, "tue,thu 22:00-23:30 UTC"], "2026-11-26T01:00:00Z")
    assert not result["open"] and not result["allowed"] and not result["overridden"]
    assert result["next_open"] == "2026-11-26T22:00:00+00:00"
    msg = result["msg"]
    assert msg.startswith("globex-live is outside its maintenance windows")
    assert "sun 02:00-04:00 Europe/London; tue,thu 22:00-23:30 UTC" in msg
    assert "the next opens Thu 2026-11-26 22:00 UTC (2026-11-26T22:00:00+00:00)" in msg
    assert "override_window_reason" in msg


@pytest.mark.parametrize("blank", [None, "", "   ", "\n\t"])
def test_blank_override_is_no_reason(blank):
    assert not decide(LONDON_SUN, "2026-11-26T01:00:00Z", override_reason=blank)["allowed"]


def test_override_lets_a_closed_window_through_and_carries_the_reason():
    result = decide(LONDON_SUN, "2026-11-26T01:00:00Z", override_reason="  security fix MDL-1  ")
    assert result["allowed"] and result["overridden"] and not result["open"]
    assert result["reason"] == "security fix MDL-1"
    assert result["msg"].endswith("overridden: security fix MDL-1")


def test_live_without_windows_is_always_closed():
    result = decide([], "2026-11-29T02:30:00Z")
    assert not result["allowed"] and result["next_open"] is None
    assert "no maintenance window at all" in result["msg"]
    assert decide([], "2026-11-29T02:30:00Z", override_reason="go")["overridden"]


def test_dev_and_qa_without_windows_have_no_constraint():
    assert cw.check("acme-qa", [], "2026-11-26T01:00:00Z")["allowed"]
    assert cw.check("acme-dev", None)["allowed"]
    assert not cw.check("custom", [], tier="live")["allowed"]
    assert not cw.check("oddname", [])["allowed"]  # no tier in the name: treated as Live
    # windows on qa constrain it like Live
    assert not cw.check("acme-qa", LONDON_SUN, "2026-11-26T01:00:00Z")["allowed"]


def test_now_is_the_default():
    result = cw.check("x-live", ["* 00:00-24:00 UTC"])
    assert result["open"] and abs((t(result["at"]) - datetime.now(cw.UTC)).total_seconds()) < 60


# ----- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        (["sun 25:00-26:00"], r"site globex-live: maintenance_windows\[0\]\.start: '25:00' is not HH:MM"),
        (["sun 02:00-02:00"], r"maintenance_windows\[0\]: empty window"),
        (["funday 02:00-04:00"], r"unknown day 'funday'"),
        (["sun 02:00-04:00 Mars/Olympus"], r"'Mars/Olympus' is not a known time zone"),
        (["sometime"], r"'sometime' is not a window like"),
        ([{"days": "sun", "start": 120, "end": "04:00"}], r"quote the time"),
        ([{"days": "sun", "start": "02:00"}], r"maintenance_windows\[0\]\.end: is missing"),
        ([{"days": "sun", "start": "02:00", "end": "03:00", "tz": "UTC"}], r"unknown key 'tz'"),
        ([42], r"maintenance_windows\[0\]: must be a string"),
        (42, r"site globex-live: windows must be a list"),
    ],
)
def test_bad_windows_are_named(windows, message):
    with pytest.raises(cw.ChangeWindowError, match=message):
        decide(windows, "2026-11-26T01:00:00Z")


def test_bad_at_is_named():
    with pytest.raises(cw.ChangeWindowError, match=r"site globex-live: at: 'next sunday' is not an ISO-8601"):
        decide(LONDON_SUN, "next sunday")


# ----- the module -----------------------------------------------------------------------------------


def load_module():
    spec = importlib.util.spec_from_file_location(
        "lms_change_window", REPO / "library" / "lms_change_window.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args: dict, capsys) -> dict:
    mod = load_module()
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    return json.loads(capsys.readouterr().out)


def test_module_documentation_matches_its_argument_spec():
    mod = load_module()
    doc = yaml.safe_load(mod.DOCUMENTATION)
    source = (REPO / "library" / "lms_change_window.py").read_text()
    assert doc["module"] == "lms_change_window" and yaml.safe_load(mod.RETURN)
    assert any("lms_change_window" in task for task in yaml.safe_load(mod.EXAMPLES))
    for name, opt in doc["options"].items():
        assert f'"{name}": {{"type": "{opt["type"]}"' in source, name
    assert set(yaml.safe_load(mod.RETURN)) >= set(cw.check("x-live", ["* 00:00-24:00 UTC"])) - {"site"}


def test_module_passes_refuses_and_overrides(capsys):
    base = {"site": "globex-live", "windows": LONDON_SUN}
    inside = run({**base, "at": "2026-11-29T02:30:00Z"}, capsys)
    assert not inside.get("failed") and inside["changed"] is False and inside["open"]
    outside = run({**base, "at": "2026-11-26T01:00:00Z"}, capsys)
    assert outside["failed"] and "globex-live is outside its maintenance windows" in outside["msg"]
    assert outside["next_open"] == "2026-11-29T02:00:00+00:00"
    over = run({**base, "at": "2026-11-26T01:00:00Z", "override_reason": "hotfix"}, capsys)
    assert not over.get("failed") and over["overridden"] and over["reason"] == "hotfix"


def test_module_check_mode_gives_the_same_result(capsys):
    args = {"site": "globex-live", "windows": LONDON_SUN, "at": "2026-11-26T01:00:00Z"}
    normal = run(args, capsys)
    checked = run({**args, "_ansible_check_mode": True}, capsys)
    assert checked["failed"] and checked["msg"] == normal["msg"]


def test_module_bad_input(capsys):
    result = run({"site": "globex-live", "windows": ["sun 2-4"]}, capsys)
    assert result["failed"] and result["msg"].startswith("site globex-live: maintenance_windows[0].start")
    result = run({"site": "globex-live", "windows": LONDON_SUN, "tier": "prod"}, capsys)
    assert result["failed"] and "tier" in result["msg"]
