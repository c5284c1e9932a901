<?php
// three-instance lms role: save the default of every admin setting that has no value yet.
// install_database.php was seen leaving most settings unset (cron_enabled among them, so
// cron.php refuses to run); the web installer and upgrade.php do this step themselves.
// Idempotent. Input: LMS_CONFIG (the release's config.php). Last line: {"changed": bool, ...}.

define('CLI_SCRIPT', true);
require(getenv('LMS_CONFIG'));
require_once($CFG->libdir . '/adminlib.php');

\core\session\manager::set_user(get_admin());
$applied = admin_apply_default_settings(null, false);
$count = is_array($applied) ? count($applied) : (int)$applied;
echo json_encode(['changed' => $count > 0, 'applied' => $count]), "\n";
