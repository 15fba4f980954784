-- Counts of recorded outcomes, kept up to date with each record, so that
-- `status` and /metrics read a few rows instead of counting millions.

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_counts` (
  outcome VARCHAR(16) NOT NULL PRIMARY KEY,
  n BIGINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO `{prefix}s3upload_counts` (outcome, n)
  SELECT outcome, COUNT(*) FROM `{prefix}s3upload_uploaded` GROUP BY outcome;
