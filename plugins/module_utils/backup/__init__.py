# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a Moodle/Totara site to S3, and restores from them: the logic of ``lms_backup*`` and
``lms_restore`` (docs/backups.md explains the design and the bucket layout), one concern a module:

- ``format``: a backup in the bucket (keys, ids, sealed manifests, the customer's content);
- ``site_config``: the site as a backup reads it (config.php through PHP, the database tools);
- ``create``, ``prune``, ``restore``, ``verify`` (a restore into a scratch site), ``info``;
- ``timer``: the command line the systemd timer of ``roles/backup`` runs,
  ``python3 -m backup.timer create|prune --config file.json``: the same code as the modules.

The modules import each other relatively, so the package works wherever it sits: under
``ansible.module_utils`` in a module, and as a top-level package beside moodle_cli and s3_store in
the timer's copy on a host and in unit tests.
"""
