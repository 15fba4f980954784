<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/*
 * Every status word the daemon writes that the plugin reads, in one
 * place, with what it means and what fixes it in plain language. The
 * words mirror the daemon's enums (queue::status::Status, queue::Outcome,
 * companion::heartbeat::S3View); this file is the one to regenerate when
 * they change.
 */

/** Queue rows whose status starts with this have failed. */
define('S3C_FAILED_PREFIX', 'failed_');
/** What the plugin shows for a row a daemon holds right now. */
define('S3C_UPLOADING', 'uploading');
/** Heartbeat `s3_state` words. */
define('S3C_S3_OK', 'ok');
define('S3C_S3_REFUSED', 'refused');
define('S3C_S3_UNREACHABLE', 'unreachable');

/** Requests the plugin files (`<prefix>s3upload_requests`): kinds and states. */
define('S3C_REQUEST_ENQUEUE', 'enqueue');
define('S3C_REQUEST_RETRY', 'retry');
define('S3C_REQUEST_DRAFT', 'draft');
define('S3C_REQUEST_NEW', 'new');
define('S3C_REQUEST_DONE', 'done');
define('S3C_REQUEST_FAILED', 'failed');

/** Batch Manager filters. */
define('S3C_PREFILTER_NOT_BACKED_UP', 's3c_not_backed_up');
define('S3C_PREFILTER_FAILED', 's3c_failed');
define('S3C_PREFILTER_BACKED_UP', 's3c_backed_up');

/** An SQL condition: the column holds a failed status. */
function s3c_failed_condition($column)
{
  return $column . ' LIKE \'' . S3C_FAILED_PREFIX . '%\'';
}

function s3c_is_failed($status)
{
  return strpos($status, S3C_FAILED_PREFIX) === 0;
}

/**
 * What a status means and how to fix it, translated: array(meaning, fix);
 * the fix is '' when nothing is to be done.
 */
function s3c_status_explained($status)
{
  $known = array(
    'uploaded' => array('s3c_st_uploaded', ''),
    'already_present' => array('s3c_st_already_present', ''),
    'duplicate' => array('s3c_st_duplicate', ''),
    'pending' => array('s3c_st_pending', ''),
    S3C_UPLOADING => array('s3c_st_uploading', ''),
    'waiting_for_duplicate' => array('s3c_st_waiting_for_duplicate', ''),
    'waiting_for_key' => array('s3c_st_waiting_for_key', ''),
    'failed_file_missing' => array('s3c_st_failed_file_missing', 's3c_fix_file_missing'),
    'failed_file_unreadable' => array('s3c_st_failed_file_unreadable', 's3c_fix_file_unreadable'),
    'failed_file_stalled' => array('s3c_st_failed_file_stalled', 's3c_fix_file_stalled'),
    'failed_file_changed' => array('s3c_st_failed_file_changed', 's3c_fix_retry'),
    'failed_path_outside_root' => array('s3c_st_failed_path_outside_root', 's3c_fix_path_outside_root'),
    'failed_bad_file_name' => array('s3c_st_failed_bad_file_name', 's3c_fix_bad_file_name'),
    'failed_key_too_long' => array('s3c_st_failed_key_too_long', 's3c_fix_key_layout'),
    'failed_key_taken' => array('s3c_st_failed_key_taken', 's3c_fix_key_layout'),
    'failed_record' => array('s3c_st_failed_record', 's3c_fix_retry'),
    'failed_internal_error' => array('s3c_st_failed_internal_error', 's3c_fix_report'),
    'failed_code_0' => array('s3c_st_failed_code_0', 's3c_fix_unreachable'),
    'failed_code_400' => array('s3c_st_failed_code_400', 's3c_fix_400'),
    'failed_code_403' => array('s3c_st_failed_code_403', 's3c_fix_403'),
    'failed_code_404' => array('s3c_st_failed_code_404', 's3c_fix_404'),
  );
  if (isset($known[$status]))
  {
    list($meaning, $fix) = $known[$status];
    return array(l10n($meaning), $fix === '' ? '' : l10n($fix));
  }
  if (preg_match('/^failed_code_(\d+)$/', $status, $m))
  {
    return intval($m[1]) >= 500
      ? array(l10n('s3c_st_failed_code_5xx', $m[1]), l10n('s3c_fix_unreachable'))
      : array(l10n('s3c_st_failed_code_other', $m[1]), l10n('s3c_fix_other_code'));
  }
  return array($status, s3c_is_failed($status) ? l10n('s3c_fix_retry') : '');
}
