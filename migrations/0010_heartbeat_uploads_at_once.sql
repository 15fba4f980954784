-- How many uploads the daemon allows at once now: upload.workers, or the
-- figure it found when that is "auto". Refreshed with each heartbeat, so
-- `status` (and the plugin, should it want to) shows the running
-- daemon's figure without asking the daemon itself.

ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN uploads_at_once SMALLINT UNSIGNED NULL;
