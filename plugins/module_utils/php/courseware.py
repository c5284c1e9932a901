# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The courseware loader (module_utils courseware_site): a bundle's Moodle book through Moodle's own
``booktool_importhtml`` code, its PDF as a File resource and the style's theme settings, in one
delegated transaction (operation ``publish``), or what a site has (``info``); parameters as JSON
on stdin, the answer as JSON after the ``@@LMS-RESULT@@`` marker."""

try:
    from ansible.module_utils.php import ANSWER_PHP
except ImportError:  # unit tests, tools/ and the backup timer's copy on a host: siblings on sys.path
    from php import ANSWER_PHP

COURSEWARE_PHP = (
    r"""<?php
// three-instance courseware: argv: courseware.php <config.php> <info|publish>; JSON on stdin.
define('CLI_SCRIPT', true);
$lmsop = isset($argv[2]) ? $argv[2] : '';
$lmsin = json_decode(stream_get_contents(STDIN), true);
if (!is_array($lmsin)) {
    $lmsin = [];
}

"""
    + ANSWER_PHP
    + r"""
require($argv[1]);
require_once($CFG->dirroot . '/course/modlib.php');
require_once($CFG->dirroot . '/mod/book/locallib.php');
require_once($CFG->dirroot . '/mod/book/tool/importhtml/locallib.php');
require_once($CFG->libdir . '/resourcelib.php');
require_once($CFG->libdir . '/filelib.php');

// What a site has of one course's courseware is remembered beside it, in config_plugins (a QA
// refreshed from Live then says what Live has, which is what its book then is).
function lms_cw_marker_name($cmidnumber) {
    return 'courseware_' . $cmidnumber;
}

function lms_cw_marker($cmidnumber) {
    $value = get_config('three_instance', lms_cw_marker_name($cmidnumber));
    return $value ? json_decode($value, true) : null;
}

