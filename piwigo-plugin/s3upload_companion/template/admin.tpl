<div class="titrePage"><h2>S3Upload</h2></div>

<div id="s3c-admin">
{if !$S3C_READY}
<p class="errors" id="s3c-no-tables">{'s3c_no_tables'|translate}</p>
{/if}
{if $S3C_NO_CURL}
<p class="errors" id="s3c-no-curl">{'s3c_no_curl'|translate}</p>
{/if}
{if $S3C_TROUBLE}
<p class="errors" id="s3c-s3-trouble" data-state="{$S3C_TROUBLE[0]|escape:html}">{if $S3C_TROUBLE[0] == 'refused'}{'s3c_s3_refused'|translate:$S3C_TROUBLE[1]|escape:html}{else}{'s3c_s3_unreachable'|translate:$S3C_TROUBLE[1]|escape:html}{/if}</p>
{/if}

{if $S3C_SUMMARY}
<fieldset id="s3c-summary">
  <legend>{'s3c_at_a_glance'|translate}</legend>
  <p class="s3c-big"><strong id="s3c-backed-up">{'s3c_backed_up_of'|translate:$S3C_SUMMARY.backed_up:$S3C_SUMMARY.total}</strong> ({$S3C_SUMMARY.share}&nbsp;%)</p>
  <table class="table2">
    <tr><th>{'s3c_bytes_in_bucket'|translate}</th><td id="s3c-bytes">{$S3C_SUMMARY.size}</td></tr>
    <tr><th>{'s3c_last_upload'|translate}</th><td id="s3c-last-upload">{if $S3C_SUMMARY.last_upload}{$S3C_SUMMARY.last_upload}{else}{'s3c_never'|translate}{/if}</td></tr>
    <tr><th>{'s3c_failed_photos'|translate}</th><td id="s3c-failed">{$S3C_SUMMARY.failed}{if $S3C_SUMMARY.failed} &mdash; <a href="admin.php?page=batch_manager&amp;filter=prefilter-s3c_failed">{'s3c_select_in_batch_manager'|translate}</a>{/if}</td></tr>
    <tr><th>{'s3c_last_verify'|translate}</th><td id="s3c-verify">{if $S3C_SUMMARY.verify}{$S3C_SUMMARY.verify.at}: {if $S3C_SUMMARY.verify.ok}{'s3c_verify_ok'|translate}{else}{'s3c_verify_problems'|translate:$S3C_SUMMARY.verify.problems}{/if}{else}{'s3c_verify_never'|translate}{/if}</td></tr>
    {if $S3C_SUMMARY.hold}
    <tr><th>{'s3c_deletions'|translate}</th><td id="s3c-hold"><strong>{'s3c_deletions_held'|translate:$S3C_SUMMARY.hold.since}</strong> {$S3C_SUMMARY.hold.reason|escape:html}. {'s3c_deletions_release'|translate}</td></tr>
    {/if}
    <tr><th>{'s3c_last_snapshot'|translate}</th><td id="s3c-snapshot">{if $S3C_SUMMARY.snapshot}{$S3C_SUMMARY.snapshot.at}: {if $S3C_SUMMARY.snapshot.ok}{$S3C_SUMMARY.snapshot.name|escape:html} ({$S3C_SUMMARY.snapshot.size}){else}{'s3c_snapshot_failed'|translate} {$S3C_SUMMARY.snapshot.error|escape:html}{if $S3C_SUMMARY.snapshot.last_ok_at} &mdash; {'s3c_snapshot_last_good'|translate:$S3C_SUMMARY.snapshot.last_ok_at}{/if}{/if}{else}{'s3c_snapshot_never'|translate}{/if}</td></tr>
    {if $S3C_REPORTED && isset($S3C_REPORTED.bucket) && $S3C_REPORTED.bucket}
    <tr><th>{'s3c_bucket'|translate}</th><td id="s3c-bucket">{$S3C_REPORTED.bucket|escape:html}</td></tr>
    <tr><th>{'s3c_prefix'|translate}</th><td id="s3c-prefix">{$S3C_REPORTED.s3_prefix|escape:html}</td></tr>
    <tr><th>{'s3c_key_layout'|translate}</th><td id="s3c-key-layout">{$S3C_REPORTED.key_format|escape:html}</td></tr>
    <tr><th>{'s3c_monitoring'|translate}</th><td id="s3c-monitoring">{if $S3C_REPORTED.monitoring}{'s3c_on'|translate}{else}{'s3c_off'|translate}{/if}</td></tr>
    {/if}
    <tr><th>S3</th><td id="s3c-s3-state">{if $S3C_TROUBLE}{$S3C_TROUBLE[0]|escape:html}: {$S3C_TROUBLE[1]|escape:html}{elseif $S3C_REPORTED && isset($S3C_REPORTED.s3_state) && $S3C_REPORTED.s3_state}{'s3c_s3_answers'|translate}{else}{'s3c_s3_unknown'|translate}{/if}</td></tr>
  </table>
