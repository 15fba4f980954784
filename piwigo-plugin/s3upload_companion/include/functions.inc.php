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
 * Whether the current user may see this photo and its original file, by
 * Piwigo's own rules: privacy level, forbidden albums, the current filter,
 * and the "access to original" right.
 */
function s3c_user_can_see($image_id)
{
  global $user;
  $image_id = intval($image_id);
  if ($image_id <= 0)
  {
    return false;
  }
  if (is_admin())
  {
    $query = 'SELECT id FROM ' . IMAGES_TABLE . ' WHERE id = ' . $image_id . ';';
    return pwg_db_num_rows(pwg_query($query)) > 0;
  }
  if (isset($user['enabled_high']) and !get_boolean($user['enabled_high']))
  {
    return false;
  }
  $query = '
SELECT i.id
  FROM ' . IMAGES_TABLE . ' AS i
    INNER JOIN ' . IMAGE_CATEGORY_TABLE . ' AS ic ON ic.image_id = i.id
  WHERE i.id = ' . $image_id . '
' . get_sql_condition_FandF(
      array(
        'forbidden_categories' => 'ic.category_id',
        'visible_categories' => 'ic.category_id',
        'visible_images' => 'i.id',
      ),
      '    AND ') . '
  LIMIT 1
;';
  return pwg_db_num_rows(pwg_query($query)) > 0;
}

/** Whether the download link is offered to the current user at all. */
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
  VALUES (\'' . pwg_db_real_escape_string($kind) . '\', ' . intval($user['id']) . ', ' . count($ids) . ', \'draft\')
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
  pwg_query('UPDATE ' . s3c_table('requests') . ' SET status = \'new\' WHERE id = ' . $request_id . ';');
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
    if ($request and in_array($request['status'], array('done', 'failed')))
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
  if ($request['status'] == 'failed')
  {
    return l10n('The daemon could not carry out request #%d: %s', $request['id'], $request['error']);
  }
  if ($request['status'] != 'done')
  {
    return l10n('Request #%d is waiting for the daemon; results appear in the S3Upload tab once it has run.', $request['id']);
  }
  if ($request['kind'] == 'retry')
  {
    return l10n_dec('%d failed upload put back in the queue.', '%d failed uploads put back in the queue.', $request['queued']);
  }
  return l10n('Queued %d of %d selected photos; skipped %d already uploaded, %d already queued, %d md5 duplicates.',
    $request['queued'], $request['selected'], $request['already_uploaded'],
    $request['already_queued'], $request['duplicates']);
}

/**
 * Daemons that reported in, newest first, with the seconds since each was
 * last seen (by the database clock, so the web server's clock does not
 * matter).
 */
function s3c_heartbeats()
{
  if (!s3c_tables_ready(array('heartbeat')))
  {
    return array();
  }
  $query = '
SELECT daemon, host, version, started_at, last_seen, stopped_at,
    TIMESTAMPDIFF(SECOND, last_seen, NOW(3)) AS age
  FROM ' . s3c_table('heartbeat') . '
  ORDER BY last_seen DESC
  LIMIT 5
;';
  return query2array($query);
}

/**
 * Asks the daemon for a short-lived presigned GET URL of a recorded
 * upload. Returns array(url, null) or array(null, reason); the reason never
 * contains the token.
 */
function s3c_presign($image_id)
{
  $settings = s3c_settings();
  if ($settings['daemon_url'] === '' or $settings['daemon_token'] === '')
  {
    return array(null, 'the daemon URL or token is not set');
  }
  $url = rtrim($settings['daemon_url'], '/') . '/presign/' . intval($image_id);
  $curl = curl_init($url);
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
    return array(null, 'daemon unreachable: ' . $error);
  }
  $answer = json_decode($body, true);
  if ($code == 200 and is_array($answer) and isset($answer['url']))
  {
    return array($answer['url'], null);
  }
  $reason = is_array($answer) && isset($answer['error']) ? $answer['error'] : 'no answer';
  return array(null, 'daemon answered HTTP ' . $code . ': ' . $reason);
}

/** The link offered for a recorded upload: the plugin's endpoint, or the public URL. */
function s3c_download_url($image_id, $uploaded)
{
  $settings = s3c_settings();
  if ($settings['link_mode'] == 'public')
  {
    return $uploaded['url'];
  }
  return get_root_url() . 'plugins/' . S3C_ID . '/download.php?image_id=' . intval($image_id);
}
