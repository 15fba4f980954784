<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/*
 * Everything the plugin knows about the daemon goes through here: the
 * daemon's tables (same database, Piwigo's prefix) and its HTTP listener.
 * Queue rules (claims, skips, de-duplication, retries) stay in the daemon:
 * the plugin only files requests and reads results.
 */

/** Seconds after which a silent daemon is reported as not seen. */
define('S3C_ALIVE_SECONDS', 60);
/** Photo ids written per INSERT when filing a large request. */
define('S3C_IDS_PER_INSERT', 5000);

function s3c_table($name)
{
  global $prefixeTable;
  return $prefixeTable . 's3upload_' . $name;
}

function s3c_settings()
{
  global $conf;
  $settings = array(
    'link_visibility' => 'admins',
    'link_mode' => 'private',
    'daemon_url' => 'http://127.0.0.1:9187',
    'daemon_token' => '',
    // Plain http:// to a host other than this one sends the token
    // unencrypted: only when the admin says so.
    'allow_plain_http' => false,
  );
  if (isset($conf['s3upload_companion']))
  {
    $stored = json_decode($conf['s3upload_companion'], true);
    if (is_array($stored))
    {
      $settings = array_merge($settings, $stored);
    }
  }
  return $settings;
}

function s3c_save_settings($settings)
{
  conf_update_param('s3upload_companion', json_encode($settings), true,
    'pwg_db_real_escape_string');
}

/** Whether the daemon has created the tables this feature reads. */
function s3c_tables_ready($names = array('queue', 'uploaded', 'requests', 'request_images', 'heartbeat'))
{
  static $known = null;
  if ($known === null)
  {
    global $prefixeTable;
    $known = array();
    $like = str_replace(array('\\', '_', '%'), array('\\\\', '\\_', '\\%'), $prefixeTable . 's3upload_');
    $result = pwg_query('SHOW TABLES LIKE \'' . pwg_db_real_escape_string($like) . '%\';');
    while ($row = pwg_db_fetch_row($result))
    {
      $known[$row[0]] = true;
    }
  }
  foreach ($names as $name)
  {
    if (!isset($known[s3c_table($name)]))
    {
      return false;
    }
  }
  return true;
}

/** The upload record of a photo, or null. */
function s3c_uploaded($image_id)
{
  if (!s3c_tables_ready(array('uploaded')))
  {
    return null;
  }
  $query = '
SELECT image_id, outcome, bucket, s3_key, url, size, md5, uploaded_at
  FROM ' . s3c_table('uploaded') . '
  WHERE image_id = ' . intval($image_id) . '
;';
  $row = pwg_db_fetch_assoc(pwg_query($query));
  return $row ? $row : null;
}

/**
 * Whether Piwigo itself would hand the current user this photo's original
 * through action.php, by its rules: guest access, privacy level, forbidden
 * albums, and the "access to original" right with its exception for
 * originals no bigger than the largest derivative. Piwigo's filters (recent
 * photos) are not restrictions and are left out, as action.php does.
 * `$admin_link` is the administration's own link (with the pwg_token),
 * which Piwigo lets an administrator follow whatever the rules.
 */
function s3c_user_may_download($image_id, $admin_link = false)
{
  global $user;
  $image_id = intval($image_id);
  if ($image_id <= 0 or !is_autorize_status(ACCESS_GUEST))
  {
    return false;
  }
  $photo = pwg_db_fetch_assoc(pwg_query('SELECT * FROM ' . IMAGES_TABLE . ' WHERE id = ' . $image_id . ';'));
  if (!$photo)
  {
    return false;
  }
  if ($admin_link and is_admin())
  {
    return true;
  }
  $query = '
SELECT ic.category_id
  FROM ' . IMAGE_CATEGORY_TABLE . ' AS ic
    INNER JOIN ' . CATEGORIES_TABLE . ' AS c ON c.id = ic.category_id
  WHERE ic.image_id = ' . $image_id . '
' . get_sql_condition_FandF(
      array(
        'forbidden_categories' => 'ic.category_id',
        'forbidden_images' => 'ic.image_id',
      ),
      '    AND ') . '
  LIMIT 1
;';
  if (pwg_db_num_rows(pwg_query($query)) < 1)
  {
    return false;
  }
  $source = new SrcImage($photo);
  if ($source->is_original() and !$user['enabled_high'])
  {
    // The same exception as Piwigo's: an original that the largest size
    // would show unchanged is no more than what the user already sees.
    $largest = new DerivativeImage(IMG_XXLARGE, $source);
    return $largest->same_as_source();
  }
  return true;
}

/** Whether an administration link carries this session's pwg_token. */
function s3c_is_admin_link()
{
  return is_admin() and isset($_GET['pwg_token']) and is_string($_GET['pwg_token'])
    and hash_equals(get_pwg_token(), $_GET['pwg_token']);
}