</fieldset>
{/if}

<fieldset id="s3c-daemon">
  <legend>{'s3c_daemon'|translate}</legend>
  {if $S3C_DAEMON}
  <p class="{if $S3C_DAEMON.ALIVE}s3c-alive{else}s3c-dead{/if}"><strong id="s3c-daemon-state">{$S3C_DAEMON.STATE}</strong>
    &mdash; {$S3C_DAEMON.HOST|escape:html}, piwigo-s3upload {$S3C_DAEMON.VERSION|escape:html}, {'s3c_last_seen'|translate} {$S3C_DAEMON.LAST_SEEN}</p>
  {else}
  <p id="s3c-daemon-state">{'s3c_no_daemon'|translate}</p>
  {/if}
</fieldset>

<fieldset id="s3c-counts">
  <legend>{'s3c_photos_per_status'|translate}</legend>
  {if empty($S3C_COUNTS)}<p>{'s3c_nothing_yet'|translate}</p>{else}
  <table class="table2">
    <tr class="throw"><th>{'s3c_status'|translate}</th><th>{'s3c_photos'|translate}</th><th>{'s3c_what_to_do'|translate}</th></tr>
    {foreach from=$S3C_COUNTS item=c}
    <tr data-status="{$c.status|escape:html}"><td class="s3c-meaning" title="{$c.status|escape:html}">{$c.meaning|escape:html}</td><td class="s3c-count">{$c.n}</td><td class="s3c-fix">{$c.fix|escape:html}</td></tr>
    {/foreach}
  </table>
  {/if}
  {if $S3C_READY}
  <form method="post" action="{$S3C_ACTION}">
    <input type="hidden" name="pwg_token" value="{$PWG_TOKEN}">
    <button class="buttonLike" type="submit" name="s3c_retry" value="1" id="s3c-retry">{'s3c_retry_failed'|translate}{if $S3C_FAILED} ({$S3C_FAILED}){/if}</button>
  </form>
  {/if}
</fieldset>

<fieldset id="s3c-pending">
  <legend>{'s3c_recent_pending'|translate}</legend>
  <table class="table2">
    <tr class="throw"><th>{'s3c_photo'|translate}</th><th>{'s3c_file'|translate}</th><th>{'s3c_status'|translate}</th><th>{'s3c_attempts'|translate}</th><th>{'s3c_updated'|translate}</th><th>{'s3c_last_error'|translate}</th></tr>
    {foreach from=$S3C_PENDING item=row}
    <tr data-image-id="{$row.image_id}">
      <td><a href="{$S3C_PHOTO_URL}{$row.image_id}">#{$row.image_id}</a></td>
      <td>{$row.file}</td>
      <td class="s3c-status" data-status="{$row.status|escape:html}" title="{$row.fix|escape:html}">{$row.meaning|escape:html}</td>
      <td>{$row.attempts}</td>
      <td>{$row.updated_at}</td>
      <td>{$row.last_error|escape:html}</td>
    </tr>
    {foreachelse}
    <tr><td colspan="6">{'s3c_none'|translate}</td></tr>
    {/foreach}
  </table>
  {if isset($S3C_NAV.pending.NB_PAGE) && $S3C_NAV.pending.NB_PAGE > 1}<div id="s3c-pending-pages">{include file='navigation_bar.tpl'|@get_extent:'navbar' navbar=$S3C_NAV.pending}</div>{/if}
