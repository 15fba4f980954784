-- The daemon's own tables. InnoDB, unlike Piwigo's: the queue needs
-- transactions and row locks. `{prefix}` is Piwigo's table prefix.

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_queue` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  image_id MEDIUMINT UNSIGNED NOT NULL,
  source VARCHAR(16) NOT NULL,
  status VARCHAR(64) NOT NULL DEFAULT 'pending',
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  claimed_by VARCHAR(128) NULL,
  claimed_until DATETIME(3) NULL,
  piwigo_md5 CHAR(32) NULL,
  md5 CHAR(32) NULL,
  waiting_for MEDIUMINT UNSIGNED NULL,
  last_error VARCHAR(1024) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_image (image_id),
  UNIQUE KEY uq_md5 (md5),
  KEY idx_due (next_attempt_at, id),
  KEY idx_piwigo_md5 (piwigo_md5),
  KEY idx_updated (updated_at),
  KEY idx_status (status),
  KEY idx_claimed_by (claimed_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_uploaded` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  image_id MEDIUMINT UNSIGNED NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  bucket VARCHAR(255) NOT NULL,
  s3_key VARCHAR(1024) NOT NULL,
  size BIGINT UNSIGNED NOT NULL,
  md5 CHAR(32) NOT NULL,
  etag VARCHAR(128) NULL,
  url VARCHAR(2048) NOT NULL,
  duplicate_of MEDIUMINT UNSIGNED NULL,
  uploaded_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_image (image_id),
  KEY idx_md5 (md5),
  KEY idx_uploaded_at (uploaded_at),
  KEY idx_outcome (outcome)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_state` (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value VARCHAR(255) NOT NULL,
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
