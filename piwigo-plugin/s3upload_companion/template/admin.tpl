<div class="titrePage"><h2>S3Upload</h2></div>

<div id="s3c-admin">
{if !$S3C_READY}
<p class="errors" id="s3c-no-tables">{'The piwigo-s3upload daemon has not created its tables in this database yet: start it once with this gallery\'s database.'|translate}</p>
{/if}

<fieldset id="s3c-daemon">
  <legend>{'Daemon'|translate}</legend>
  {if $S3C_DAEMON}
  <p class="{if $S3C_DAEMON.ALIVE}s3c-alive{else}s3c-dead{/if}"><strong id="s3c-daemon-state">{$S3C_DAEMON.STATE}</strong>
    &mdash; {$S3C_DAEMON.HOST|escape:html}, piwigo-s3upload {$S3C_DAEMON.VERSION|escape:html}, {'last seen'|translate} {$S3C_DAEMON.LAST_SEEN}</p>
  {else}
  <p id="s3c-daemon-state">{'No daemon has reported in yet.'|translate}</p>
  {/if}
</fieldset>

<fieldset id="s3c-counts">
  <legend>{'Photos per status'|translate}</legend>
  {if empty($S3C_COUNTS)}<p>{'Nothing queued or uploaded yet.'|translate}</p>{else}
  <table class="table2">
    <tr class="throw"><th>{'Status'|translate}</th><th>{'Photos'|translate}</th></tr>
    {foreach from=$S3C_COUNTS key=status item=n}
    <tr data-status="{$status|escape:html}"><td>{$status|escape:html}</td><td class="s3c-count">{$n}</td></tr>
    {/foreach}
  </table>
  {/if}
  {if $S3C_READY}
  <form method="post" action="{$S3C_ACTION}">
    <input type="hidden" name="pwg_token" value="{$PWG_TOKEN}">
    <button class="buttonLike" type="submit" name="s3c_retry" value="1" id="s3c-retry">{'Retry failed now'|translate}{if $S3C_FAILED} ({$S3C_FAILED}){/if}</button>
  </form>
  {/if}
</fieldset>

<fieldset id="s3c-pending">
  <legend>{'10 most recent pending uploads to S3'|translate}</legend>
  <table class="table2">
    <tr class="throw"><th>{'Photo'|translate}</th><th>{'File'|translate}</th><th>{'Status'|translate}</th><th>{'Attempts'|translate}</th><th>{'Updated'|translate}</th><th>{'Last error'|translate}</th></tr>
    {foreach from=$S3C_PENDING item=row}
    <tr data-image-id="{$row.image_id}">
      <td><a href="{$S3C_PHOTO_URL}{$row.image_id}">#{$row.image_id}</a></td>
      <td>{$row.file}</td>
      <td class="s3c-status">{$row.status|escape:html}</td>
      <td>{$row.attempts}</td>
      <td>{$row.updated_at}</td>
      <td>{$row.last_error|escape:html}</td>
    </tr>
    {foreachelse}
    <tr><td colspan="6">{'None'|translate}</td></tr>
    {/foreach}
  </table>
</fieldset>

<fieldset id="s3c-uploaded">
  <legend>{'10 most recent successful uploads to S3'|translate}</legend>
  <table class="table2">
    <tr class="throw"><th>{'Photo'|translate}</th><th>{'File'|translate}</th><th>{'Outcome'|translate}</th><th>{'S3 key'|translate}</th><th>{'Uploaded'|translate}</th></tr>
    {foreach from=$S3C_UPLOADED item=row}
    <tr data-image-id="{$row.image_id}">
      <td><a href="{$S3C_PHOTO_URL}{$row.image_id}">#{$row.image_id}</a></td>
      <td>{$row.file}</td>
      <td class="s3c-status">{$row.outcome|escape:html}</td>
      <td><a href="{$row.link|escape:html}" rel="nofollow">{$row.s3_key|escape:html}</a></td>
      <td>{$row.uploaded_at}</td>
    </tr>
    {foreachelse}
    <tr><td colspan="5">{'None'|translate}</td></tr>
    {/foreach}
  </table>
</fieldset>

{if !empty($S3C_REQUESTS)}
<fieldset id="s3c-requests">
  <legend>{'Recent requests to the daemon'|translate}</legend>
  <ul>
    {foreach from=$S3C_REQUESTS item=r}
    <li data-request-id="{$r.id}" data-status="{$r.status|escape:html}">{$r.created_at}: {$r.summary|escape:html}</li>
    {/foreach}
  </ul>
</fieldset>
{/if}

<form method="post" action="{$S3C_ACTION}" id="s3c-settings">
<fieldset>
  <legend>{'Download link on the photo page'|translate}</legend>
  <input type="hidden" name="pwg_token" value="{$PWG_TOKEN}">
  <p>{'Show it to'|translate}
    <label><input type="radio" name="link_visibility" value="off" {if $S3C_SETTINGS.link_visibility == 'off'}checked{/if}> {'nobody'|translate}</label>
    <label><input type="radio" name="link_visibility" value="admins" {if $S3C_SETTINGS.link_visibility == 'admins'}checked{/if}> {'administrators only'|translate}</label>
    <label><input type="radio" name="link_visibility" value="everyone" {if $S3C_SETTINGS.link_visibility == 'everyone'}checked{/if}> {'everyone who may see the photo'|translate}</label>
  </p>
  <p>{'Link'|translate}
    <label><input type="radio" name="link_mode" value="private" {if $S3C_SETTINGS.link_mode == 'private'}checked{/if}> {'private bucket: a short-lived link signed by the daemon'|translate}</label>
    <label><input type="radio" name="link_mode" value="public" {if $S3C_SETTINGS.link_mode == 'public'}checked{/if}> {'public bucket or CDN (s3.public_url)'|translate}</label>
  </p>
  <p><label>{'Daemon URL ([http] listen)'|translate} <input type="text" name="daemon_url" size="40" value="{$S3C_SETTINGS.daemon_url|escape:html}"></label></p>
  <p><label>{'Daemon token ([http] token)'|translate} <input type="password" name="daemon_token" size="40" autocomplete="off" placeholder="{if $S3C_SETTINGS.token_set}{'set; leave empty to keep it'|translate}{/if}"></label></p>
  <p><button class="buttonLike" type="submit" name="s3c_save" value="1">{'Save Settings'|translate}</button></p>
</fieldset>
</form>
</div>
