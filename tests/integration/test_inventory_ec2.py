"""The three_instance plugin against EC2 (moto server over HTTP) in two regions, through ansible-inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REGIONS = ("eu-west-1", "us-east-2")


def plain(value):
    """`ansible-inventory --list` marks strings that are no templates as {"__ansible_unsafe": ...}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.fixture(scope="module")
def cloud(s3_endpoint):
    """Tagged instances in two regions. Tag keys are unique to this run, so other instances in the
    shared moto server are not seen."""
    prefix = f"t{uuid.uuid4().hex[:6]}"
    tag = {
        "customer": f"{prefix}:customer",
        "tier": f"{prefix}:tier",
        "role": f"{prefix}:role",
        "estate": f"{prefix}:estate",
    }
    clients = {
        region: boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=s3_endpoint["endpoint_url"],
            aws_access_key_id=s3_endpoint["access_key"],
            aws_secret_access_key=s3_endpoint["secret_key"],
        )
        for region in REGIONS
    }

    images = {
        region: client.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        for region, client in clients.items()
    }

    def run(region, customer, tier, roles, name=None, estate_name="cloud"):
        client = clients[region]
        image = images[region]
        tags = [{"Key": tag["customer"], "Value": customer}, {"Key": tag["tier"], "Value": tier}]
        tags.append({"Key": tag["role"], "Value": roles})
        if estate_name:
            tags.append({"Key": tag["estate"], "Value": estate_name})
        if name:
            tags.append({"Key": "Name", "Value": name})
        found = client.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return found["Instances"][0]

    instances = {
        "acme-web1": run("eu-west-1", "acme", "live", "web", "acme-web1"),
        "acme-web2": run("eu-west-1", "acme", "live", "web", "acme-web2"),
        "acme-db1": run("eu-west-1", "acme", "live", "db", "acme-db1"),
        "acme-qa": run("eu-west-1", "acme", "qa", "web,db"),  # no Name tag: the private DNS name
        "stopped": run("eu-west-1", "acme", "qa", "web", "acme-qa-old"),
        "stray": run("eu-west-1", "nobody", "live", "web", "stray1"),
        "globex-live1": run("us-east-2", "globex", "live", "web db", "globex-live1"),
        "globex-qa1": run("us-east-2", "globex", "qa", "web,db", "globex-qa1"),
        # someone tags an instance into acme's Live: without the estate tag it never joins
        "intruder": run("eu-west-1", "acme", "live", "web", "intruder1", estate_name=None),
        "other-estate": run("eu-west-1", "acme", "live", "web", "other1", estate_name="elsewhere"),
        # a Name tag that is a path: skipped, never a host name (nor a fact cache file name)
        "traversal": run("eu-west-1", "acme", "qa", "web", "../../../tmp/x"),
    }
    clients["eu-west-1"].stop_instances(InstanceIds=[instances["stopped"]["InstanceId"]])
    return {"tag": tag, "instances": instances, "clients": clients, "endpoint": s3_endpoint}


def estate(cloud, tmp_path: Path, **extra) -> Path:
    data = {
        "plugin": "three_instance",
        "name": "cloud",
        "ec2": True,
        "regions": list(REGIONS),
        "endpoint_url": cloud["endpoint"]["endpoint_url"],
        "aws_access_key": cloud["endpoint"]["access_key"],
        "aws_secret_key": cloud["endpoint"]["secret_key"],
        "tag_customer": cloud["tag"]["customer"],
        "tag_tier": cloud["tag"]["tier"],
        "tag_roles": cloud["tag"]["role"],
        "tag_estate": cloud["tag"]["estate"],
        "ec2_filters": {f"tag:{cloud['tag']['estate']}": "cloud"},
        "tiers": {
            "dev": {"wwwroot": "http://{customer}.dev.lan", "hosts": {"devbox1": ["web", "db"]}},
            "qa": {"wwwroot": "https://{customer}-qa.lms.example.net"},
            "live": {
                "wwwroot": "https://{customer}.lms.example.net",
                "maintenance_windows": ["sun 02:00-04:00"],
            },
        },
        "hosts": {"devbox1": {"ansible_host": "192.168.50.10"}},
        "customers": {
            "acme": {"flavour": "moodle", "tiers": {"dev": {}, "qa": {}, "live": {}}},
            "globex": {"flavour": "totara", "tiers": {"dev": {}, "qa": {}, "live": {}}},
        },
        **extra,
    }
    path = tmp_path / "cloud.estate.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def inventory(path: Path, *args, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "1"
    result = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
        return plain(json.loads(result.stdout)), result.stderr
    return None, result.stderr


