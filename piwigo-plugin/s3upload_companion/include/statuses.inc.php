<?php
// Made from the daemon's src/status.rs by its test `plugin_statuses_match`:
// change the strings there, never here.
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

define('S3C_STATUS_PENDING', 'pending');
define('S3C_STATUS_WAITING_FOR_DUPLICATE', 'waiting_for_duplicate');
define('S3C_STATUS_WAITING_FOR_KEY', 'waiting_for_key');
define('S3C_STATUS_FAILED_FILE_MISSING', 'failed_file_missing');
define('S3C_STATUS_FAILED_FILE_UNREADABLE', 'failed_file_unreadable');
define('S3C_STATUS_FAILED_FILE_STALLED', 'failed_file_stalled');
define('S3C_STATUS_FAILED_FILE_CHANGED', 'failed_file_changed');
define('S3C_STATUS_FAILED_PATH_OUTSIDE_ROOT', 'failed_path_outside_root');
define('S3C_STATUS_FAILED_BAD_FILE_NAME', 'failed_bad_file_name');
define('S3C_STATUS_FAILED_KEY_TOO_LONG', 'failed_key_too_long');
define('S3C_STATUS_FAILED_KEY_TAKEN', 'failed_key_taken');
define('S3C_STATUS_FAILED_RECORD', 'failed_record');
define('S3C_STATUS_FAILED_INTERNAL_ERROR', 'failed_internal_error');
define('S3C_STATUS_FAILED_CODE_PREFIX', 'failed_code_');
define('S3C_STATUS_FAILED_PREFIX', 'failed_');
define('S3C_STATUS_UPLOADING', 'uploading');
define('S3C_OUTCOME_UPLOADED', 'uploaded');
define('S3C_OUTCOME_ALREADY_PRESENT', 'already_present');
define('S3C_OUTCOME_DUPLICATE', 'duplicate');
