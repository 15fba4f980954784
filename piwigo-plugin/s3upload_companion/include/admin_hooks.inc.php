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
  $request_id = s3c_file_request(S3C_REQUEST_ENQUEUE, $collection);
  $request = s3c_wait_for_request($request_id, S3C_BATCH_WAIT);
  // Piwigo prints messages as HTML; the daemon's error text is plain.
  $message = htmlspecialchars(s3c_request_summary($request));
  if ($request['status'] == S3C_REQUEST_FAILED)
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

/*
 * Batch Manager filters, so an admin can select exactly the photos that
 * need action (and then apply "Upload to S3" to them).
 */
add_event_handler('get_batch_manager_prefilters', 's3c_prefilters');
function s3c_prefilters($prefilters)
{
  if (s3c_tables_ready(array('queue', 'uploaded')))
  {
    $prefilters[] = array('ID' => S3C_PREFILTER_NOT_BACKED_UP, 'NAME' => l10n('s3c_prefilter_not_backed_up'));
    $prefilters[] = array('ID' => S3C_PREFILTER_FAILED, 'NAME' => l10n('s3c_prefilter_failed'));
    $prefilters[] = array('ID' => S3C_PREFILTER_BACKED_UP, 'NAME' => l10n('s3c_prefilter_backed_up'));
  }
  return $prefilters;
}

add_event_handler('perform_batch_manager_prefilters', 's3c_perform_prefilter', EVENT_HANDLER_PRIORITY_NEUTRAL, 2);
function s3c_perform_prefilter($filter_sets, $prefilter)
{
  if (!in_array($prefilter, array(S3C_PREFILTER_NOT_BACKED_UP, S3C_PREFILTER_FAILED, S3C_PREFILTER_BACKED_UP), true))
  {
    return $filter_sets;
  }
  if (!s3c_tables_ready(array('queue', 'uploaded')))
  {
    $filter_sets[] = array();
    return $filter_sets;
  }
  switch ($prefilter)
  {
    case S3C_PREFILTER_BACKED_UP:
      $query = 'SELECT image_id FROM ' . s3c_table('uploaded') . ';';
      break;
    case S3C_PREFILTER_FAILED:
      $query = 'SELECT image_id FROM ' . s3c_table('queue') . ' WHERE kind = \'photo\' AND ' . s3c_failed_condition('status') . ';';
      break;
    default:
      $query = '
SELECT i.id AS image_id
  FROM ' . IMAGES_TABLE . ' AS i
    LEFT JOIN ' . s3c_table('uploaded') . ' AS u ON u.image_id = i.id
  WHERE u.image_id IS NULL
;';
  }
  $filter_sets[] = query2array($query, null, 'image_id');
  return $filter_sets;
}

/*
 * A notice on every administration page while something needs the
 * admin: failures, a daemon not seen, S3 refusing it, or a verify that
 * found problems. Read from the tables at page view; no pseudo-cron.
 */
add_event_handler('loc_begin_admin_page', 's3c_admin_notice');
function s3c_admin_notice()
{
  global $page;
  if (isset($_GET['page']) and strpos($_GET['page'], 'plugin-' . S3C_ID) === 0)
  {
    return;
  }
  $problems = s3c_attention();
  if (!empty($problems))
  {
    $page['warnings'][] = '<span id="s3c-notice">' . htmlspecialchars(implode(' ', $problems))
      . ' <a href="' . S3C_ADMIN . '">' . l10n('s3c_notice_open_tab') . '</a></span>';
  }
}
