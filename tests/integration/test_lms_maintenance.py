"""lms_maintenance against a real Moodle: enable/disable/scheduled, message, check mode."""

from __future__ import annotations


def climaintenance(site):
    return (site.dataroot / "climaintenance.html").exists()


def test_enable_with_message_then_disable(lms, moodle_site):
    dry = lms("lms_maintenance", check=True, state="enabled", notice="Back soon (ti)")
    assert not dry.get("failed"), dry
    assert dry["changed"] is True and dry["before"] == "disabled" and dry["after"] == "enabled"
    assert not climaintenance(moodle_site)

    on = lms("lms_maintenance", state="enabled", notice="Back soon (ti)")
    assert on["changed"] is True and on["after"] == "enabled", on
    assert climaintenance(moodle_site)
    assert "Back soon (ti)" in (moodle_site.dataroot / "climaintenance.html").read_text()
    assert lms("lms_maintenance", state="enabled", notice="Back soon (ti)")["changed"] is False

    facts = lms("lms_facts", check_upgrade=False)["lms"]
    assert facts["maintenance_enabled"] is True and facts["maintenance_mode"] == "cli"

    # A new message while in maintenance rewrites the page.
    reworded = lms("lms_maintenance", state="enabled", notice="Back at 23:00 (ti)")
    assert reworded["changed"] is True
    assert "Back at 23:00 (ti)" in (moodle_site.dataroot / "climaintenance.html").read_text()

    dry_off = lms("lms_maintenance", check=True, state="disabled")
    assert dry_off["changed"] is True and climaintenance(moodle_site)
    off = lms("lms_maintenance", state="disabled")
    assert off["changed"] is True and off["after"] == "disabled"
    assert not climaintenance(moodle_site)
    assert lms("lms_maintenance", state="disabled")["changed"] is False


def test_scheduled(lms, moodle_site):
    later = lms("lms_maintenance", state="scheduled", minutes=30)
    assert later["changed"] is True and later["after"] == "scheduled", later
    assert later["scheduled_at"] > 0
    again = lms("lms_maintenance", state="scheduled", minutes=30)
    assert again["changed"] is False and again["scheduled_at"] == later["scheduled_at"]
    facts = lms("lms_facts", check_upgrade=False)["lms"]
    assert facts["maintenance_scheduled"] == later["scheduled_at"] and facts["maintenance_enabled"] is False
    off = lms("lms_maintenance", state="disabled", notice="")
    assert off["changed"] is True and off["after"] == "disabled"


def test_bad_arguments(lms):
    missing = lms("lms_maintenance", state="scheduled")
    assert missing["failed"] and "minutes" in missing["msg"]
    wrong = lms("lms_maintenance", state="enabled", minutes=5)
    assert wrong["failed"] and "minutes is for state=scheduled" in wrong["msg"]
    bad = lms("lms_maintenance", state="sometimes")
    assert bad["failed"] and "value of state must be one of" in bad["msg"]
