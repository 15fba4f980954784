-- The companion Piwigo plugin's side of the database: daemons report in
-- (heartbeat), and the plugin files requests (a Batch Manager selection,
-- "retry failed now") that a daemon carries out with its own queue code
-- and answers with counts.

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_heartbeat` (
  daemon VARCHAR(128) NOT NULL PRIMARY KEY,
  host VARCHAR(255) NOT NULL,
  version VARCHAR(64) NOT NULL,
  started_at DATETIME(3) NOT NULL,
  last_seen DATETIME(3) NOT NULL,
  stopped_at DATETIME(3) NULL,
  KEY idx_last_seen (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_requests` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  requested_by MEDIUMINT UNSIGNED NULL,
  photos INT UNSIGNED NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL DEFAULT 'draft',
  claimed_by VARCHAR(128) NULL,
  claimed_at DATETIME(3) NULL,
  selected BIGINT UNSIGNED NULL,
  queued BIGINT UNSIGNED NULL,
  already_uploaded BIGINT UNSIGNED NULL,
  already_queued BIGINT UNSIGNED NULL,
  duplicates BIGINT UNSIGNED NULL,
  error VARCHAR(1024) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  done_at DATETIME(3) NULL,
  KEY idx_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_request_images` (
  request_id BIGINT UNSIGNED NOT NULL,
  image_id MEDIUMINT UNSIGNED NOT NULL,
  PRIMARY KEY (request_id, image_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
