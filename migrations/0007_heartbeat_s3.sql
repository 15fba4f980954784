-- What the daemon last found of S3, and the settings an admin asks about
-- (bucket, prefix, key layout, monitoring), for the companion plugin's tab,
-- which reads them and never the daemon's config. While S3
-- refuses the daemon (keys, policy, bucket) or cannot be reached, the
-- plugin sends visitors to Piwigo's own download of the local original
-- and its tab says why. The detail names the HTTP status and S3's error
-- code only: never a key or a message that could quote one.

ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_state VARCHAR(16) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_detail VARCHAR(255) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_checked_at DATETIME(3) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN bucket VARCHAR(255) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_prefix VARCHAR(1024) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN key_format VARCHAR(32) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN monitoring TINYINT(1) NULL;
