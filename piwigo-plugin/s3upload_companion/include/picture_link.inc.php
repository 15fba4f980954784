<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/*
 * The "Original quality" row in the photo page's information box, for
 * photos the daemon has uploaded.
 */

add_event_handler('loc_begin_picture', 's3c_picture_filter');
function s3c_picture_filter()
{
  global $template;
  // Registered on every photo page, so the compiled template is the same
  // whether or not this photo has a link.
  $template->set_prefilter('picture', 's3c_picture_prefilter');
}

/**
 * Puts the row into the theme's info box (`id="standard"`). Smarty runs
 * the filter on included templates too: those are left alone.
 */
function s3c_picture_prefilter($source)
{
  $row = '{if isset($S3C_DOWNLOAD_URL)}<div id="S3Download" class="imageInfo">'
    . '<dt>{\'s3c_original_quality\'|@translate}</dt>'
    . '<dd><a href="{$S3C_DOWNLOAD_URL|@escape:\'html\'}" rel="nofollow">{\'s3c_download\'|@translate}</a></dd>'
    . '</div>{/if}';
  $info = strpos($source, 'id="standard"');
  if ($info !== false)
  {
    $end = strpos($source, '</dl>', $info);
    if ($end !== false)
    {
      return substr_replace($source, $row, $end, 0);
    }
  }
  return $source;
}

/** Whether the current theme's photo page has the info box the filter uses. */
function s3c_theme_has_info_box()
{
  global $template;
  foreach ((array)$template->smarty->getTemplateDir() as $dir)
  {
    $file = rtrim($dir, '/') . '/picture.tpl';
    if (is_file($file))
    {
      return strpos(file_get_contents($file), 'id="standard"') !== false;
    }
  }
  return false;
}

add_event_handler('loc_end_picture', 's3c_picture_link');
function s3c_picture_link()
{
  global $template, $picture;
  // Offered exactly to the users Piwigo's own download would serve: the
  // link must neither leak an original nor refuse one Piwigo hands out.
  if (!isset($picture['current']['id']) or !s3c_link_offered()
    or !s3c_user_may_download($picture['current']['id']))
  {
    return;
  }
  $uploaded = s3c_uploaded($picture['current']['id']);
  if ($uploaded === null)
  {
    return;
  }
  $url = s3c_download_url($picture['current']['id'], $uploaded);
  $template->assign('S3C_DOWNLOAD_URL', $url);
  if (!s3c_theme_has_info_box())
  {
    // Themes with another layout get a button in the photo's toolbar.
    $template->add_picture_button(
      '<a id="S3Download" href="' . htmlspecialchars($url) . '" rel="nofollow" title="'
      . l10n('s3c_original_quality') . '" class="pwg-state-default pwg-button">'
      . l10n('s3c_download') . '</a>', BUTTONS_RANK_NEUTRAL);
  }
}
