"""The three_instance inventory plugin inside Ansible: options, errors, constructed groups, CLI, docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.plugins.loader import inventory_loader

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
inventory_loader.add_directory(str(REPO / "plugins" / "inventory"))

ESTATE = {
    "plugin": "three_instance",
    "name": "unit",
    "tiers": {
        "dev": {"wwwroot": "http://{customer}-dev.lan", "hosts": {"dev1": ["web", "db"]}},
        "qa": {"wwwroot": "http://{customer}-qa.lan", "hosts": {"qa1": ["web", "db"]}},
        "live": {"wwwroot": "https://{customer}.example.net", "maintenance_windows": ["sun 02:00-04:00"]},
    },
    "hosts": {"dev1": {"ansible_host": "192.0.2.10"}, "qa1": {}, "live1": {}, "live2": {}},
    "customers": {
        "acme": {
            "flavour": "moodle",
            "tiers": {"dev": {}, "qa": {}, "live": {"hosts": {"live1": ["web", "db"]}}},
        },
        "initech": {
            "flavour": "totara",
            "tiers": {"dev": {}, "qa": {}, "live": {"hosts": {"live2": ["web", "db"]}}},
        },
    },
}


def write(tmp_path: Path, data, name="estate.yml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def run_plugin(path: Path, inventory: InventoryData | None = None) -> InventoryData:
    inventory = inventory or InventoryData()
    plugin = inventory_loader.get("three_instance")
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=False)
    return inventory


def members(inventory: InventoryData, group: str) -> set[str]:
    return {h.name for h in inventory.groups[group].get_hosts()}


def test_verify_file(tmp_path):
    plugin = inventory_loader.get("three_instance")
    for name, wanted in [
        ("estate.yml", True),
        ("cloud.estate.yaml", True),
        ("hosts.yml", False),
        ("estate.json", False),
    ]:
        path = tmp_path / name
        path.write_text("plugin: three_instance\n")
        assert plugin.verify_file(str(path)) is wanted, name


def test_groups_and_host_vars(tmp_path):
    inv = run_plugin(write(tmp_path, ESTATE))
    assert members(inv, "dev") == {"dev1"}
    assert members(inv, "live") == {"live1", "live2"}
    assert members(inv, "acme") == {"dev1", "qa1", "live1"}
    assert members(inv, "acme_live") == {"live1"}
    assert members(inv, "totara") == {"dev1", "qa1", "live2"}
    assert members(inv, "web") == members(inv, "db") == {"dev1", "qa1", "live1", "live2"}
    assert {g.name for g in inv.groups["acme_dev"].parent_groups} == {"acme", "dev"}
    dev1 = inv.get_host("dev1").get_vars()
    assert dev1["ansible_host"] == "192.0.2.10"
    assert dev1["estate_name"] == "unit"
    assert [s["name"] for s in dev1["estate_sites"]] == ["acme-dev", "initech-dev"]
    live2 = inv.get_host("live2").get_vars()
    assert live2["estate_site_name"] == "initech-live"
    assert live2["estate_flavour"] == "totara"
    assert live2["estate_site"]["maintenance_windows"] == [
        {"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "UTC"}
    ]


def test_estate_name_defaults_to_directory(tmp_path):
    data = dict(ESTATE)
    del data["name"]
    folder = tmp_path / "northwind"
    folder.mkdir()
    inv = run_plugin(write(folder, data))
    assert inv.get_host("qa1").get_vars()["estate_name"] == "northwind"


def test_validation_error_names_file_customer_and_field(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(ESTATE))
    data["customers"]["acme"]["tiers"]["live"]["maintenance_windows"] = ["sun 25:00-26:00"]
    path = write(tmp_path, data)
    with pytest.raises(AnsibleParserError) as info:
        run_plugin(path)
    assert str(info.value.message) == (
        f"{path}: customer 'acme', tier 'live', maintenance_windows[0].start: '25:00' is not HH:MM"
    )


def test_top_level_typo(tmp_path):
    data = dict(ESTATE, hostnames_=["tag:Name"])
    with pytest.raises(AnsibleParserError, match=r"unknown key 'hostnames_' .* did you mean 'hostnames'\?"):
        run_plugin(write(tmp_path, data))


def test_duplicate_customer_in_file(tmp_path):
    text = yaml.safe_dump(ESTATE, sort_keys=False) + "\n"
    text = text.replace("customers:\n", "customers:\n  initech:\n    flavour: moodle\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(
        AnsibleParserError,
        match=r"customer 'initech': customer defined twice \(line \d+, first at line \d+\)",
    ):
        run_plugin(path)


def test_duplicate_site_across_estate_files(tmp_path):
    inv = run_plugin(write(tmp_path, ESTATE, "a.estate.yml"))
    other = dict(ESTATE, hosts={"dev1": {}, "qa1": {}, "live1": {}, "live2": {}})
    with pytest.raises(AnsibleParserError, match=r"customer 'acme', tier 'dev': duplicate site 'acme-dev'"):
        run_plugin(write(tmp_path, other, "b.estate.yml"), inv)


def test_constructed_options(tmp_path):
    data = dict(
        ESTATE,
        compose={"lms_url": "estate_sites[0].wwwroot", "is_shared": "estate_sites | length > 1"},
        groups={"shared_hosts": "estate_sites | length > 1"},
        keyed_groups=[
            {"key": "estate_host_roles", "prefix": "role"},
            {"key": "lms_url.split(':')[0]", "prefix": "scheme"},
        ],
    )
    inv = run_plugin(write(tmp_path, data))
    assert inv.get_host("dev1").get_vars()["lms_url"] == "http://acme-dev.lan"
    assert inv.get_host("dev1").get_vars()["is_shared"] is True
    assert members(inv, "shared_hosts") == {"dev1", "qa1"}
    assert members(inv, "role_web") == {"dev1", "qa1", "live1", "live2"}
    # keyed groups see composed vars
    assert members(inv, "scheme_https") == {"live1", "live2"}
    assert members(inv, "scheme_http") == {"dev1", "qa1"}


def test_limit_sites_option(tmp_path):
    inv = run_plugin(write(tmp_path, dict(ESTATE, limit_sites=["acme-*"])))
    assert set(inv.hosts) == {"dev1", "qa1", "live1"}
    assert [s["name"] for s in inv.get_host("dev1").get_vars()["estate_sites"]] == ["acme-dev"]
    assert "initech_dev" not in inv.groups


def test_option_aliases_and_templated_credentials(tmp_path):
    data = dict(ESTATE, access_key="AKID", profile="ops", endpoint_url="{{ 'http://127.0.0.1' ~ ':5055' }}")
    path = write(tmp_path, data)
    plugin = inventory_loader.get("three_instance")
    plugin.parse(InventoryData(), DataLoader(), str(path), cache=False)
    assert plugin.get_option("aws_access_key") == "AKID"
    assert plugin.get_option("aws_profile") == "ops"
    assert plugin._option("endpoint_url") == "http://127.0.0.1:5055"


def test_vault_values(tmp_path):
    """A file with vault values goes through Ansible's loader; the values stay encrypted."""
    secret = [("default", VaultSecret(b"s3cret"))]
    cipher = VaultLib(secret).encrypt("hunter2").decode()
    data = yaml.safe_load(yaml.safe_dump(ESTATE))
    data["hosts"]["dev1"]["ansible_become_password"] = "VAULT"
    text = yaml.safe_dump(data, sort_keys=False)
    text = text.replace(
        "ansible_become_password: VAULT",
        "ansible_become_password: !vault |\n      " + cipher.replace("\n", "\n      "),
    )
    loader = DataLoader()
    loader.set_vault_secrets(secret)
    inventory = InventoryData()
    plugin = inventory_loader.get("three_instance")
    plugin.parse(inventory, loader, str(write(tmp_path, text)), cache=False)
    hostvars = inventory.get_host("dev1").get_vars()
    assert "ansible_become_password" in hostvars
    assert "hunter2" not in repr(hostvars["ansible_become_password"])  # still encrypted in the inventory
    assert hostvars["ansible_host"] == "192.0.2.10"


