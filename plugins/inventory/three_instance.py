# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin three_instance: the estate as customers x tiers (static hosts and EC2 discovery).

The parsing, validation and inventory model live in plugins/module_utils/estate.py (pure Python,
unit-tested on its own); this file reads the options, queries EC2, caches, and fills the inventory.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: three_instance
short_description: The estate of Moodle/Totara customers, each with dev, qa and live sites
description:
  - Reads an estate file (its name ends in C(estate.yml) or C(estate.yaml)) that declares the
    customers of a hosting provider, each with three sites - C(dev), C(qa) and C(live) - and
    builds the inventory from it.
  - Hosts come from the estate file (static hosts, for example a Dev server on a local network that
    carries many customers' dev sites) and, when O(ec2) is true, from EC2 instances found with boto3
    by their tags (O(tag_customer), O(tag_tier), O(tag_roles)) in the listed O(regions).
  - "Groups: one per tier (V(dev), V(qa), V(live)); one per customer (its name, e.g. V(acme)), a
    child of its flavour group (V(moodle) or V(totara)); one per site (V(acme_dev)), a child of its
    customer group and of its tier group; one per host role (V(web), V(db)). Hosts are members of
    their site and host-role groups."
  - "Host vars: C(estate_name), C(estate_sites) (the list of the sites the host serves, each a dict
    with name, customer, tier, flavour, wwwroot, tier_rank, promotes_from, maintenance_windows,
    group, site_user, db_name, db_user, code_dir, dataroot, host_roles, web_hosts, db_hosts and
    vars), C(estate_host_roles); when all the host's sites are on
    one tier C(estate_tier) and C(estate_tier_rank); when the host has exactly one site also
    C(estate_site), C(estate_site_name), C(estate_customer), C(estate_flavour) and C(estate_wwwroot).
    See docs/inventory.md."
  - Every problem in the estate fails with a message that names the file, the customer and the field.
  - Only the EC2 part is cached (O(cache)); the estate file is read on every run.
version_added: 1.0.0
author:
  - three-instance engineers
