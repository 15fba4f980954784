<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/*
 * Hooks into Piwigo's administration: the Batch Manager action, the tab on
 * the photo edit page, and the plugin's menu entry.
 */

/** The Batch Manager action id. */
define('S3C_BATCH_ACTION', 's3upload_companion_queue');
/** Seconds the Batch Manager waits for a running daemon's counts. */
define('S3C_BATCH_WAIT', 5);

add_event_handler('get_admin_plugin_menu_links', 's3c_admin_menu');
function s3c_admin_menu($menu)
{
  $menu[] = array('NAME' => 'S3Upload', 'URL' => 'admin.php?page=plugin-' . S3C_ID);
  return $menu;
}

add_event_handler('loc_end_element_set_global', 's3c_batch_action');
function s3c_batch_action()
{
  global $template;
  $template->append('element_set_global_plugins_actions', array(
    'ID' => S3C_BATCH_ACTION,
    'NAME' => l10n('s3c_upload_to_s3'),
    'CONTENT' => '<p>' . l10n('s3c_batch_action_help') . '</p>',
  ));
}

add_event_handler('element_set_global_action', 's3c_batch_apply', EVENT_HANDLER_PRIORITY_NEUTRAL, 2);
function s3c_batch_apply($action, $collection)
{
  global $page;
  if ($action != S3C_BATCH_ACTION)
  {
    return;
  }
  // The Batch Manager checked the token already; this action writes to
  // the daemon's tables, so it does not rely on that alone.
  check_pwg_token();
  if (!s3c_tables_ready())
  {
    $page['errors'][] = l10n('s3c_no_tables');
    return;
  }
  $request_id = s3c_file_request('enqueue', $collection);
  $request = s3c_wait_for_request($request_id, S3C_BATCH_WAIT);
  // Piwigo prints messages as HTML; the daemon's error text is plain.
  $message = htmlspecialchars(s3c_request_summary($request));
  if ($request['status'] == 'failed')
  {
    $page['errors'][] = $message;
  }
  else
  {
    $page['infos'][] = $message;
  }
}

add_event_handler('tabsheet_before_select', 's3c_photo_tab', EVENT_HANDLER_PRIORITY_NEUTRAL, 2);
function s3c_photo_tab($sheets, $tabsheet_id)
{
  if ($tabsheet_id == 'photo' and isset($_GET['image_id']) and preg_match('/^\d+$/', $_GET['image_id']))
  {
    $sheets[S3C_ID] = array(
      'caption' => '<span class="icon-upload"></span>S3',
      'url' => get_root_url() . 'admin.php?page=plugin-' . S3C_ID . '-photo&amp;image_id=' . intval($_GET['image_id']),
    );
  }
  return $sheets;
}
