<?php
// three-instance lms role: point Moodle's application cache (MUC) at the site's Redis.
// Idempotent. Input from the environment:
//   LMS_CONFIG          the release's config.php
//   LMS_REDIS_SERVER    the Redis socket path or host[:port]
//   LMS_REDIS_PREFIX    the key prefix
// and the Redis password on stdin (never on a command line: `ps` would show it).
// Prints {"changed": true|false}.

define('CLI_SCRIPT', true);
$password = rtrim((string)stream_get_contents(STDIN), "\r\n");
require(getenv('LMS_CONFIG'));
if (file_exists($CFG->dirroot . '/cache/lib.php')) {
    require_once($CFG->dirroot . '/cache/lib.php'); // Moodle < 4.4
}
// Namespaced classes since Moodle 4.4; the old global names before.
$configclass = class_exists('\\core_cache\\config') ? '\\core_cache\\config' : 'cache_config';
$writerclass = class_exists('\\core_cache\\config_writer') ? '\\core_cache\\config_writer' : 'cache_config_writer';
$storeclass = class_exists('\\core_cache\\store') ? '\\core_cache\\store' : 'cache_store';

$name = 'three_instance_redis';
$want = [
    'server' => getenv('LMS_REDIS_SERVER'),
    'prefix' => getenv('LMS_REDIS_PREFIX'),
    'password' => $password,
    'serializer' => 1, // Redis::SERIALIZER_PHP
    'compressor' => 0,
    'connectiontimeout' => 3,
    'encryption' => false,
    'cafile' => '',
    'clustermode' => false,
];
$changed = false;

$config = $configclass::instance();
$stores = $config->get_all_stores();
if (!array_key_exists($name, $stores)) {
    $writerclass::instance()->add_store_instance($name, 'redis', $want);
    $changed = true;
} else {
    $have = $stores[$name]['configuration'] ?? [];
    foreach ($want as $key => $value) {
        if (!array_key_exists($key, $have) || $have[$key] != $value) {
            $writerclass::instance()->edit_store_instance($name, 'redis', $want);
            $changed = true;
            break;
        }
    }
}

$config = $configclass::instance();
$application = [];
foreach ($config->get_mode_mappings() as $mapping) {
    if ((int)$mapping['mode'] === $storeclass::MODE_APPLICATION) {
        $application[(int)$mapping['sort']] = $mapping['store'];
    }
}
ksort($application);
$application = array_values($application);
if ($application !== [$name, 'default_application']) {
    $writerclass::instance()->set_mode_mappings([
        $storeclass::MODE_APPLICATION => [$name, 'default_application'],
        $storeclass::MODE_SESSION => ['default_session'],
        $storeclass::MODE_REQUEST => ['default_request'],
    ]);
    $changed = true;
}

echo json_encode(['changed' => $changed]), "\n";
