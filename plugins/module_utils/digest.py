# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sha256 of a file, read in blocks (release bundles, course backups, a PoC's dump and archive)."""

from __future__ import annotations

import hashlib

CHUNK = 1024 * 1024


def sha256_file(path: str) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
