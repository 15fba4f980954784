<div id="s3c-photo">
<fieldset>
  <legend>S3</legend>
  {if !$S3C_READY}
  <p class="errors">{'s3c_no_tables'|translate}</p>
  {elseif $S3C_RECORD}
  <table class="table2">
    <tr><th>{'s3c_status'|translate}</th><td class="s3c-status" data-status="{$S3C_RECORD.outcome|escape:html}">{$S3C_RECORD.meaning|escape:html}</td></tr>
    <tr><th>{'s3c_bucket'|translate}</th><td>{$S3C_RECORD.bucket|escape:html}</td></tr>
    <tr><th>{'s3c_s3_key'|translate}</th><td class="s3c-key"><a href="{$S3C_RECORD.link|escape:html}" rel="nofollow">{$S3C_RECORD.s3_key|escape:html}</a></td></tr>
    <tr><th>{'s3c_size'|translate}</th><td>{$S3C_RECORD.size}</td></tr>
    <tr><th>md5</th><td>{$S3C_RECORD.md5|escape:html}</td></tr>
    <tr><th>{'s3c_uploaded'|translate}</th><td>{$S3C_RECORD.uploaded_at}</td></tr>
  </table>
  {if $S3C_VERSIONS}
  <h4>{'s3c_versions'|translate}</h4>
  <table class="table2" id="s3c-versions">
    <tr><th>{'s3c_version'|translate}</th><th>{'s3c_s3_key'|translate}</th><th>md5</th><th>{'s3c_size'|translate}</th><th>{'s3c_uploaded'|translate}</th><th>{'s3c_superseded'|translate}</th></tr>
    {foreach from=$S3C_VERSIONS item=v}
    <tr><td>{if $v.kind == 'format'}{'s3c_format'|translate} {$v.kind_id}, {/if}{$v.version}</td><td class="s3c-key">{$v.s3_key|escape:html}</td><td>{$v.md5|escape:html}</td><td>{$v.size}</td><td>{$v.uploaded_at}</td><td>{$v.superseded_at}{if $v.removed_at} ({'s3c_removed'|translate} {$v.removed_at}){/if}</td></tr>
    {/foreach}
  </table>
  {/if}
  {elseif $S3C_QUEUED}
  <table class="table2">
    <tr><th>{'s3c_status'|translate}</th><td class="s3c-status" data-status="{$S3C_QUEUED.status|escape:html}">{$S3C_QUEUED.meaning|escape:html}</td></tr>
    {if $S3C_QUEUED.fix}<tr><th>{'s3c_what_to_do'|translate}</th><td class="s3c-fix">{$S3C_QUEUED.fix|escape:html}</td></tr>{/if}
    <tr><th>{'s3c_attempts'|translate}</th><td>{$S3C_QUEUED.attempts}</td></tr>
    <tr><th>{'s3c_next_attempt'|translate}</th><td>{$S3C_QUEUED.next_attempt_at}</td></tr>
    <tr><th>{'s3c_last_error'|translate}</th><td>{$S3C_QUEUED.last_error|escape:html}</td></tr>
  </table>
  {if $S3C_QUEUED.failed}
  <form method="post" action="{$S3C_ACTION}">
    <input type="hidden" name="pwg_token" value="{$PWG_TOKEN}">
    <button class="buttonLike" type="submit" name="s3c_retry_photo" value="1" id="s3c-retry-photo">{'s3c_retry_photo'|translate}</button>
  </form>
  {/if}
  {else}
  <p class="s3c-status">{'s3c_not_queued'|translate}</p>
  <form method="post" action="{$S3C_ACTION}">
    <input type="hidden" name="pwg_token" value="{$PWG_TOKEN}">
    <button class="buttonLike" type="submit" name="s3c_queue" value="1" id="s3c-queue">{'s3c_upload_to_s3'|translate}</button>
  </form>
  {/if}
</fieldset>
</div>
