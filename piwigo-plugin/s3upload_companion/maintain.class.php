<?php
defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');

/**
 * Install, update and uninstall. The daemon owns its tables (it creates
 * them on its first start); the plugin only keeps its settings.
 */
class s3upload_companion_maintain extends PluginMaintain
{
  /** Oldest Piwigo release the plugin is tested with. */
  const MIN_PIWIGO = '14.0.0';

  private $default_settings = array(
    'link_visibility' => 'admins',
    'link_mode' => 'private',
    'daemon_url' => 'http://127.0.0.1:9187',
    'daemon_token' => '',
  );

  function install($plugin_version, &$errors = array())
  {
    if (version_compare(PHPWG_VERSION, self::MIN_PIWIGO, '<'))
    {
      $errors[] = 'S3Upload companion needs Piwigo ' . self::MIN_PIWIGO . ' or newer';
      return;
    }
    $this->check_curl($errors);
    global $conf;
    $current = array();
    if (isset($conf['s3upload_companion']))
    {
      $decoded = json_decode($conf['s3upload_companion'], true);
      $current = is_array($decoded) ? $decoded : array();
    }
    conf_update_param('s3upload_companion',
      json_encode(array_merge($this->default_settings, $current)), true,
      'pwg_db_real_escape_string');
  }

  function activate($plugin_version, &$errors = array())
  {
    $this->check_curl($errors);
  }

  /**
   * Download links need PHP's curl to reach the daemon: say so when
   * activating rather than fail on a visitor's click.
   */
  private function check_curl(&$errors)
  {
    if (!function_exists('curl_init'))
    {
      load_language('plugin.lang', dirname(__FILE__) . '/', array('force_fallback' => 'en_UK'));
      $errors[] = l10n('s3c_no_curl');
    }
  }

  function update($old_version, $new_version, &$errors = array())
  {
    $this->install($new_version, $errors);
  }

  function deactivate()
  {
  }

  function uninstall()
  {
    conf_delete_param('s3upload_companion');
  }
}
