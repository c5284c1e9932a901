"""onboard.yml with a PoC handed over in a bucket (from=s3://<bucket>/<prefix>, poc_store; AWX's
"Onboard a customer"), against the local S3 API: the bucket is read on the controller before any
host is touched, and a hand-over without the PoC's two files is refused naming what it holds. The
estate's hosts are unreachable (test_bad_input's estate): only localhost may run. The fetch and the
adoption from a bucket run on the stack's hosts (molecule/stack/tests/test_onboard.py).
"""

from __future__ import annotations

import json

import pytest
from ansible_cli import ansible_playbook
from test_backup import bucket  # noqa: F401 - a fixture
from test_bad_input import POC_URL, recap_rows, unreachable_estate  # noqa: F401 - a fixture

# what the prefix holds -> what the refusal says it has
HANDOVERS = {
    "only the dump": ({"database.pgdump": b"PGDMP"}, "it has database.pgdump;"),
    "only the archive": ({"dataroot.tar.gz": b"\x1f\x8b"}, "it has dataroot.tar.gz;"),
    "two dumps": (
        {"database.pgdump": b"PGDMP", "database.sql.gz": b"\x1f\x8b", "dataroot.tar.gz": b"\x1f\x8b"},
        "it has database.pgdump, database.sql.gz, dataroot.tar.gz;",
    ),
    "the files one folder down": (
        {"old/database.pgdump": b"PGDMP", "old/dataroot.tar.gz": b"\x1f\x8b"},
        "it has neither",
    ),
}


def onboard(estate: str, tmp_path, bucket, **extra):  # noqa: F811 - the fixture
    """onboard.yml with the hand-over bucket's key in a 0600 file (-e @file), never on the command line."""
    info = bucket["endpoint"]
    extra["poc_store"] = {key: info[key] for key in ("endpoint_url", "region", "access_key", "secret_key")}
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    extra_file.chmod(0o600)
    return ansible_playbook("-i", estate, "playbooks/onboard.yml", "-e", f"@{extra_file}", timeout=300)


@pytest.mark.parametrize("case", list(HANDOVERS))
def test_a_handover_without_the_pocs_files_is_refused_before_any_host(
    unreachable_estate,  # noqa: F811 - the fixture
    bucket,  # noqa: F811 - the fixture
    tmp_path,
    case,
):
    objects, message = HANDOVERS[case]
    prefix = f"handover/{case.replace(' ', '-')}"
    for name, body in objects.items():
        bucket["client"].put_object(Bucket=bucket["name"], Key=f"{prefix}/{name}", Body=body)
    out = onboard(unreachable_estate, tmp_path, bucket, customer="acme", from_wwwroot=POC_URL,
                  **{"from": f"s3://{bucket['name']}/{prefix}/"})  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert f"s3://{bucket['name']}/{prefix}/ must hold one database dump" in text, text[-3000:]
    assert message in text, text[-3000:]
    rows = recap_rows(out.stdout)
    assert set(rows) == {"localhost"}, rows  # no host was contacted, QA's lock not taken
    assert bucket["endpoint"]["secret_key"] not in text  # the credential is not printed


def test_a_bucket_that_is_not_there_is_refused_before_any_host(unreachable_estate, bucket, tmp_path):  # noqa: F811
    out = onboard(unreachable_estate, tmp_path, bucket, customer="acme", from_wwwroot=POC_URL,
                  **{"from": "s3://no-such-handover/initech"})  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "The bucket no-such-handover does not exist" in text, text[-3000:]
    assert set(recap_rows(out.stdout)) == {"localhost"}
    assert bucket["endpoint"]["secret_key"] not in text
