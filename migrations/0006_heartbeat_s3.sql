-- What the daemon last found of S3, for the companion plugin: while S3
-- refuses the daemon (keys, policy, bucket) or cannot be reached, the
-- plugin sends visitors to Piwigo's own download of the local original
-- and its tab says why. The detail names the HTTP status and S3's error
-- code only: never a key or a message that could quote one.

ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_state VARCHAR(16) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_detail VARCHAR(255) NULL;
ALTER TABLE `{prefix}s3upload_heartbeat` ADD COLUMN s3_checked_at DATETIME(3) NULL;
