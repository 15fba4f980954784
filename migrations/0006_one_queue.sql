-- One queue for everything the bucket holds: a row is an item, the photo
-- itself (kind 'photo') or one of its formats (kind 'format', kind_id the
-- format's id in <prefix>image_format, ext its extension), claimed, sent
-- and failed by the same code. A photo's row keeps kind 'photo' and
-- kind_id 0, so (image_id, kind, kind_id) is as unique as image_id was.
-- Formats waiting or failing move here from the formats table, which from
-- now on holds only recorded formats (status uploaded or already_present),
-- as the uploaded table does for photos. Each statement is safe to run
-- again: a column or index met again is skipped, and the rows copied are
-- deleted only once they are in the queue.

ALTER TABLE `{prefix}s3upload_queue` ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'photo';
ALTER TABLE `{prefix}s3upload_queue` ADD COLUMN kind_id INT UNSIGNED NOT NULL DEFAULT 0;
ALTER TABLE `{prefix}s3upload_queue` ADD COLUMN ext VARCHAR(255) NULL;
ALTER TABLE `{prefix}s3upload_queue` ADD UNIQUE KEY uq_item (image_id, kind, kind_id);
ALTER TABLE `{prefix}s3upload_queue` DROP INDEX uq_image;
INSERT IGNORE INTO `{prefix}s3upload_queue`
  (image_id, kind, kind_id, ext, source, status, attempts, next_attempt_at, last_error, updated_at)
  SELECT image_id, 'format', format_id, ext, 'format', status, attempts, next_attempt_at,
    last_error, updated_at
  FROM `{prefix}s3upload_formats` WHERE status NOT IN ('uploaded', 'already_present');
DELETE f FROM `{prefix}s3upload_formats` f JOIN `{prefix}s3upload_queue` q
  ON q.kind = 'format' AND q.kind_id = f.format_id
  WHERE f.status NOT IN ('uploaded', 'already_present');
