"""The harness itself: the local S3 API answers over HTTP and the image recipe is stable."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]


def test_s3_round_trip(s3_endpoint, tmp_path):
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint["endpoint_url"],
        aws_access_key_id=s3_endpoint["access_key"],
        aws_secret_access_key=s3_endpoint["secret_key"],
        region_name=s3_endpoint["region"],
    )
    s3.create_bucket(
        Bucket="harness", CreateBucketConfiguration={"LocationConstraint": s3_endpoint["region"]}
    )
    payload = b"three-instance\n" * 1000
    s3.put_object(Bucket="harness", Key="probe", Body=payload, ServerSideEncryption="AES256")
    body = s3.get_object(Bucket="harness", Key="probe")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(payload).hexdigest()
    # Reachable on all interfaces, as the containers need it (they use the bridge gateway).
    assert s3_endpoint["container_endpoint_url"].startswith("http://10.88.0.1:")


def test_local_s3_cli_start_stop(tmp_path):
    """tools/local_s3.py is what Molecule and `make demo` use: start is idempotent, stop stops."""
    cli = [str(REPO / ".venv/bin/python"), str(REPO / "tools/local_s3.py")]
    state = ["--state-dir", str(tmp_path), "--port", "5099"]
    try:
        subprocess.run([*cli, "start", *state], check=True, capture_output=True)
        subprocess.run([*cli, "start", *state], check=True, capture_output=True)
        assert subprocess.run([*cli, "status", *state], capture_output=True).returncode == 0
    finally:
        subprocess.run([*cli, "stop", *state], check=True, capture_output=True)
    assert subprocess.run([*cli, "status", *state], capture_output=True).returncode == 3


@pytest.mark.skipif(
    subprocess.run(["which", "podman"], capture_output=True).returncode != 0, reason="no podman"
)
def test_test_image_matches_recipe():
    """The image carries the hash of its recipe, so `make setup` only rebuilds when the recipe changes."""
    recipe = (REPO / "tools/build-test-image.sh").read_bytes()
    want = hashlib.sha256(recipe).hexdigest()[:16]
    got = subprocess.run(
        [
            "podman",
            "image",
            "inspect",
            "--format",
            '{{ index .Labels "org.three-instance.recipe" }}',
            "localhost/three-instance-host:bookworm",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert got == want
