<?php
/*
 * Administration > Plugins > S3Upload: settings, the daemon's heartbeat,
 * counts per status, the ten most recent pending/failed and successful
 * uploads, "retry failed now", recent Batch Manager requests; and, with
 * tab=photo, one photo's S3 status (a tab of the photo edit page).
 */
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

check_status(ACCESS_ADMINISTRATOR);

/** Seconds the retry button waits for a running daemon's answer. */
define('S3C_RETRY_WAIT', 5);
/** Rows per page of the pending and uploaded tables. */
define('S3C_PER_PAGE', 10);

/** A table's first row from the query string (Piwigo's navigation bar). */
function s3c_start($param)
{
  return isset($_GET[$param]) && is_string($_GET[$param]) && preg_match('/^\d{1,9}$/', $_GET[$param])
    ? intval($_GET[$param]) : 0;
}

$tab = isset($_GET['tab']) ? $_GET['tab'] : 'status';
if ($tab == 'photo')
{
  include(S3C_PATH . 'admin_photo.php');
  return;
}

$settings = s3c_settings();
$ready = s3c_tables_ready();

if (isset($_POST['s3c_save']))
{
  check_pwg_token();
  $visibility = isset($_POST['link_visibility']) ? $_POST['link_visibility'] : '';
  $mode = isset($_POST['link_mode']) ? $_POST['link_mode'] : '';
  $daemon_url = isset($_POST['daemon_url']) && is_string($_POST['daemon_url']) ? trim($_POST['daemon_url']) : '';
  $token = isset($_POST['daemon_token']) && is_string($_POST['daemon_token']) ? trim($_POST['daemon_token']) : '';
  $allow_plain_http = !empty($_POST['allow_plain_http']);
  $url_problem = $daemon_url === '' ? null : s3c_daemon_url_problem($daemon_url, $allow_plain_http);
  if (!in_array($visibility, array('off', 'admins', 'everyone'), true)
    or !in_array($mode, array('private', 'public'), true))
  {
    $page['errors'][] = l10n('s3c_unknown_link_setting');
  }
  elseif ($url_problem !== null)
  {
    $page['errors'][] = $url_problem;
  }
  elseif ($daemon_url !== $settings['daemon_url'] and $token === '' and $settings['daemon_token'] !== '')
  {
    // The stored token goes only to the host it was entered for.
    $page['errors'][] = l10n('s3c_url_changed_token_again');
  }
  else
  {
    $settings['link_visibility'] = $visibility;
    $settings['link_mode'] = $mode;
    $settings['daemon_url'] = $daemon_url;
    $settings['allow_plain_http'] = $allow_plain_http;
    // The token is never shown again; an empty field keeps the old one.
    if ($token !== '')
    {
      $settings['daemon_token'] = $token;
    }
    s3c_save_settings($settings);
    $page['infos'][] = l10n('s3c_settings_saved');
  }
}

if (isset($_POST['s3c_test']))
{
  check_pwg_token();
  list($works, $message) = s3c_test_connection();
  $page[$works ? 'infos' : 'errors'][] = '<span id="s3c-test-result">' . htmlspecialchars($message) . '</span>';
}

if (isset($_POST['s3c_retry']))
{
  check_pwg_token();
  if ($ready)
  {
    $request = s3c_wait_for_request(s3c_file_request(S3C_REQUEST_RETRY), S3C_RETRY_WAIT);
    $page['infos'][] = htmlspecialchars(s3c_request_summary($request));
  }
}

$template->set_filename('s3c_admin', realpath(S3C_PATH . 'template/admin.tpl'));

$daemon = null;
$heartbeats = s3c_heartbeats();
if (!empty($heartbeats))
{
  $hb = $heartbeats[0];
  $age = intval($hb['age']);
  if (!empty($hb['stopped_at']))
  {
    $state = l10n('s3c_stopped', $hb['stopped_at']);
    $alive = false;
  }
  elseif ($age <= S3C_ALIVE_SECONDS)
  {
    $state = l10n('s3c_running');
    $alive = true;
  }
  else
  {
    $state = l10n('s3c_not_seen_for', max(1, intval(round($age / 60))));
    $alive = false;
  }
  $daemon = array(
    'HOST' => $hb['host'],
    'VERSION' => $hb['version'],
    'LAST_SEEN' => $hb['last_seen'],
    'STATE' => $state,
    'ALIVE' => $alive,
  );
}

