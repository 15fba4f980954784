<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/*
 * What each status word means and what fixes it, in plain language, and
 * the words of the plugin's own requests and of the heartbeat. The queue's
 * statuses and outcomes themselves come from statuses.inc.php, made from
 * the daemon's src/status.rs.
 */
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
  return $column . ' LIKE \'' . S3C_STATUS_FAILED_PREFIX . '%\'';
}

function s3c_is_failed($status)
{
  return strpos($status, S3C_STATUS_FAILED_PREFIX) === 0;
}

/**
 * What a status means and how to fix it, translated: array(meaning, fix);
 * the fix is '' when nothing is to be done.
 */
function s3c_status_explained($status)
{
  $known = array(
    S3C_OUTCOME_UPLOADED => array('s3c_st_uploaded', ''),
    S3C_OUTCOME_ALREADY_PRESENT => array('s3c_st_already_present', ''),
    S3C_OUTCOME_DUPLICATE => array('s3c_st_duplicate', ''),
    S3C_STATUS_PENDING => array('s3c_st_pending', ''),
    S3C_STATUS_UPLOADING => array('s3c_st_uploading', ''),
    S3C_STATUS_WAITING_FOR_DUPLICATE => array('s3c_st_waiting_for_duplicate', ''),
    S3C_STATUS_WAITING_FOR_KEY => array('s3c_st_waiting_for_key', ''),
    S3C_STATUS_FAILED_FILE_MISSING => array('s3c_st_failed_file_missing', 's3c_fix_file_missing'),
    S3C_STATUS_FAILED_FILE_UNREADABLE => array('s3c_st_failed_file_unreadable', 's3c_fix_file_unreadable'),
    S3C_STATUS_FAILED_FILE_STALLED => array('s3c_st_failed_file_stalled', 's3c_fix_file_stalled'),
    S3C_STATUS_FAILED_FILE_CHANGED => array('s3c_st_failed_file_changed', 's3c_fix_retry'),
    S3C_STATUS_FAILED_PATH_OUTSIDE_ROOT => array('s3c_st_failed_path_outside_root', 's3c_fix_path_outside_root'),
    S3C_STATUS_FAILED_BAD_FILE_NAME => array('s3c_st_failed_bad_file_name', 's3c_fix_bad_file_name'),
    S3C_STATUS_FAILED_KEY_TOO_LONG => array('s3c_st_failed_key_too_long', 's3c_fix_key_layout'),
    S3C_STATUS_FAILED_KEY_TAKEN => array('s3c_st_failed_key_taken', 's3c_fix_key_layout'),
    S3C_STATUS_FAILED_RECORD => array('s3c_st_failed_record', 's3c_fix_retry'),
    S3C_STATUS_FAILED_INTERNAL_ERROR => array('s3c_st_failed_internal_error', 's3c_fix_report'),
    S3C_STATUS_FAILED_CODE_PREFIX . '0' => array('s3c_st_failed_code_0', 's3c_fix_unreachable'),
    S3C_STATUS_FAILED_CODE_PREFIX . '400' => array('s3c_st_failed_code_400', 's3c_fix_400'),
    S3C_STATUS_FAILED_CODE_PREFIX . '403' => array('s3c_st_failed_code_403', 's3c_fix_403'),
    S3C_STATUS_FAILED_CODE_PREFIX . '404' => array('s3c_st_failed_code_404', 's3c_fix_404'),
  );
  if (isset($known[$status]))
  {
    list($meaning, $fix) = $known[$status];
    return array(l10n($meaning), $fix === '' ? '' : l10n($fix));
  }
  if (preg_match('/^' . S3C_STATUS_FAILED_CODE_PREFIX . '(\d+)$/', $status, $m))
  {
    return intval($m[1]) >= 500
      ? array(l10n('s3c_st_failed_code_5xx', $m[1]), l10n('s3c_fix_unreachable'))
      : array(l10n('s3c_st_failed_code_other', $m[1]), l10n('s3c_fix_other_code'));
  }
  return array($status, s3c_is_failed($status) ? l10n('s3c_fix_retry') : '');
}
