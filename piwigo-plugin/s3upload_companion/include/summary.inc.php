<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/*
 * The admin's daily questions, answered from the daemon's tables: how much
 * is backed up, when it last worked, whether the daemon and S3 are fine,
 * what the last verify found; and what needs attention now.
 */

/** The at-a-glance figures, or null before the daemon made its tables. */
function s3c_summary()
{
  if (!s3c_tables_ready(array('queue', 'uploaded')))
  {
    return null;
  }
  $total = intval(pwg_db_fetch_row(pwg_query('SELECT COUNT(*) FROM ' . IMAGES_TABLE . ';'))[0]);
  $row = pwg_db_fetch_assoc(pwg_query('
SELECT COUNT(DISTINCT u.image_id) AS backed_up,
    SUM(IF(u.outcome = \'duplicate\', 0, u.size)) AS bytes,
    MAX(u.uploaded_at) AS last_upload
  FROM ' . s3c_table('uploaded') . ' AS u
    INNER JOIN ' . IMAGES_TABLE . ' AS i ON i.id = u.image_id
;'));
  $failed = intval(pwg_db_fetch_row(pwg_query(
    'SELECT COUNT(*) FROM ' . s3c_table('queue') . ' WHERE kind = \'photo\' AND ' . s3c_failed_condition('status') . ';'))[0]);
  $backed_up = intval($row['backed_up']);
  return array(
    'total' => $total,
    'backed_up' => $backed_up,
    'share' => $total > 0 ? floor(1000 * $backed_up / $total) / 10 : 100,
    'bytes' => intval($row['bytes']),
    'size' => s3c_human_size(intval($row['bytes'])),
    'last_upload' => $row['last_upload'],
    'failed' => $failed,
    'verify' => s3c_last_verify(),
    'snapshot' => s3c_last_snapshot(),
    'hold' => s3c_deletions_hold(),
  );
}

/**
 * The daemon's hold on deletions from the bucket (many photos gone from
 * Piwigo at once, or its tables replaced): the reason and since when, or
 * null. Nothing is deleted until an administrator releases it with
 * `piwigo-s3upload retention --release`.
 */
function s3c_deletions_hold()
{
  if (!s3c_tables_ready(array('state')))
  {
    return null;
  }
  $row = pwg_db_fetch_assoc(pwg_query('SELECT value, updated_at FROM ' . s3c_table('state')
    . ' WHERE name = \'deletions_hold\';'));
  if (!$row)
  {
    return null;
  }
  return array('reason' => $row['value'], 'since' => substr($row['updated_at'], 0, 16));
}

/**
 * The last database snapshot the daemon (or `piwigo-s3upload snapshot`)
 * took, as recorded in its state table, or null before the first.
 */
function s3c_last_snapshot()
{
  if (!s3c_tables_ready(array('state')))
  {
    return null;
  }
  $values = query2array('SELECT name, value FROM ' . s3c_table('state')
    . ' WHERE name LIKE \'snapshot\\_%\';', 'name', 'value');
  if (!isset($values['snapshot_at']))
  {
    return null;
  }
  $get = function ($name) use ($values) {
    return isset($values[$name]) ? $values[$name] : '';
  };
  $last_ok_at = intval($get('snapshot_last_ok_at'));
  return array(
    'at' => date('Y-m-d H:i', intval($get('snapshot_at'))),
    'ok' => $get('snapshot_ok') === '1',
    'name' => $get('snapshot_name'),
    'size' => s3c_human_size(intval($get('snapshot_bytes'))),
    'error' => $get('snapshot_error'),
    'last_ok_at' => $last_ok_at > 0 ? date('Y-m-d H:i', $last_ok_at) : null,
  );
}

/** The last `verify` run, as the daemon recorded it, or null. */
function s3c_last_verify()
{
  if (!s3c_tables_ready(array('state')))
  {
    return null;
  }
  $values = query2array('SELECT name, value FROM ' . s3c_table('state')
    . ' WHERE name LIKE \'verify\\_%\';', 'name', 'value');
  if (!isset($values['verify_at']))
  {
    return null;
  }
  $n = function ($name) use ($values) {
    return isset($values[$name]) ? intval($values[$name]) : 0;
  };
  $problems = $n('verify_not_backed_up') + $n('verify_objects_missing')
    + $n('verify_objects_damaged') + $n('verify_files_with_problems');
  return array(
    'at' => date('Y-m-d H:i', intval($values['verify_at'])),
    'ok' => $n('verify_ok') == 1 and $problems == 0,
    'problems' => $problems,
  );
}

function s3c_human_size($bytes)
{
  $units = array('B', 'KiB', 'MiB', 'GiB', 'TiB');
  $i = 0;
  $value = $bytes;
  while ($value >= 1024 and $i < count($units) - 1)
  {
    $value /= 1024;
    $i++;
  }
  return ($i == 0 ? $value : number_format($value, 1)) . ' ' . $units[$i];
}

/**
 * What needs the admin now, as translated sentences: failures, no daemon
 * seen, S3 refusing or unreachable, a verify that found problems, a
 * database snapshot that failed.
 */
function s3c_attention()
{
  $problems = array();
  if (!s3c_tables_ready())
  {
    return $problems;
  }
  $heartbeats = s3c_heartbeats();
  if (empty($heartbeats) or intval($heartbeats[0]['age']) > S3C_ALIVE_SECONDS)
  {
    $problems[] = l10n('s3c_attention_no_daemon');
  }
  $trouble = s3c_s3_trouble();
  if ($trouble !== null)
  {
    $problems[] = l10n($trouble[0] == S3C_S3_REFUSED ? 's3c_attention_s3_refused' : 's3c_attention_s3_unreachable');
  }
  $failed = intval(pwg_db_fetch_row(pwg_query(
    'SELECT COUNT(*) FROM ' . s3c_table('queue') . ' WHERE kind = \'photo\' AND ' . s3c_failed_condition('status') . ';'))[0]);
  if ($failed > 0)
  {
    $problems[] = l10n('s3c_attention_failed', $failed);
  }
  $verify = s3c_last_verify();
  if ($verify !== null and !$verify['ok'])
  {
    $problems[] = l10n('s3c_attention_verify', $verify['problems']);
  }
  if (s3c_deletions_hold() !== null)
  {
    $problems[] = l10n('s3c_attention_hold');
  }
  $snapshot = s3c_last_snapshot();
  if ($snapshot !== null and !$snapshot['ok'])
  {
    $problems[] = l10n('s3c_attention_snapshot');
  }
  return $problems;
}