$counts = array();
$pending = array();
$uploaded = array();
$requests = array();
$pending_start = s3c_start('pending_start');
$uploaded_start = s3c_start('uploaded_start');
$navigation = array();
if ($ready)
{
  $navigation['pending'] = create_navigation_bar(S3C_ADMIN,
    intval(pwg_db_fetch_row(pwg_query('SELECT COUNT(*) FROM ' . s3c_table('queue') . ' WHERE kind = \'photo\';'))[0]),
    $pending_start, S3C_PER_PAGE, false, 'pending_start');
  $navigation['uploaded'] = create_navigation_bar(S3C_ADMIN,
    intval(pwg_db_fetch_row(pwg_query('SELECT COUNT(*) FROM ' . s3c_table('uploaded') . ';'))[0]),
    $uploaded_start, S3C_PER_PAGE, false, 'uploaded_start');
  $query = '
SELECT IF(claimed_until > NOW(3), \'' . S3C_STATUS_UPLOADING . '\', status) AS s, COUNT(*) AS n
  FROM ' . s3c_table('queue') . '
  WHERE kind = \'photo\'
  GROUP BY s
;';
  $counts = query2array($query, 's', 'n');
  if (s3c_tables_ready(array('counts')))
  {
    $query = 'SELECT outcome, n FROM ' . s3c_table('counts') . ' WHERE n > 0;';
  }
  else
  {
    $query = 'SELECT outcome, COUNT(*) AS n FROM ' . s3c_table('uploaded') . ' GROUP BY outcome;';
  }
  $counts = array_merge($counts, query2array($query, 'outcome', 'n'));
  ksort($counts);

  $query = '
SELECT q.image_id, IF(q.claimed_until > NOW(3), \'' . S3C_STATUS_UPLOADING . '\', q.status) AS status,
    q.attempts, q.updated_at, q.last_error, i.file, i.path
  FROM ' . s3c_table('queue') . ' AS q
    LEFT JOIN ' . IMAGES_TABLE . ' AS i ON i.id = q.image_id
  WHERE q.kind = \'photo\'
  ORDER BY q.updated_at DESC, q.id DESC
  LIMIT ' . S3C_PER_PAGE . ' OFFSET ' . $pending_start . '
;';
  $pending = query2array($query);

  $query = '
SELECT u.image_id, u.outcome, u.s3_key, u.url, u.size, u.uploaded_at, i.file
  FROM ' . s3c_table('uploaded') . ' AS u
    LEFT JOIN ' . IMAGES_TABLE . ' AS i ON i.id = u.image_id
  ORDER BY u.uploaded_at DESC, u.id DESC
  LIMIT ' . S3C_PER_PAGE . ' OFFSET ' . $uploaded_start . '
;';
  $uploaded = query2array($query);
  foreach ($uploaded as &$row)
  {
    $row['link'] = s3c_download_url($row['image_id'], $row, true);
    list($row['meaning'], ) = s3c_status_explained($row['outcome']);
  }
  unset($row);

  $query = '
SELECT *
  FROM ' . s3c_table('requests') . '
  WHERE status <> \'' . S3C_REQUEST_DRAFT . '\'
  ORDER BY id DESC
  LIMIT 5
;';
  foreach (query2array($query) as $request)
  {
    $request['summary'] = s3c_request_summary($request);
    $requests[] = $request;
  }
}

$failed = 0;
$statuses = array();
foreach ($counts as $status => $n)
{
  if (s3c_is_failed($status))
  {
    $failed += $n;
  }
  list($meaning, $fix) = s3c_status_explained($status);
  $statuses[] = array('status' => $status, 'n' => $n, 'meaning' => $meaning, 'fix' => $fix);
}
foreach ($pending as &$row)
{
  list($row['meaning'], $row['fix']) = s3c_status_explained($row['status']);
}
unset($row);

$template->assign(array(
  'S3C_ACTION' => S3C_ADMIN,
  'S3C_PHOTO_URL' => get_root_url() . 'admin.php?page=photo-',
  'PWG_TOKEN' => get_pwg_token(),
  'S3C_READY' => $ready,
  'S3C_DAEMON' => $daemon,
  'S3C_COUNTS' => $statuses,
  'S3C_SUMMARY' => s3c_summary(),
  'S3C_REPORTED' => empty($heartbeats) ? null : $heartbeats[0],
  'S3C_FAILED' => $failed,
  'S3C_PENDING' => $pending,
  'S3C_NAV' => $navigation,
  'S3C_UPLOADED' => $uploaded,
  'S3C_REQUESTS' => $requests,
  'S3C_SETTINGS' => array(
    'link_visibility' => $settings['link_visibility'],
    'link_mode' => $settings['link_mode'],
    'daemon_url' => $settings['daemon_url'],
    'allow_plain_http' => $settings['allow_plain_http'],
    'token_set' => $settings['daemon_token'] !== '',
  ),
  'S3C_NO_CURL' => !function_exists('curl_init'),
  'S3C_TROUBLE' => s3c_s3_trouble(),
));
$template->assign_var_from_handle('ADMIN_CONTENT', 's3c_admin');