/** Whether the photo page offers the download link to the current user. */
function s3c_link_offered()
{
  $settings = s3c_settings();
  switch ($settings['link_visibility'])
  {
    case 'everyone':
      return true;
    case 'admins':
      return is_admin();
    default:
      return false;
  }
}

/**
 * Files a request for the daemon: `enqueue` with photo ids, or `retry`.
 * The ids are written before the request becomes `new`, so the daemon
 * never sees half a selection. Returns the request id.
 */
function s3c_file_request($kind, $image_ids = array())
{
  global $user;
  $ids = array();
  foreach ($image_ids as $id)
  {
    $id = intval($id);
    if ($id > 0)
    {
      $ids[$id] = true;
    }
  }
  $ids = array_keys($ids);
  pwg_query('
INSERT INTO ' . s3c_table('requests') . ' (kind, requested_by, photos, status)
  VALUES (\'' . pwg_db_real_escape_string($kind) . '\', ' . intval($user['id']) . ', ' . count($ids) . ', \'' . S3C_REQUEST_DRAFT . '\')
;');
  $request_id = pwg_db_insert_id();
  foreach (array_chunk($ids, S3C_IDS_PER_INSERT) as $chunk)
  {
    $values = array();
    foreach ($chunk as $id)
    {
      $values[] = '(' . $request_id . ',' . $id . ')';
    }
    pwg_query('INSERT IGNORE INTO ' . s3c_table('request_images') . ' (request_id, image_id) VALUES ' . implode(',', $values) . ';');
  }
  pwg_query('UPDATE ' . s3c_table('requests') . ' SET status = \'' . S3C_REQUEST_NEW . '\' WHERE id = ' . $request_id . ';');
  return $request_id;
}

function s3c_request($request_id)
{
  $query = 'SELECT * FROM ' . s3c_table('requests') . ' WHERE id = ' . intval($request_id) . ';';
  $row = pwg_db_fetch_assoc(pwg_query($query));
  return $row ? $row : null;
}

/** Waits briefly for a running daemon to answer a request. */
function s3c_wait_for_request($request_id, $seconds)
{
  $deadline = microtime(true) + $seconds;
  do
  {
    $request = s3c_request($request_id);
    if ($request and in_array($request['status'], array(S3C_REQUEST_DONE, S3C_REQUEST_FAILED)))
    {
      return $request;
    }
    usleep(200000);
  }
  while (microtime(true) < $deadline);
  return $request;
}

/** A one-line, translated, plain-text summary of a request. */
function s3c_request_summary($request)
{
  if ($request['status'] == S3C_REQUEST_FAILED)
  {
    return l10n('s3c_request_failed', $request['id'], $request['error']);
  }
  if ($request['status'] != S3C_REQUEST_DONE)
  {
    return l10n('s3c_request_waiting', $request['id']);
  }
  if ($request['kind'] == S3C_REQUEST_RETRY)
  {
    return l10n('s3c_request_retry_done', $request['queued']);
  }
  return l10n('s3c_request_enqueue_done',
    $request['queued'], $request['selected'], $request['already_uploaded'],
    $request['already_queued'], $request['duplicates']);
}

/**
 * Daemons that reported in, newest first, with the seconds since each was
 * last seen (by the database clock, so the web server's clock does not
 * matter). All columns: a daemon older than the plugin lacks the S3 ones.
 */
function s3c_heartbeats()
{
  if (!s3c_tables_ready(array('heartbeat')))
  {
    return array();
  }
  $query = '
SELECT *, TIMESTAMPDIFF(SECOND, last_seen, NOW(3)) AS age
  FROM ' . s3c_table('heartbeat') . '
  ORDER BY last_seen DESC
  LIMIT 5
;';
  return query2array($query);
}

/**
 * Why the daemon URL may not receive the token, or null when it may: a
 * URL that does not parse, or plain http:// to a host other than this one
 * without the admin's explicit consent.
 */
function s3c_daemon_url_problem($url, $allow_plain_http)
{
  $parts = parse_url($url);
  if (!is_array($parts) or !isset($parts['scheme'], $parts['host'])
    or !in_array(strtolower($parts['scheme']), array('http', 'https'), true)
    or isset($parts['user']) or isset($parts['pass']) or preg_match('/\s/', $url))
  {
    return l10n('s3c_url_malformed');
  }
  if (strtolower($parts['scheme']) == 'http' and !$allow_plain_http
    and !s3c_is_loopback(trim($parts['host'], '[]')))
  {
    return l10n('s3c_url_plain_http');
  }
  return null;
}

function s3c_is_loopback($host)
{
  $host = strtolower($host);
  if ($host == 'localhost' or $host == '::1')
  {
    return true;
  }
  return (bool)preg_match('/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/', $host);
}

/**
 * GET on the daemon's listener with the token. Returns array(HTTP code,
 * decoded JSON or null, null) or array(0, null, reason); the reason never
 * contains the token.
 */
function s3c_daemon_get($path)
{
  $settings = s3c_settings();
  if ($settings['daemon_url'] === '' or $settings['daemon_token'] === '')
  {
    return array(0, null, l10n('s3c_test_not_set'));
  }
  $problem = s3c_daemon_url_problem($settings['daemon_url'], $settings['allow_plain_http']);
  if ($problem !== null)
  {
    return array(0, null, $problem);
  }
  if (!function_exists('curl_init'))
  {
    return array(0, null, l10n('s3c_no_curl'));
  }
  $curl = curl_init(rtrim($settings['daemon_url'], '/') . $path);
  curl_setopt_array($curl, array(
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_CONNECTTIMEOUT => 3,
    CURLOPT_TIMEOUT => 10,
    CURLOPT_FOLLOWLOCATION => false,
    CURLOPT_HTTPHEADER => array('Authorization: Bearer ' . $settings['daemon_token']),
  ));
  $body = curl_exec($curl);
  $code = curl_getinfo($curl, CURLINFO_HTTP_CODE);
  $error = curl_error($curl);
  curl_close($curl);
  if ($body === false)
  {
    return array(0, null, l10n('s3c_test_unreachable', $settings['daemon_url'], $error));
  }
  $answer = json_decode($body, true);
  return array($code, is_array($answer) ? $answer : null, null);
}

/**
 * Asks the daemon for a short-lived presigned GET URL of a recorded
 * upload. Returns array(url, null) or array(null, reason).
 */
function s3c_presign($image_id)
{
  list($code, $answer, $reason) = s3c_daemon_get('/presign/' . intval($image_id));
  if ($reason !== null)
  {
    return array(null, $reason);
  }
  if ($code == 200 and isset($answer['url']))
  {
    return array($answer['url'], null);
  }
  $error = isset($answer['error']) ? $answer['error'] : 'no answer';
  return array(null, 'daemon answered HTTP ' . $code . ': ' . $error);
}

/**
 * The "Test connection" button: reaches the daemon with the token, then
 * asks whether the daemon reaches S3. Returns array(works, message).
 */
function s3c_test_connection()
{
  list($code, $answer, $reason) = s3c_daemon_get('/status');
  if ($reason !== null)
  {
    return array(false, $reason);
  }
  if ($code == 401)
  {
    return array(false, l10n('s3c_test_wrong_token'));
  }
  if ($code == 403)
  {
    return array(false, l10n('s3c_test_token_off'));
  }
  if ($code != 200)
  {
    return array(false, l10n('s3c_test_http', $code));
  }
  list($code, $ready, $reason) = s3c_daemon_get('/readyz');
  if ($reason === null and isset($ready['s3']['ok']) and !$ready['s3']['ok'])
  {
    $detail = isset($ready['s3']['error']) ? $ready['s3']['error'] : '';
    return array(false, l10n('s3c_test_no_s3', $detail));
  }
  return array(true, l10n('s3c_test_works'));
}

/**
 * What the running daemon last found of S3 (heartbeat): null while S3
 * answers (or nothing is known), else array(state, detail) with state
 * `refused` (keys, policy or bucket wrong) or `unreachable`.
 */
function s3c_s3_trouble()
{
  static $trouble = false;
  if ($trouble !== false)
  {
    return $trouble;
  }
  $trouble = null;
  foreach (s3c_heartbeats() as $hb)
  {
    if (!empty($hb['stopped_at']) or intval($hb['age']) > S3C_ALIVE_SECONDS)
    {
      continue;
    }
    if (isset($hb['s3_state']) and in_array($hb['s3_state'], array(S3C_S3_REFUSED, S3C_S3_UNREACHABLE), true))
    {
      $trouble = array($hb['s3_state'], $hb['s3_detail']);
    }
    break;
  }
  return $trouble;
}

/**
 * The link offered for a recorded upload: the plugin's endpoint, the
 * public URL, or Piwigo's own download of the local original while the
 * daemon reports S3 refusing or unreachable. `$admin` adds the session's
 * pwg_token, as Piwigo's own administration download links do.
 */
function s3c_download_url($image_id, $uploaded, $admin = false)
{
  $settings = s3c_settings();
  if ($settings['link_mode'] == 'public' and s3c_s3_trouble() === null)
  {
    return $uploaded['url'];
  }
  if ($settings['link_mode'] == 'public')
  {
    return s3c_piwigo_download_url($image_id);
  }
  $url = get_root_url() . 'plugins/' . S3C_ID . '/download.php?image_id=' . intval($image_id);
  if ($admin)
  {
    $url .= '&pwg_token=' . get_pwg_token();
  }
  return $url;
}

/**
 * Piwigo's own download of the local original (action.php), unescaped:
 * templates escape it, and download.php sends it as a Location.
 */
function s3c_piwigo_download_url($image_id)
{
  return get_root_url() . 'action.php?id=' . intval($image_id) . '&part=e&download';
}
