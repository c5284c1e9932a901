# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`echo`: an input as a refusal message shows it, cut short (a 5,000-character value is not
printed back whole). Used by every input check of the playbooks."""

from __future__ import annotations


def echo(value, limit: int = 80) -> str:
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class FilterModule:
    def filters(self):
        return {"echo": echo}
