<?php
/*
Plugin Name: S3Upload companion
Version: 0.1.0
Description: Shows, inside Piwigo, what the piwigo-s3upload daemon does: a download link to each photo's S3 copy, a Batch Manager action to queue photos, a status tab with a retry button, and each photo's S3 status. Works with Piwigo 14 and 16. Holds no S3 keys: the daemon signs links.
Plugin URI: https://github.com/piwigo-s3upload/piwigo-s3upload
Author: piwigo-s3upload contributors
Has Settings: true
*/

defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

define('S3C_ID', basename(dirname(__FILE__)));
define('S3C_PATH', PHPWG_PLUGINS_PATH . S3C_ID . '/');
define('S3C_ADMIN', get_root_url() . 'admin.php?page=plugin-' . S3C_ID);

include_once(S3C_PATH . 'include/statuses.inc.php');
include_once(S3C_PATH . 'include/status_words.inc.php');
include_once(S3C_PATH . 'include/functions.inc.php');
include_once(S3C_PATH . 'include/summary.inc.php');

add_event_handler('init', 's3c_init');
function s3c_init()
{
  // English first, so a language without a file of ours shows English
  // rather than our keys.
  load_language('plugin.lang', S3C_PATH, array('force_fallback' => 'en_UK'));
}

if (defined('IN_ADMIN'))
{
  include_once(S3C_PATH . 'include/admin_hooks.inc.php');
}
else
{
  include_once(S3C_PATH . 'include/picture_link.inc.php');
}
