<?php
/*
 * The private-bucket download link: lets through exactly the users
 * Piwigo's own download (action.php) would serve, asks the daemon for a
 * short-lived presigned URL, and redirects to it. While the daemon reports
 * S3 refusing or unreachable, it sends the user to Piwigo's own download
 * of the local original instead. The plugin never holds S3 keys.
 */

define('PHPWG_ROOT_PATH', '../../');
include_once(PHPWG_ROOT_PATH . 'include/common.inc.php');

// A members-only gallery answers an anonymous visitor as Piwigo does:
// with its login page.
check_status(ACCESS_GUEST);

if (!defined('S3C_ID'))
{
  set_status_header(404);
  die('The S3Upload companion plugin is not active.');
}

function s3c_redirect($url)
{
  // Piwigo's redirect_http() decodes HTML entities; these URLs are raw.
  set_status_header(302);
  header('Cache-Control: no-store');
  header('Referrer-Policy: no-referrer');
  header('Location: ' . $url);
  exit;
}

function s3c_refuse($code, $message)
{
  set_status_header($code);
  header('Content-Type: text/plain; charset=utf-8');
  header('Cache-Control: no-store');
  echo $message;
  exit;
}

$image_id = isset($_GET['image_id']) ? $_GET['image_id'] : '';
if (!is_string($image_id) or !preg_match('/^[1-9]\d{0,9}$/', $image_id))
{
  s3c_refuse(400, 'image_id must be a photo id');
}
// The administration's links carry the session's pwg_token and work
// whatever the photo-page setting says.
$admin_link = s3c_is_admin_link();
// Hidden and missing photos answer alike: nothing about them leaks.
if (!($admin_link or s3c_link_offered()) or !s3c_user_may_download($image_id, $admin_link))
{
  s3c_refuse(404, 'No such photo');
}
$uploaded = s3c_uploaded($image_id);
if ($uploaded === null)
{
  s3c_refuse(404, 'This photo has no copy in S3 yet');
}
if (s3c_s3_trouble() !== null)
{
  // action.php records the download itself.
  s3c_redirect(s3c_piwigo_download_url($image_id));
}
$settings = s3c_settings();
if ($settings['link_mode'] == 'public')
{
  $url = $uploaded['url'];
}
else
{
  list($url, $reason) = s3c_presign($image_id);
  if ($url === null)
  {
    trigger_error('S3Upload companion: presign for photo ' . intval($image_id) . ' failed: ' . $reason, E_USER_WARNING);
    s3c_refuse(502, 'The download link is unavailable right now; please try again later.');
  }
}
// Recorded in Piwigo's History, and announced to other plugins, as
// Piwigo's own download of an original is.
pwg_log(intval($image_id), 'high');
trigger_notify('loc_action_before_http_headers');
s3c_redirect($url);
