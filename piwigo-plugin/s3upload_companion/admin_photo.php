<?php
/*
 * The "S3" tab of a photo's edit page: its place in the queue or its
 * upload record, and a button to queue it.
 */
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

check_status(ACCESS_ADMINISTRATOR);
check_input_parameter('image_id', $_GET, false, PATTERN_ID);
if (!isset($_GET['image_id']))
{
  page_not_found('image_id is missing');
}
$image_id = intval($_GET['image_id']);

// The photo page's own tabs, with ours selected.
global $admin_photo_base_url;
$admin_photo_base_url = get_root_url() . 'admin.php?page=photo-' . $image_id;
include_once(PHPWG_ROOT_PATH . 'admin/include/tabsheet.class.php');
$tabsheet = new tabsheet();
$tabsheet->set_id('photo');
$tabsheet->select(S3C_ID);
$tabsheet->assign();

$photo = pwg_db_fetch_assoc(pwg_query('SELECT id, file, path FROM ' . IMAGES_TABLE . ' WHERE id = ' . $image_id . ';'));
if (!$photo)
{
  page_not_found('no such photo');
}

$ready = s3c_tables_ready();
if (isset($_POST['s3c_queue']) and $ready)
{
  check_pwg_token();
  $request = s3c_wait_for_request(s3c_file_request(S3C_REQUEST_ENQUEUE, array($image_id)), 5);
  $page['infos'][] = htmlspecialchars(s3c_request_summary($request));
}
if (isset($_POST['s3c_retry_photo']) and $ready)
{
  check_pwg_token();
  $request = s3c_wait_for_request(s3c_file_request(S3C_REQUEST_RETRY, array($image_id)), 5);
  $page['infos'][] = htmlspecialchars(s3c_request_summary($request));
}

$queued = null;
$uploaded = null;
$versions = array();
if ($ready)
{
  $queued = pwg_db_fetch_assoc(pwg_query('
SELECT IF(claimed_until > NOW(3), \'' . S3C_STATUS_UPLOADING . '\', status) AS status, attempts, last_error, updated_at, next_attempt_at
  FROM ' . s3c_table('queue') . '
  WHERE image_id = ' . $image_id . ' AND kind = \'photo\'
;'));
  if ($queued)
  {
    list($queued['meaning'], $queued['fix']) = s3c_status_explained($queued['status']);
    $queued['failed'] = s3c_is_failed($queued['status']);
  }
  $uploaded = s3c_uploaded($image_id);
  if ($uploaded)
  {
    $uploaded['link'] = s3c_download_url($image_id, $uploaded, true);
    list($uploaded['meaning'], $uploaded['fix']) = s3c_status_explained($uploaded['outcome']);
  }
  // Earlier objects of the photo and its formats, newest first: the
  // daemon keeps them when the file changes (the versions table comes
  // with daemons that keep versions).
  if (s3c_tables_ready(array('versions')))
  {
    $result = pwg_query('
SELECT kind, kind_id, version, s3_key, md5, size, uploaded_at, superseded_at, removed_at
  FROM ' . s3c_table('versions') . '
  WHERE image_id = ' . $image_id . '
  ORDER BY kind_id, version DESC
;');
    while ($row = pwg_db_fetch_assoc($result))
    {
      $versions[] = $row;
    }
  }
}

$template->set_filename('s3c_photo', realpath(S3C_PATH . 'template/admin_photo.tpl'));
$template->assign(array(
  'ADMIN_PAGE_TITLE' => l10n('Edit photo') . ' <span class="image-id">#' . $image_id . '</span>',
  'S3C_ACTION' => get_root_url() . 'admin.php?page=plugin-' . S3C_ID . '-photo&amp;image_id=' . $image_id,
  'PWG_TOKEN' => get_pwg_token(),
  'S3C_READY' => $ready,
  'S3C_PHOTO' => $photo,
  'S3C_QUEUED' => $queued ? $queued : null,
  'S3C_RECORD' => $uploaded,
  'S3C_VERSIONS' => $versions,
));
$template->assign_var_from_handle('ADMIN_CONTENT', 's3c_photo');