requirements:
  - PyYAML
  - boto3 and botocore (only when O(ec2=true))
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as an estate for this plugin.
    required: true
    type: str
    choices: [three_instance]
  name:
    description:
      - The estate's name, exposed as the host var C(estate_name).
      - Defaults to the name of the directory that holds the estate file
        (C(inventories/example/estate.yml) gives V(example)).
    type: str
  timezone:
    description: Time zone of maintenance windows that name none (an IANA name such as V(Europe/London)).
    type: str
    default: UTC
  code_root:
    description:
      - The folder under which every host keeps the sites' code, one folder per site
        (C(<code_root>/<site>) with C(releases/) and the C(current) link); each site's C(code_dir).
    type: str
    default: /srv/lms
  data_root:
    description:
      - The folder under which every host keeps the sites' Moodle data, one folder per site
        (C(<data_root>/<site>)); each site's C(dataroot). Must differ from O(code_root).
    type: str
    default: /var/lib/lms
  vars:
    description:
      - Free variables of every site, the lowest layer of a site's C(vars)
        (estate O(vars) < tier O(tiers) vars < customer vars < the customer's per-tier vars;
        top-level keys replace).
    type: dict
    default: {}
  tiers:
    description:
      - Defaults for whole tiers, keyed V(dev), V(qa), V(live); each customer may override them.
      - "Each tier may set C(wwwroot) (a pattern with the placeholders C({customer}) and C({tier}),
        e.g. C(https://{customer}-{tier}.lms.example.net)), C(hosts) (static hosts of the tier's sites,
        a mapping of host name to its host roles, e.g. a shared Dev server), C(maintenance_windows)
        and C(vars)."
    type: dict
    default: {}
  customers:
    description:
      - The customers, keyed by name - lowercase letters and digits, starting with a letter, and not
        the name of a tier, flavour or host role.
      - "Each has C(flavour) (V(moodle) or V(totara)), optional C(vars), and C(tiers) with all three
        keys V(dev), V(qa) and V(live) (V({}) takes the tier defaults). A tier may set C(wwwroot),
        C(hosts), C(maintenance_windows) and C(vars); C(hosts) and C(maintenance_windows) replace the
        tier defaults, C(vars) are merged over them."
      - "A maintenance window is a string C(days start-end [timezone]) such as
        V(sun 02:00-04:00 Europe/London), V(mon-fri 22:00-23:30) or V(sat,sun 01:00-05:00), or a
        mapping with C(days), C(start), C(end) and optional C(timezone). An end before the start runs
        past midnight. Every Live site must have at least one window."
    type: dict
    required: true
  hosts:
    description:
      - The static hosts, keyed by inventory host name, each with its own host vars (for example
        C(ansible_host), C(ansible_user), C(ansible_connection)), passed through unchanged.
      - A site's C(hosts) may only name hosts declared here (typos are caught).
    type: dict
    default: {}
  host_roles:
    description: The host roles a host may have in a site; each becomes a group.
    type: list
    elements: str
    default: [web, db]
  limit_sites:
    description:
      - Build the inventory for these sites only (shell patterns on site names such as V(acme-*) or
        V(*-live), or customer names). Other sites, and hosts that serve none of the chosen sites,
        are left out, so a shared host's C(estate_sites) lists only the chosen sites.
      - Unlike C(--limit), which selects hosts, this selects sites.
        A pattern that matches no site is an error.
    type: list
    elements: str
    env:
      - name: THREE_INSTANCE_SITES
  ec2:
    description: Discover hosts among the running EC2 instances that carry the O(tag_customer) tag.
    type: bool
    default: false
  regions:
    description:
      - The AWS regions to search, queried in parallel. Defaults to the region of the boto3
        session (C(AWS_DEFAULT_REGION) or the profile's region).
    type: list
    elements: str
    default: []
  endpoint_url:
    description: URL of the EC2 API to use instead of AWS's (for example a moto server over HTTP in tests).
    type: str
    env:
      - name: AWS_ENDPOINT_URL_EC2
  aws_access_key:
    description:
      - AWS access key id. When unset, boto3's standard credential chain applies
        (environment, shared credentials and config files, container or instance role).
    type: str
    aliases: [access_key]
  aws_secret_key:
    description: AWS secret access key; see O(aws_access_key).
    type: str
    aliases: [secret_key]
  aws_security_token:
    description: AWS session token for temporary credentials.
    type: str
    aliases: [session_token]
  aws_profile:
    description: Named profile of the shared AWS config files.
    type: str
    aliases: [profile]
  tag_customer:
    description: The EC2 tag that names an instance's customer (only instances with this tag are listed).
    type: str
    default: "lms:customer"
  tag_tier:
    description: The EC2 tag that names an instance's tier (V(dev), V(qa) or V(live)).
    type: str
    default: "lms:tier"
  tag_roles:
    description: The EC2 tag that lists an instance's host roles, separated by commas or spaces (V(web,db)).
    type: str
    default: "lms:role"
  tag_estate:
    description:
      - The EC2 tag that names an instance's estate. With O(ec2=true), O(ec2_filters) must hold
        C(tag:<tag_estate>) equal to the estate's O(name), and an instance whose tag differs is skipped
        with a warning, so that an instance tagged with a customer and tier by anyone who may tag
        instances in the account does not join this estate.
    type: str
    default: "lms:estate"
  ec2_filters:
    description:
      - "Server-side filters for C(describe_instances), as a mapping of filter name to a value
        or list of values (for example C({'tag:lms:estate': 'example'}))."
      - "Required with O(ec2=true): the estate tag filter C(tag:<tag_estate>) with the estate's name as
        its value (C({'tag:lms:estate': 'example'}) for the estate V(example)); an estate without it is
        refused."
      - C(instance-state-name=running) and C(tag-key=<tag_customer>) always apply.
    type: dict
    default: {}
  hostnames:
    description:
      - Preference list for an instance's inventory host name; the first non-empty wins.
      - "Each is C(tag:<key>) or one of V(private-dns-name), V(dns-name), V(private-ip-address),
        V(ip-address), V(instance-id). If none gives a name, or the name is taken already, the
        instance id is used (with a warning)."
      - "A name that breaks the rule for static host names (letters, digits and C(_.:-), at most 253
        characters; no C(/) or spaces, so C(../../x) never reaches the fact cache's file names) skips
        the instance with a warning that names its instance id (an error with O(ec2_unknown=error))."
    type: list
    elements: str
    default: ["tag:Name", "private-dns-name", "private-ip-address", "instance-id"]
  ec2_ansible_host:
    description:
      - Which address of an instance becomes C(ansible_host); V(none) sets no C(ansible_host).
      - When the chosen address is empty (an instance without a public IP) the private IP is used.
    type: str
    choices: [private-ip-address, ip-address, private-dns-name, dns-name, none]
    default: private-ip-address
  ec2_unknown:
    description:
      - What to do with an instance whose tags name no customer of the estate, no tier, or no
        (or an unknown) host role.
      - V(warn) skips it with a warning, V(error) fails the inventory, V(ignore) skips it silently.
    type: str
    choices: [warn, error, ignore]
    default: warn
notes:
  - Validation errors name the file, the customer and the field. Ansible reports an inventory source
    that fails to parse as a warning and carries on with no hosts unless
    C([inventory] any_unparsed_is_failed = true) is set; this repository's ansible.cfg should set it.
  - C(--limit) selects hosts, not sites. A shared Dev server serving acme-dev and globex-dev is in both
    site groups; C(--limit acme_dev) runs on it and its C(estate_sites) still lists both sites. Use
    O(limit_sites) (C(THREE_INSTANCE_SITES=acme-dev)) to narrow the sites themselves.
  - O(compose), O(groups) and O(keyed_groups) see the host's vars set by this plugin (C(estate_*),
    C(ec2_*), and the static host vars).
