-- Piwigo's formats (RAW, TIFF... files beside a photo, <prefix>image_format):
-- one row per format, queued once its photo is recorded, then recorded
-- in place (status uploaded or already_present with key, size and md5).

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_formats` (
  format_id INT UNSIGNED NOT NULL PRIMARY KEY,
  image_id MEDIUMINT UNSIGNED NOT NULL,
  ext VARCHAR(255) NOT NULL,
  status VARCHAR(64) NOT NULL DEFAULT 'pending',
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  claimed_by VARCHAR(128) NULL,
  claimed_until DATETIME(3) NULL,
  bucket VARCHAR(255) NULL,
  s3_key VARCHAR(1024) NULL,
  size BIGINT UNSIGNED NULL,
  md5 CHAR(32) NULL,
  etag VARCHAR(128) NULL,
  last_error VARCHAR(1024) NULL,
  uploaded_at DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY idx_image (image_id),
  KEY idx_due (status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