function lms_cw_cm($course, $modname, $idnumber) {
    global $DB;
    $cms = $DB->get_records_sql(
        'SELECT cm.* FROM {course_modules} cm JOIN {modules} m ON m.id = cm.module
          WHERE cm.course = ? AND m.name = ? AND cm.idnumber = ? AND cm.deletioninprogress = 0
       ORDER BY cm.id', [$course->id, $modname, $idnumber]);
    if (count($cms) > 1) {
        lms_fail("course {$course->shortname} has " . count($cms) . " $modname activities with the ID number "
            . "$idnumber; the courseware is loaded into one: give the others another ID number");
    }
    return $cms ? reset($cms) : null;
}

// A chapter's words, for comparing books across sites (ids and the site's address left out).
function lms_cw_text($html) {
    return trim(preg_replace('/\s+/u', ' ', html_entity_decode(strip_tags($html), ENT_QUOTES, 'UTF-8')));
}

function lms_cw_book_view($cm) {
    global $DB;
    if (!$cm) {
        return null;
    }
    $book = $DB->get_record('book', ['id' => $cm->instance], '*', MUST_EXIST);
    $context = context_module::instance($cm->id);
    $fs = get_file_storage();
    $chapters = [];
    foreach ($DB->get_records('book_chapters', ['bookid' => $book->id], 'pagenum') as $ch) {
        $files = [];
        $area = $fs->get_area_files($context->id, 'mod_book', 'chapter', $ch->id, 'filepath', false);
        foreach ($area as $f) {
            $files[] = ltrim($f->get_filepath() . $f->get_filename(), '/');
        }
        $chapters[] = ['id' => (int)$ch->id, 'pagenum' => (int)$ch->pagenum, 'title' => $ch->title,
            'subchapter' => (bool)$ch->subchapter, 'hidden' => (bool)$ch->hidden,
            'text' => lms_cw_text($ch->content), 'files' => $files];
    }
    return ['cmid' => (int)$cm->id, 'id' => (int)$book->id, 'name' => $book->name,
        'revision' => (int)$book->revision, 'chapters' => $chapters];
}

function lms_cw_pdf_file($cm) {
    if (!$cm) {
        return null;
    }
    $context = context_module::instance($cm->id);
    $files = get_file_storage()->get_area_files($context->id, 'mod_resource', 'content', 0,
        'sortorder DESC, id', false);
    return $files ? reset($files) : null;
}

function lms_cw_pdf_view($cm) {
    $file = lms_cw_pdf_file($cm);
    return $cm ? ['cmid' => (int)$cm->id, 'filename' => $file ? $file->get_filename() : null,
        'sha1' => $file ? $file->get_contenthash() : null] : null;
}

function lms_cw_setting_now($key) {
    list($plugin, $name) = explode('/', $key, 2);
    $value = get_config($plugin, $name);
    return $value === false ? null : (string)$value;
}

function lms_op_info($in) {
    global $DB;
    $course = $DB->get_record('course', ['shortname' => $in['shortname']]);
    $r = ['course' => null, 'book' => null, 'pdf' => null, 'published' => lms_cw_marker($in['cm_idnumber']),
        'settings' => []];
    foreach ($in['settings'] as $key => $value) {
        $r['settings'][$key] = lms_cw_setting_now($key);
    }
    if (!$course) {
        return $r;
    }
    $r['course'] = ['id' => (int)$course->id, 'shortname' => $course->shortname,
        'fullname' => $course->fullname];
    $r['book'] = lms_cw_book_view(lms_cw_cm($course, 'book', $in['cm_idnumber']));
    $r['pdf'] = lms_cw_pdf_view(lms_cw_cm($course, 'resource', $in['pdf_idnumber']));
    return $r;
}

function lms_cw_create_book($course, $in) {
    $info = create_module((object)[
        'modulename' => 'book', 'course' => $course->id, 'section' => 0, 'visible' => 1,
        'name' => $in['book_name'], 'introeditor' => ['text' => '', 'format' => FORMAT_HTML, 'itemid' => 0],
        'numbering' => 1, 'navstyle' => 1, 'customtitles' => 0, 'cmidnumber' => $in['cm_idnumber'],
    ]);
    return get_coursemodule_from_id('book', $info->coursemodule, 0, false, MUST_EXIST);
}

function lms_cw_drop_chapter($book, $context, $chapter) {
    global $DB;
    core_tag_tag::remove_all_item_tags('mod_book', 'book_chapters', $chapter->id);
    get_file_storage()->delete_area_files($context->id, 'mod_book', 'chapter', $chapter->id);
    $DB->delete_records('book_chapters', ['id' => $chapter->id]);
}

// Moodle's import appends; the book's chapters are replaced in place instead: the package is
// imported (Moodle's own code: parsing, images, links between chapters), then each imported
// chapter's title, content and files move into the chapter at its place, whose id (and so every
// link to it and its read log) stays; chapters beyond the new count go.
function lms_cw_replace_chapters($cm, $in) {
    global $DB;
    $book = $DB->get_record('book', ['id' => $cm->instance], '*', MUST_EXIST);
    $context = context_module::instance($cm->id);
    $fs = get_file_storage();
    $old = array_values($DB->get_records('book_chapters', ['bookid' => $book->id], 'pagenum'));
    $oldids = array_map(function($c) { return (int)$c->id; }, $old);
    // The import links chapters by their source file: the old chapters must not answer.
    $DB->set_field('book_chapters', 'importsrc', '', ['bookid' => $book->id]);
    $fs->delete_area_files($context->id, 'mod_book', 'courseware_package', 0);
    $package = $fs->create_file_from_pathname(['contextid' => $context->id, 'component' => 'mod_book',
        'filearea' => 'courseware_package', 'itemid' => 0, 'filepath' => '/',
        'filename' => 'moodle-book.zip'],
        $in['package']);
    toolbook_importhtml_import_chapters($package, 2, $book, $context, false); // 2: each HTML file a chapter
    $fs->delete_area_files($context->id, 'mod_book', 'courseware_package', 0);
    $new = [];
    foreach ($DB->get_records('book_chapters', ['bookid' => $book->id], 'pagenum') as $ch) {
        if (!in_array((int)$ch->id, $oldids)) {
            $new[] = $ch;
        }
    }
    $imported = array_map(function($c) { return $c->title; }, $new);
    if ($imported !== $in['titles']) {
        throw new moodle_exception('generalexceptionmessage', 'error', '', 'the import made the chapters ['
            . implode(' | ', $imported) . '], the bundle has [' . implode(' | ', $in['titles']) . ']');
    }
    $moved = [];
    foreach ($new as $i => $chapter) {
        if (!isset($old[$i])) {
            $DB->set_field('book_chapters', 'pagenum', $i + 1, ['id' => $chapter->id]);
            continue;
        }
        $kept = $old[$i];
        $moved[(int)$chapter->id] = (int)$kept->id;
        $fs->delete_area_files($context->id, 'mod_book', 'chapter', $kept->id);
        $area = $fs->get_area_files($context->id, 'mod_book', 'chapter', $chapter->id, 'id', false);
        foreach ($area as $file) {
            $fs->create_file_from_storedfile(['itemid' => $kept->id], $file);
        }
        lms_cw_drop_chapter($book, $context, $chapter);
        foreach (['title', 'content', 'contentformat', 'subchapter', 'importsrc'] as $field) {
            $kept->$field = $chapter->$field;
        }
        $kept->hidden = 0;
        $kept->pagenum = $i + 1;
        $kept->timemodified = time();
        $DB->update_record('book_chapters', $kept);
        \mod_book\event\chapter_updated::create_from_chapter($book, $context, $kept)->trigger();
    }
    foreach (array_slice($old, count($new)) as $gone) {
        lms_cw_drop_chapter($book, $context, $gone);
        \mod_book\event\chapter_deleted::create_from_chapter($book, $context, $gone)->trigger();
    }
    if ($moved) { // the import's links name the imported chapters' ids
        foreach ($DB->get_records('book_chapters', ['bookid' => $book->id]) as $ch) {
            $content = preg_replace_callback('/([?&](?:amp;)?chapterid=)(\d+)/', function($m) use ($moved) {
                return $m[1] . (isset($moved[(int)$m[2]]) ? $moved[(int)$m[2]] : $m[2]);
            }, $ch->content);
            if ($content !== $ch->content) {
                $DB->set_field('book_chapters', 'content', $content, ['id' => $ch->id]);
            }
        }
    }
    $DB->set_field('book', 'revision', $book->revision + 1, ['id' => $book->id]);
}

function lms_cw_publish_pdf($course, $cm, $in) {
    global $DB, $USER;
    $fs = get_file_storage();
    if (!$cm) {
        $draft = file_get_unused_draft_itemid();
        $fs->create_file_from_pathname(['contextid' => context_user::instance($USER->id)->id,
            'component' => 'user', 'filearea' => 'draft', 'itemid' => $draft, 'filepath' => '/',
            'filename' => $in['pdf_name']], $in['pdf']);
        create_module((object)[
            'modulename' => 'resource', 'course' => $course->id, 'section' => 0, 'visible' => 1,
            'name' => $in['pdf_title'],
            'introeditor' => ['text' => '', 'format' => FORMAT_HTML, 'itemid' => 0],
            'files' => $draft,
            'display' => RESOURCELIB_DISPLAY_AUTO, 'printintro' => 0, 'showsize' => 1, 'showtype' => 1,
            'cmidnumber' => $in['pdf_idnumber'],
        ]);
        return;
    }
    $context = context_module::instance($cm->id);
    $fs->delete_area_files($context->id, 'mod_resource', 'content', 0);
    $fs->create_file_from_pathname(['contextid' => $context->id, 'component' => 'mod_resource',
        'filearea' => 'content', 'itemid' => 0, 'filepath' => '/', 'filename' => $in['pdf_name'],
        'sortorder' => 1],
        $in['pdf']);
    $revision = $DB->get_field('resource', 'revision', ['id' => $cm->instance]);
    $DB->set_field('resource', 'revision', $revision + 1, ['id' => $cm->instance]);
}

function lms_op_publish($in) {
    global $CFG, $DB;
    $course = $DB->get_record('course', ['shortname' => $in['shortname']]);
    if (!$course) {
        lms_fail("course {$in['shortname']} is not on this site: create it first (lms_course); "
            . 'nothing was changed');
    }
    // Settings fixed in config.php cannot be changed here: say so rather than pretend.
    foreach ($in['settings'] as $key => $value) {
        list($plugin, $name) = explode('/', $key, 2);
        if (isset($CFG->forced_plugin_settings[$plugin][$name])
                && (string)$CFG->forced_plugin_settings[$plugin][$name] !== (string)$value) {
            lms_fail("$key is forced in config.php to " . $CFG->forced_plugin_settings[$plugin][$name]
                . ", the style wants $value; nothing was changed");
        }
    }
    $admin = get_admin();
    \core\session\manager::set_user($admin);
    $changes = [];
    $bookcm = lms_cw_cm($course, 'book', $in['cm_idnumber']);
    $marker = lms_cw_marker($in['cm_idnumber']);
    $book = lms_cw_book_view($bookcm);
    $titles = $book ? array_map(function($c) { return $c['title']; }, $book['chapters']) : [];
    if (!$bookcm) {
        $changes[] = "book '{$in['book_name']}' created in course {$course->shortname} "
            . "(ID number {$in['cm_idnumber']})";
    }
    $replace = !$bookcm || !empty($in['force']) || !$marker || $marker['sha256'] !== $in['sha256']
        || $titles !== $in['titles'];
    if ($replace) {
        $changes[] = 'chapters ' . ($bookcm ? 'replaced in place (' . count($titles) . ' -> ' : 'loaded (')
            . count($in['titles']) . ') from version ' . $in['version'];
    }
    $pdfcm = null;
    if ($in['pdf'] !== null) {
        $pdfcm = lms_cw_cm($course, 'resource', $in['pdf_idnumber']);
        $file = lms_cw_pdf_file($pdfcm);
        if (!$pdfcm) {
            $changes[] = "PDF '{$in['pdf_name']}' added as a File resource (ID number {$in['pdf_idnumber']})";
        } else if (!$file || $file->get_contenthash() !== sha1_file($in['pdf'])
                || $file->get_filename() !== $in['pdf_name']) {
            $changes[] = "PDF '{$in['pdf_name']}' replaced";
        }
    }
    $settings = [];
    foreach ($in['settings'] as $key => $value) {
        $now = lms_cw_setting_now($key);
        if ($now !== (string)$value) {
            $settings[$key] = (string)$value;
            $changes[] = "$key: " . ($now === null ? 'unset' : $now) . " -> $value";
        }
    }
    $result = ['changed' => (bool)$changes, 'changes' => $changes];
    if (!$changes || !empty($in['check'])) {
        return $result + lms_op_info($in);
    }
    $transaction = $DB->start_delegated_transaction();
    if (!$bookcm) {
        $bookcm = lms_cw_create_book($course, $in);
    }
    if ($replace) {
        lms_cw_replace_chapters($bookcm, $in);
    }
    if ($in['pdf'] !== null) {
        lms_cw_publish_pdf($course, $pdfcm, $in);
    }
    foreach ($settings as $key => $value) {
        list($plugin, $name) = explode('/', $key, 2);
        set_config($name, $value, $plugin);
    }
    set_config(lms_cw_marker_name($in['cm_idnumber']), json_encode(['version' => $in['version'],
        'sha256' => $in['sha256'], 'published_at' => gmdate('Y-m-d\TH:i:s\Z'), 'by' => $in['by']]),
        'three_instance');
    $transaction->allow_commit();
    rebuild_course_cache($course->id, true);
    if ($settings) {
        theme_reset_all_caches();
    }
    return $result + lms_op_info($in);
}

$lmsfn = 'lms_op_' . $lmsop;
if (!function_exists($lmsfn)) {
    lms_fail("unknown courseware operation '$lmsop'");
}
try {
    lms_emit($lmsfn($lmsin));
} catch (Throwable $e) {
    $info = isset($e->debuginfo) ? ' (' . $e->debuginfo . ')' : '';
    lms_fail(get_class($e) . ': ' . $e->getMessage() . $info);
}
"""
)