"""

EXAMPLES = r"""
# inventories/example/estate.yml
plugin: three_instance
name: example
timezone: Europe/London
tiers:
  dev:
    wwwroot: "http://{customer}.dev.lan"
    hosts:
      devbox1: [web, db]          # the shared Dev server carries every customer's dev site
  qa:
    wwwroot: "https://{customer}-qa.lms.example.net"
  live:
    maintenance_windows:
      - "sun 02:00-04:00"
hosts:
  devbox1:
    ansible_host: 192.168.10.20
customers:
  acme:
    flavour: moodle
    tiers:
      dev: {}
      qa: {}                      # hosts from EC2: lms:customer=acme, lms:tier=qa
      live:
        wwwroot: https://learn.acme.example
        maintenance_windows: ["tue,thu 22:00-23:30 Europe/London"]
  initech:
    flavour: totara
    vars:
      lms_theme: initech
    tiers:
      dev: {}
      qa: {}
      live:
        wwwroot: https://lms.initech.example
ec2: true
regions: [eu-west-1, eu-west-2]
ec2_filters:
  "tag:lms:estate": example       # required: only this estate's instances (tagged lms:estate=example)
keyed_groups:
  - key: ec2_region | default('static')
    prefix: region

# Only acme's sites (the shared Dev server then lists acme-dev only):
#   THREE_INSTANCE_SITES='acme-*' ansible-inventory -i inventories/example --graph
"""

import hashlib
import importlib.util
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

try:  # ansible-core >= 2.19: templates must be trusted
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core trusts every string
    trust_as_template = None

CACHE_FORMAT = 1
_EXPRESSION_OPTIONS = ("compose", "groups", "keyed_groups")
_OPTION_ALIASES = ("access_key", "secret_key", "session_token", "profile")  # as in DOCUMENTATION
_ESTATE_MODULE = "three_instance_estate"


def _estate():
    """plugins/module_utils/estate.py, loaded by path (controller-side code of a non-collection repo)."""
    module = sys.modules.get(_ESTATE_MODULE)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils", "estate.py")
        spec = importlib.util.spec_from_file_location(_ESTATE_MODULE, os.path.normpath(path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[_ESTATE_MODULE] = module
        spec.loader.exec_module(module)
    return module


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "three_instance"
    INVENTORY_FILE_SUFFIXES = ("estate.yml", "estate.yaml")

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(self.INVENTORY_FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        estate = _estate()
        source = _display_path(path)
        try:
            config = self._load_config(estate, path, source)
            estate.check_top_level(config, [*self._options, *_OPTION_ALIASES, "plugin"], source)
            model = estate.parse_estate(
                {key: self.get_option(key) for key in estate.ESTATE_KEYS},
                source,
                default_name=os.path.basename(os.path.dirname(os.path.abspath(path))) or "estate",
                host_roles=self.get_option("host_roles"),
            )
            records = []
            if self.get_option("ec2"):
                estate.check_ec2_filters(
                    source, model.name, self.get_option("ec2_filters"), self.get_option("tag_estate")
                )
                records = self._ec2_records(path, source, cache)
            built = estate.build_inventory(
                model,
                records,
                tag_customer=self.get_option("tag_customer"),
                tag_tier=self.get_option("tag_tier"),
                tag_roles=self.get_option("tag_roles"),
                hostnames=self.get_option("hostnames"),
                ansible_host=self.get_option("ec2_ansible_host"),
                on_unknown=self.get_option("ec2_unknown"),
                limit_sites=self.get_option("limit_sites"),
                tag_estate=self.get_option("tag_estate") if self.get_option("ec2") else None,
                # the estate's strings and EC2's plain ones are trusted (exported as plain strings);
                # EC2 strings that look like templates are wrapped: they stay data (docs/inventory.md §3)
                trust=trust_as_template,
                untrust=wrap_var,
            )
        except estate.EstateError as exc:
            raise AnsibleParserError(str(exc)) from None
        self._check_duplicate_sites(built, source)
        for warning in built.warnings:
            self.display.warning(warning)
        self._populate(built)

    # ----------------------------------------------------------------------------------------

    def _load_config(self, estate, path, source):
        """Read the estate file and set the options (what _read_config_data does, faster).

        A plain estate file is parsed with libyaml, refusing duplicate keys (a customer or tier
        written twice, which YAML would silently collapse); then the strings that Ansible must be
        able to template later (Jinja in vars and host vars, the constructed expressions) are
        marked trusted, as Ansible's own loader does for every string of an inventory file.
        Ansible's loader, 5-10 times slower on a large estate, reads files that use vault.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise AnsibleParserError(f"{source}: cannot read: {to_native(exc)}") from None
        if "!vault" in text or text.lstrip().startswith("$ANSIBLE_VAULT"):
            if not text.lstrip().startswith("$ANSIBLE_VAULT"):
                estate.check_duplicate_keys(text, source)
            try:
                config = self.loader.load_from_file(path, cache="none", unsafe=True, trusted_as_template=True)
            except Exception as exc:
                raise AnsibleParserError(f"{source}: {to_native(exc)}") from None
        else:
            config = _trust_templates(estate.load_yaml(text, source))
        if not config:
            raise AnsibleParserError(f"{source}: is empty")
        if not isinstance(config, dict):
            raise AnsibleParserError(f"{source}: an estate file is a mapping, got {type(config).__name__}")
        if config.get("plugin") not in (getattr(self, "_redirected_names", None) or [self.NAME]):
            raise AnsibleParserError(f"Incorrect plugin name in file: {config.get('plugin', 'none found')}")
        self.set_options(direct=config, var_options=self._vars)
        if self.get_option("cache"):
            self.load_cache_plugin()
        return config

    def _check_duplicate_sites(self, built, source):
        """Two estate files of one inventory must not define the same site."""
        for group in built.groups:
            if "_" not in group or group not in self.inventory.groups:
                continue
            for host in self.inventory.groups[group].get_hosts():
                if "estate_sites" in host.vars:
                    site = group.replace("_", "-", 1)
                    raise AnsibleParserError(
                        f"{source}: customer {site.split('-')[0]!r}, tier {site.split('-')[1]!r}: "
                        f"duplicate site {site!r}: another estate source of this inventory defines it already"
                    )

    def _populate(self, built):
        inventory = self.inventory
        # ansible-core >= 2.19 hands plugins a proxy whose set_variable copies every value and tags
        # each leaf with its origin: about 0.4 ms per host for the estate_* vars, which would be
        # most of a cached run on 3,000 hosts. Those vars are built here, from validated data, of
        # plain dicts, lists and strings; they go straight to the inventory data. The static hosts'
        # own vars, written by the user, and the constructed options still go through the proxy
        # (only set_variable differs; groups and hosts are added to the same data either way).
        direct = getattr(inventory, "__wrapped__", inventory)
        if not isinstance(direct, InventoryData):
            direct = inventory
        for group in built.groups:
            direct.add_group(group)
        for parent, child in built.children:
            direct.add_child(parent, child)
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        constructed = bool(compose or groups or keyed_groups)
        strict = self.get_option("strict")
        for host, entry in built.hosts.items():
            member_of = entry["groups"]
            direct.add_host(host, group=member_of[0])
            for group in member_of[1:]:
                direct.add_child(group, host)
            hostvars = entry["vars"]
            own = entry["own"]
            direct_host = direct.get_host(host)
            for key, value in hostvars.items():
                if key in own:
                    inventory.set_variable(host, key, value)
                else:
                    direct_host.set_variable(key, value)
            if constructed:
                if compose:
                    self._set_composite_vars(compose, hostvars, host, strict=strict)
                    hostvars = inventory.get_host(host).get_vars()
                self._add_host_to_composed_groups(groups, hostvars, host, strict=strict, fetch_hostvars=False)
                self._add_host_to_keyed_groups(
                    keyed_groups, hostvars, host, strict=strict, fetch_hostvars=False
                )

    # ---------------------------------------------------------------------------------------- EC2

    def _option(self, name):
        value = self.get_option(name)
        if isinstance(value, str) and self.templar.is_template(value):
            value = self.templar.template(value)
        return value or None

    def _ec2_settings(self):
        return {
            "regions": [str(region) for region in self.get_option("regions") or []],
            "endpoint_url": self._option("endpoint_url"),
            "profile": self._option("aws_profile"),
            "tag_customer": self.get_option("tag_customer"),
            "filters": self.get_option("ec2_filters") or {},
        }

    def _ec2_records(self, path, source, cache):
        settings = self._ec2_settings()
        use_cache = self.get_option("cache")
        key = None
        if use_cache:
            digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[
                :12
            ]
            key = f"{self.get_cache_key(path)}_{digest}"
            if cache:  # false with --flush-cache or meta: refresh_inventory
                try:
                    cached = self._cache[key]
                except KeyError:
                    cached = None
                if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
                    # one JSON string: the cache plugin's decoder does not visit every record
                    return json.loads(cached["records"])
        records = self._query_ec2(settings, source)
        if use_cache:
            self._cache[key] = {"format": CACHE_FORMAT, "records": json.dumps(records, separators=(",", ":"))}
        return records

    def _query_ec2(self, settings, source):
        try:  # imported here: a cached run and an estate without EC2 do not pay for boto3 (~0.3 s)
            import boto3
            import botocore.exceptions
        except ImportError:
            raise AnsibleParserError(
                f"{source}: ec2: true needs the Python packages boto3 and botocore"
            ) from None
        estate = _estate()
        try:
            session = boto3.session.Session(
                aws_access_key_id=self._option("aws_access_key"),
                aws_secret_access_key=self._option("aws_secret_key"),
                aws_session_token=self._option("aws_security_token"),
                profile_name=settings["profile"],
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise AnsibleParserError(f"{source}: AWS session: {to_native(exc)}") from None
        regions = settings["regions"] or ([session.region_name] if session.region_name else [])
        if not regions:
            raise AnsibleParserError(
                f"{source}: regions: no region to search (set regions, or AWS_DEFAULT_REGION for boto3)"
            )
        filters = [
            {"Name": "instance-state-name", "Values": ["running"]},
            {"Name": "tag-key", "Values": [settings["tag_customer"]]},
        ]
        for name, values in settings["filters"].items():
            values = values if isinstance(values, list) else [values]
            filters.append({"Name": str(name), "Values": [str(v) for v in values]})
        # Clients are made here (session.client is not thread-safe) and used one per thread.
        clients = [
            (region, session.client("ec2", region_name=region, endpoint_url=settings["endpoint_url"]))
            for region in regions
        ]

        def fetch(item):
            region, client = item
            found = []
            try:
                for page in client.get_paginator("describe_instances").paginate(
                    Filters=filters, PaginationConfig={"PageSize": 1000}
                ):
                    for reservation in page["Reservations"]:
                        found.extend(
                            estate.ec2_record(instance, region) for instance in reservation["Instances"]
                        )
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise AnsibleParserError(
                    f"{source}: EC2 discovery in region {region} failed: {to_native(exc)}"
                ) from None
            return found

        with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
            return [record for found in pool.map(fetch, clients) for record in found]


def _trust_templates(config):
    """Mark as trusted the strings Ansible may template: Jinja anywhere, and constructed expressions."""
    if trust_as_template is None or not isinstance(config, dict):
        return config
    possibly_template = _estate().possibly_template

    def walk(value, everything):
        if isinstance(value, str):
            return trust_as_template(value) if everything or possibly_template(value) else value
        if isinstance(value, dict):
            return {key: walk(item, everything) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, everything) for item in value]
        return value

    return {key: walk(value, key in _EXPRESSION_OPTIONS) for key, value in config.items()}


def _display_path(path):
    """The estate file as the user would name it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
