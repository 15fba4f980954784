-- Versions: a photo (or format) whose file changes after it was recorded
-- gets a new object beside the old one, the record moves to the new
-- object and the old one is listed in the version history. Nothing in
-- the bucket is ever overwritten. Each statement is safe to run again: a
-- column or index met again is skipped.
--
-- What the change check compares, on each record (photos and formats
-- alike), all as seen when the file was hashed for the recorded object:
--   file_size            the size on disk, in bytes,
--   file_mtime_ns        the modification time on disk, in nanoseconds
--                        since 1970 (a touch without new bytes changes it:
--                        the record is then refreshed, nothing uploaded),
--   piwigo_filesize      Piwigo's `filesize` (KB) of the row: addFile and
--                        synchronisation rewrite it,
--   piwigo_lastmodified  the photo's `images.lastmodified` (formats keep
--                        their photo's): a row Piwigo touched since,
--   version              1 for the first object, one more for each new one
--                        (it names the next version's key).
-- NULLs are records made before this migration: the slow pass adopts
-- what it finds on disk when the size is the one uploaded, and queues a
-- new version when it is not.

ALTER TABLE `{prefix}s3upload_uploaded` ADD COLUMN file_size BIGINT UNSIGNED NULL;
ALTER TABLE `{prefix}s3upload_uploaded` ADD COLUMN file_mtime_ns BIGINT NULL;
ALTER TABLE `{prefix}s3upload_uploaded` ADD COLUMN piwigo_filesize INT UNSIGNED NULL;
ALTER TABLE `{prefix}s3upload_uploaded` ADD COLUMN piwigo_lastmodified DATETIME NULL;
ALTER TABLE `{prefix}s3upload_uploaded` ADD COLUMN version INT UNSIGNED NOT NULL DEFAULT 1;
ALTER TABLE `{prefix}s3upload_formats` ADD COLUMN file_size BIGINT UNSIGNED NULL;
ALTER TABLE `{prefix}s3upload_formats` ADD COLUMN file_mtime_ns BIGINT NULL;
ALTER TABLE `{prefix}s3upload_formats` ADD COLUMN piwigo_filesize INT UNSIGNED NULL;
ALTER TABLE `{prefix}s3upload_formats` ADD COLUMN piwigo_lastmodified DATETIME NULL;
ALTER TABLE `{prefix}s3upload_formats` ADD COLUMN version INT UNSIGNED NOT NULL DEFAULT 1;
-- An object a format's record holds is never listed as superseded and
-- removable: looked up by md5, as in the uploaded table.
ALTER TABLE `{prefix}s3upload_formats` ADD KEY idx_md5 (md5);

-- The version history: one row per superseded object, written in the
-- transaction that moves the record to the new object.
--   image_id, kind, kind_id  whose object it was: kind 'photo' (kind_id 0)
--                            or 'format' (kind_id the format's id),
--   version                  the number it had while it was current,
--   outcome                  how it was recorded: `duplicate` objects are
--                            another photo's and never this one's to remove,
--   bucket, s3_key, size, md5, etag  the object, as it was recorded,
--   uploaded_at              when it became current,
--   superseded_at            when the next version was recorded: the time
--                            `restore --at` compares with,
--   removed_at               NULL while the object is in the bucket, set by
--                            the retention code when it deletes it.
CREATE TABLE IF NOT EXISTS `{prefix}s3upload_versions` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  image_id MEDIUMINT UNSIGNED NOT NULL,
  kind VARCHAR(16) NOT NULL,
  kind_id INT UNSIGNED NOT NULL DEFAULT 0,
  version INT UNSIGNED NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  bucket VARCHAR(255) NOT NULL,
  s3_key VARCHAR(1024) NOT NULL,
  size BIGINT UNSIGNED NOT NULL,
  md5 CHAR(32) NOT NULL,
  etag VARCHAR(128) NULL,
  uploaded_at DATETIME(3) NOT NULL,
  superseded_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  removed_at DATETIME(3) NULL,
  UNIQUE KEY uq_item_version (image_id, kind, kind_id, version),
  KEY idx_superseded (removed_at, superseded_at),
  KEY idx_md5 (md5)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