def hosts_of(data: dict, group: str) -> set[str]:
    return set(data.get(group, {}).get("hosts", []))


def test_groups_and_vars_from_two_regions(cloud, tmp_path):
    data, stderr = inventory(estate(cloud, tmp_path))
    inst = cloud["instances"]
    acme_qa_name = inst["acme-qa"]["PrivateDnsName"]

    assert hosts_of(data, "acme_live") == {"acme-web1", "acme-web2", "acme-db1"}
    assert hosts_of(data, "acme_qa") == {acme_qa_name}  # the stopped instance is not listed
    assert hosts_of(data, "globex_live") == {"globex-live1"}
    assert hosts_of(data, "globex_qa") == {"globex-qa1"}
    assert hosts_of(data, "acme_dev") == hosts_of(data, "globex_dev") == {"devbox1"}
    assert hosts_of(data, "web") == {
        "devbox1",
        "acme-web1",
        "acme-web2",
        acme_qa_name,
        "globex-live1",
        "globex-qa1",
    }
    assert hosts_of(data, "db") == {"devbox1", "acme-db1", acme_qa_name, "globex-live1", "globex-qa1"}
    assert sorted(data["live"]["children"]) == ["acme_live", "globex_live"]
    assert data["totara"]["children"] == ["globex"]
    assert sorted(data["acme"]["children"]) == ["acme_dev", "acme_live", "acme_qa"]
    assert "stray1" not in data["_meta"]["hostvars"]
    assert "acme-qa-old" not in data["_meta"]["hostvars"]
    assert not {"intruder1", "other1", "../../../tmp/x"} & set(data["_meta"]["hostvars"])
    assert inst["traversal"]["InstanceId"] not in data["_meta"]["hostvars"]
    assert (
        f"EC2 instance {inst['traversal']['InstanceId']} in eu-west-1: host name '../../../tmp/x'" in stderr
    )
    assert (
        f"EC2 instance {inst['stray']['InstanceId']} in eu-west-1: tag {cloud['tag']['customer']}='nobody'"
        in stderr
    )

    hv = data["_meta"]["hostvars"]
    web1 = hv["acme-web1"]
    assert web1["ansible_host"] == inst["acme-web1"]["PrivateIpAddress"]
    assert web1["ec2_instance_id"] == inst["acme-web1"]["InstanceId"]
    assert web1["ec2_region"] == "eu-west-1"
    assert web1["estate_name"] == "cloud"
    assert web1["estate_site_name"] == "acme-live"
    assert web1["estate_customer"] == "acme"
    assert web1["estate_tier"] == "live" and web1["estate_tier_rank"] == 2
    assert web1["estate_wwwroot"] == "https://acme.lms.example.net"
    site = web1["estate_site"]
    assert site["host_roles"] == ["web"]
    assert sorted(site["web_hosts"]) == ["acme-web1", "acme-web2"]
    assert site["db_hosts"] == ["acme-db1"]
    assert site["promotes_from"] == "qa"
    assert site["maintenance_windows"] == [
        {"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "UTC"}
    ]

    globex = hv["globex-live1"]
    assert globex["ec2_region"] == "us-east-2"
    assert globex["estate_flavour"] == "totara"
    assert globex["estate_host_roles"] == ["web", "db"]
    assert hv[acme_qa_name]["estate_site"]["host_roles"] == ["web", "db"]

    devbox = hv["devbox1"]
    assert devbox["ansible_host"] == "192.168.50.10"
    assert [s["name"] for s in devbox["estate_sites"]] == ["acme-dev", "globex-dev"]
    assert "ec2_instance_id" not in devbox


def test_public_address_and_keyed_groups(cloud, tmp_path):
    path = estate(
        cloud,
        tmp_path,
        ec2_ansible_host="ip-address",
        hostnames=["instance-id"],
        keyed_groups=[{"key": "ec2_region | default('static')", "prefix": "region"}],
    )
    data, _ = inventory(path)
    inst = cloud["instances"]["globex-live1"]
    host = data["_meta"]["hostvars"][inst["InstanceId"]]
    assert host["ansible_host"] == inst["PublicIpAddress"]
    assert hosts_of(data, "region_us_east_2") == {
        inst["InstanceId"],
        cloud["instances"]["globex-qa1"]["InstanceId"],
    }
    assert hosts_of(data, "region_static") == {"devbox1"}


def test_ec2_without_the_estate_filter_is_refused(cloud, tmp_path):
    path = estate(cloud, tmp_path)
    data = yaml.safe_load(path.read_text())
    del data["ec2_filters"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _, stderr = inventory(path, check=False)
    assert "ec2_filters: ec2: true needs the estate tag filter" in stderr


def test_unknown_instances_fail_when_asked(cloud, tmp_path):
    # instance ids as names: the instance with a path for a Name tag fails only the name rule
    path = estate(cloud, tmp_path, ec2_unknown="error", hostnames=["instance-id"])
    _, stderr = inventory(path, check=False)
    assert f"tag {cloud['tag']['customer']}='nobody' names no customer of the estate" in stderr


def test_ec2_part_is_cached(cloud, tmp_path):
    cache_dir = tmp_path / "cache"
    path = estate(
        cloud, tmp_path, cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache_dir)
    )
    data, _ = inventory(path)
    assert "globex-qa1" in data["_meta"]["hostvars"]
    assert list(cache_dir.iterdir()), "nothing was cached"

    cloud["clients"]["us-east-2"].terminate_instances(
        InstanceIds=[cloud["instances"]["globex-qa1"]["InstanceId"]]
    )
    try:
        cached, _ = inventory(path)
        assert "globex-qa1" in cached["_meta"]["hostvars"]  # from the cache
        fresh, _ = inventory(path, "--flush-cache")
        assert "globex-qa1" not in fresh["_meta"]["hostvars"]
        assert hosts_of(fresh, "globex_live") == {"globex-live1"}
    finally:
        cloud["instances"].pop("globex-qa1")


def test_bad_endpoint_is_a_clear_error(cloud, tmp_path):
    path = estate(cloud, tmp_path, endpoint_url="http://127.0.0.1:9", regions=["eu-west-1"])
    _, stderr = inventory(path, check=False)
    assert "EC2 discovery in region eu-west-1 failed" in stderr


def test_export_is_plain_but_tag_templates_stay_data(cloud, tmp_path, unsafe_markers):
    """AWX stores `--list --export` as host vars: plain values, except EC2 strings that look like
    templates, which stay wrapped (data, never run) - issue 20."""
    evil = "{{ lookup('pipe', 'id') }}"
    web1 = cloud["instances"]["acme-web1"]["InstanceId"]
    cloud["clients"]["eu-west-1"].create_tags(Resources=[web1], Tags=[{"Key": "Note", "Value": evil}])
    path = estate(cloud, tmp_path)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")

    def run(*args):
        result = subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    exported = json.loads(run("ansible-inventory", "-i", str(path), "--list", "--export"))
    assert list(unsafe_markers(exported)) == [("._meta.hostvars.acme-web1.ec2_tags.Note", evil)]
    # (`--host` prints no markers at all in ansible-core 2.19: its output is not meant to be re-read)
    host = json.loads(run("ansible-inventory", "-i", str(path), "--list"))["_meta"]["hostvars"]["acme-web1"]
    assert host["ec2_tags"]["Note"] == {"__ansible_unsafe": evil}
    assert host["ec2_tags"]["Name"] == "acme-web1" and host["estate_site_name"] == "acme-live"
    debug = run("ansible", "acme-web1", "-i", str(path), "-m", "debug", "-a", "var=ec2_tags.Note")
    assert f'"ec2_tags.Note": "{evil}"' in debug  # the raw string, not the output of `id`
    assert "uid=" not in debug
