-- Photos deleted in Piwigo. Their objects stay in the bucket unless
-- `[retention] deleted` sets a duration; then they are removed that long
-- after the deletion, and only while the guard holds nothing.
--
-- `places` is where each recorded photo was last seen (its path and
-- albums): Piwigo deletes a photo's album links with its row, so the
-- daemon remembers them beforehand, for the deletion's record and for the
-- guard's share of an album.
-- `deleted` marks a recorded photo whose row is gone: when, where it was,
-- and, once its objects are removed, when (a failed removal keeps its
-- attempts and error and is tried again later).
-- `removed` is every object a removal took out of the records: its key,
-- bytes and when it left the bucket (`removed_at` stays NULL while the
-- delete is still to be confirmed; `kept_for` names a photo whose record
-- still uses the object, which then stays).

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_places` (
  image_id MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
  path VARCHAR(1024) NULL,
  albums VARCHAR(1024) NULL,
  seen_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_deleted` (
  image_id MEDIUMINT UNSIGNED NOT NULL PRIMARY KEY,
  deleted_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  path VARCHAR(1024) NULL,
  albums VARCHAR(1024) NULL,
  removed_at DATETIME(3) NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  last_error VARCHAR(1024) NULL,
  KEY idx_due (removed_at, deleted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{prefix}s3upload_removed` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  image_id MEDIUMINT UNSIGNED NOT NULL,
  kind VARCHAR(16) NOT NULL,
  bucket VARCHAR(255) NOT NULL,
  s3_key VARCHAR(1024) NOT NULL,
  size BIGINT UNSIGNED NULL,
  md5 CHAR(32) NULL,
  kept_for MEDIUMINT UNSIGNED NULL,
  removed_at DATETIME(3) NULL,
  KEY idx_image (image_id),
  KEY idx_removed_at (removed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A removal asks whether another record still uses an object's key: by
-- md5 first, as the uploaded table already can.
ALTER TABLE `{prefix}s3upload_formats` ADD KEY idx_md5 (md5);