# ------------------------------------------------------------------------------------------- CLI


def plain(value):
    """`ansible-inventory --list` marks strings that are no templates as {"__ansible_unsafe": ...}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_list(*args, env=None):
    result = cli("ansible-inventory", *args, "--list", env=env)
    return plain(json.loads(result.stdout)), result.stderr


def cli(*args, env=None, check=True):
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **(env or {}))
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_graph_of_example_estate():
    out = cli("ansible-inventory", "-i", "inventories/example", "--graph").stdout
    for line in ("|--@dev:", "|  |--@acme_dev:", "|--@totara:", "|  |--@initech:", "|  |  |--@initech_live:"):
        assert line in out
    data, stderr = inventory_list("-i", "inventories/example")
    assert data["globex_live"]["hosts"] == ["globex-web1", "globex-web2", "globex-db1"]
    assert sorted(data["moodle"]["children"]) == ["acme", "globex"]
    devbox = data["_meta"]["hostvars"]["devbox1"]
    assert [s["name"] for s in devbox["estate_sites"]] == ["acme-dev", "globex-dev", "initech-dev"]
    assert "WARNING" not in stderr


def test_cli_list_of_local_estate():
    data, stderr = inventory_list("-i", "inventories/local")
    hostvars = data["_meta"]["hostvars"]
    assert set(hostvars) == {"dev1", "qa1", "live1"}
    assert data["dev"]["children"] == ["acme_dev", "globex_dev"]
    assert hostvars["dev1"]["ansible_connection"] == "podman_pipelined"
    assert [s["customer"] for s in hostvars["dev1"]["estate_sites"]] == ["acme", "globex"]
    assert hostvars["live1"]["estate_site"]["wwwroot"] == "http://acme-live.local"
    assert "WARNING" not in stderr


def test_cli_site_limit_from_environment():
    data, _ = inventory_list("-i", "inventories/local", env={"THREE_INSTANCE_SITES": "globex-*"})
    assert [s["name"] for s in data["_meta"]["hostvars"]["dev1"]["estate_sites"]] == ["globex-dev"]
    assert "live1" not in data["_meta"]["hostvars"]


def test_cli_reports_the_validation_error(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(ESTATE))
    data["customers"]["acme"]["tiers"]["prod"] = {}
    path = write(tmp_path, data)
    result = cli(
        "ansible-inventory",
        "-i",
        str(path),
        "--list",
        env={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "1"},
        check=False,
    )
    assert result.returncode != 0
    assert "customer 'acme', tiers: unknown tier 'prod' (tiers are dev, qa, live)" in result.stderr


def test_ansible_doc_documents_every_option():
    doc = json.loads(cli("ansible-doc", "-t", "inventory", "--json", "three_instance").stdout)[
        "three_instance"
    ]["doc"]
    options = doc["options"]
    names = [
        "plugin",
        "name",
        "timezone",
        "vars",
        "tiers",
        "customers",
        "hosts",
        "host_roles",
        "limit_sites",
        "ec2",
        "regions",
        "endpoint_url",
        "aws_access_key",
        "aws_secret_key",
        "aws_security_token",
        "aws_profile",
        "tag_customer",
        "tag_tier",
        "tag_roles",
        "tag_estate",
        "ec2_filters",
        "hostnames",
        "ec2_ansible_host",
        "ec2_unknown",
        "compose",
        "groups",
        "keyed_groups",
        "strict",
        "cache",
        "cache_plugin",
        "cache_timeout",
        "cache_connection",
    ]
    for name in names:
        assert name in options, name
        assert options[name].get("description"), name


# ----- EC2 discovery needs an estate tag filter (issue 17, item 8) ----------------------------------------


def test_ec2_without_the_estate_tag_filter_is_refused(tmp_path, monkeypatch):
    from ansible.plugins.inventory import three_instance

    def no_query(*args, **kwargs):
        raise AssertionError("EC2 was queried although the estate has no estate tag filter")

    monkeypatch.setattr(three_instance.InventoryModule, "_query_ec2", no_query)
    data = {**ESTATE, "ec2": True, "regions": ["eu-west-1"]}
    with pytest.raises(AnsibleParserError) as info:
        run_plugin(write(tmp_path, data))
    message = str(info.value)
    assert "estate.yml: ec2_filters: ec2: true needs the estate tag filter" in message
    assert "'tag:lms:estate': 'unit'" in message


def test_ec2_filter_and_record_check_reach_the_query(tmp_path, monkeypatch):
    from ansible.plugins.inventory import three_instance

    seen = {}

    def fake_query(self, settings, source):
        seen.update(settings)
        inst = {
            "InstanceId": "i-9",
            "PrivateIpAddress": "10.0.0.9",
            "Tags": [
                {"Key": "lms:customer", "Value": "acme"},
                {"Key": "lms:tier", "Value": "qa"},
                {"Key": "lms:role", "Value": "web"},
                {"Key": "lms:estate", "Value": "unit"},
                {"Key": "Name", "Value": "../../../tmp/x"},
            ],
        }
        return [three_instance._estate().ec2_record(inst, "eu-west-1")]

    monkeypatch.setattr(three_instance.InventoryModule, "_query_ec2", fake_query)
    data = {**ESTATE, "ec2": True, "regions": ["eu-west-1"], "ec2_filters": {"tag:lms:estate": "unit"}}
    inv = run_plugin(write(tmp_path, data))
    assert seen["filters"] == {"tag:lms:estate": "unit"}
    assert "../../../tmp/x" not in inv.hosts and "i-9" not in inv.hosts


# ----- AWX stores `ansible-inventory --list --export` as host vars (issue 20) ------------------------


def test_cli_export_of_example_estate_is_plain(unsafe_markers):
    out = cli("ansible-inventory", "-i", "inventories/example", "--list", "--export").stdout
    assert list(unsafe_markers(json.loads(out))) == []
    assert "__ansible_unsafe" not in out


def test_cli_export_keeps_the_operators_templates(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(ESTATE))
    data["vars"] = {"lms_greeting": "{{ 'hi' | upper }}", "lms_plain": "hello"}
    data["hosts"]["dev1"]["ansible_connection"] = "local"
    path = write(tmp_path, data)
    out = cli("ansible-inventory", "-i", str(path), "--host", "dev1", "--export").stdout
    assert "__ansible_unsafe" not in out  # trusted, as in a YAML inventory: AWX stores plain strings
    assert json.loads(out)["estate_sites"][0]["vars"]["lms_greeting"] == "{{ 'hi' | upper }}"
    debug = cli("ansible", "dev1", "-i", str(path), "-m", "debug", "-a", "var=estate_name").stdout
    assert '"estate_name": "unit"' in debug
    debug = cli(
        "ansible", "dev1", "-i", str(path), "-m", "debug", "-a", "var=estate_sites[0].vars.lms_greeting"
    ).stdout
    assert '"HI"' in debug  # the operator's template is one


def test_ec2_tag_that_looks_like_a_template_stays_data(tmp_path, monkeypatch):
    from ansible.template import Templar, is_trusted_as_template, trust_as_template

    three_instance = sys.modules[type(inventory_loader.get("three_instance")).__module__]

    evil = "{{ lookup('pipe', 'id') }}"

    def fake_query(self, settings, source):
        inst = {
            "InstanceId": "i-9",
            "PrivateIpAddress": "10.0.0.9",
            "Tags": [
                {"Key": "lms:customer", "Value": "acme"},
                {"Key": "lms:tier", "Value": "qa"},
                {"Key": "lms:role", "Value": "web"},
                {"Key": "lms:estate", "Value": "unit"},
                {"Key": "Name", "Value": "acme-qa9"},
                {"Key": "Note", "Value": evil},
            ],
        }
        return [three_instance._estate().ec2_record(inst, "eu-west-1")]

    monkeypatch.setattr(three_instance.InventoryModule, "_query_ec2", fake_query)
    data = {**ESTATE, "ec2": True, "regions": ["eu-west-1"], "ec2_filters": {"tag:lms:estate": "unit"}}
    data["vars"] = {"lms_greeting": "{{ 'hi' | upper }}"}
    inv = run_plugin(write(tmp_path, data))
    hostvars = inv.get_host("acme-qa9").get_vars()
    note = hostvars["ec2_tags"]["Note"]
    assert note == evil and not is_trusted_as_template(note)
    for value in (hostvars["ec2_tags"]["Name"], hostvars["ansible_host"], hostvars["estate_site_name"]):
        assert is_trusted_as_template(value)  # plain data: exported plain
    templar = Templar(loader=DataLoader(), variables=hostvars)
    assert templar.template(trust_as_template("{{ ec2_tags.Note }}")) == evil  # not the output of `id`
    assert templar.template(trust_as_template("{{ estate_site.vars.lms_greeting }}")) == "HI"