</fieldset>

<fieldset id="s3c-uploaded">
  <legend>{'s3c_recent_uploaded'|translate}</legend>
  <table class="table2">
    <tr class="throw"><th>{'s3c_photo'|translate}</th><th>{'s3c_file'|translate}</th><th>{'s3c_outcome'|translate}</th><th>{'s3c_s3_key'|translate}</th><th>{'s3c_uploaded'|translate}</th></tr>
    {foreach from=$S3C_UPLOADED item=row}
    <tr data-image-id="{$row.image_id}">
      <td><a href="{$S3C_PHOTO_URL}{$row.image_id}">#{$row.image_id}</a></td>
      <td>{$row.file}</td>
      <td class="s3c-status" data-status="{$row.outcome|escape:html}">{$row.meaning|escape:html}</td>
      <td><a href="{$row.link|escape:html}" rel="nofollow">{$row.s3_key|escape:html}</a></td>
      <td>{$row.uploaded_at}</td>
    </tr>
    {foreachelse}
    <tr><td colspan="5">{'s3c_none'|translate}</td></tr>
    {/foreach}
  </table>
  {if isset($S3C_NAV.uploaded.NB_PAGE) && $S3C_NAV.uploaded.NB_PAGE > 1}<div id="s3c-uploaded-pages">{include file='navigation_bar.tpl'|@get_extent:'navbar' navbar=$S3C_NAV.uploaded}</div>{/if}
</fieldset>

{if !empty($S3C_REQUESTS)}
<fieldset id="s3c-requests">
  <legend>{'s3c_recent_requests'|translate}</legend>
  <ul>
    {foreach from=$S3C_REQUESTS item=r}
    <li data-request-id="{$r.id}" data-status="{$r.status|escape:html}">{$r.created_at}: {$r.summary|escape:html}</li>
    {/foreach}
  </ul>
</fieldset>
{/if}

<form method="post" action="{$S3C_ACTION}" id="s3c-settings">
<fieldset>
  <legend>{'s3c_link_settings'|translate}</legend>
  <input type="hidden" name="pwg_token" value="{$PWG_TOKEN}">
  <p>{'s3c_show_it_to'|translate}
    <label><input type="radio" name="link_visibility" value="off" {if $S3C_SETTINGS.link_visibility == 'off'}checked{/if}> {'s3c_nobody'|translate}</label>
    <label><input type="radio" name="link_visibility" value="admins" {if $S3C_SETTINGS.link_visibility == 'admins'}checked{/if}> {'s3c_admins_only'|translate}</label>
    <label><input type="radio" name="link_visibility" value="everyone" {if $S3C_SETTINGS.link_visibility == 'everyone'}checked{/if}> {'s3c_everyone'|translate}</label>
  </p>
  <p>{'s3c_link'|translate}
    <label><input type="radio" name="link_mode" value="private" {if $S3C_SETTINGS.link_mode == 'private'}checked{/if}> {'s3c_mode_private'|translate}</label>
    <label><input type="radio" name="link_mode" value="public" {if $S3C_SETTINGS.link_mode == 'public'}checked{/if}> {'s3c_mode_public'|translate}</label>
  </p>
  <p><label>{'s3c_daemon_url'|translate} <input type="text" name="daemon_url" size="40" value="{$S3C_SETTINGS.daemon_url|escape:html}"></label></p>
  <p><label>{'s3c_daemon_token'|translate} <input type="password" name="daemon_token" size="40" autocomplete="off" placeholder="{if $S3C_SETTINGS.token_set}{'s3c_token_set'|translate}{/if}"></label></p>
  <p><label><input type="checkbox" name="allow_plain_http" value="1" {if $S3C_SETTINGS.allow_plain_http}checked{/if}> {'s3c_allow_plain_http'|translate}</label></p>
  <p><button class="buttonLike" type="submit" name="s3c_save" value="1">{'s3c_save_settings'|translate}</button>
    <button class="buttonLike" type="submit" name="s3c_test" value="1" id="s3c-test">{'s3c_test_connection'|translate}</button></p>
</fieldset>
</form>
</div>
