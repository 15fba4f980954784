-- The object key is reserved like the md5: a unique key on the queue, so
-- that two photos are never sent to one key at once, across every daemon
-- sharing the queue. `key_md5` is the md5 of endpoint, bucket and key (keys
-- are too long for a unique index); `sent_key_md5` remembers the key a
-- photo was last about to send to, which tells its own earlier upload
-- from another photo's object. `url` grows to hold the link of any key S3
-- accepts (1024 bytes, up to 3 characters each once percent-encoded).
-- Each statement is safe to run again: a column or index that exists
-- already is skipped.

ALTER TABLE `{prefix}s3upload_queue` ADD COLUMN key_md5 CHAR(32) NULL;
ALTER TABLE `{prefix}s3upload_queue` ADD COLUMN sent_key_md5 CHAR(32) NULL;
ALTER TABLE `{prefix}s3upload_queue` ADD UNIQUE KEY uq_key (key_md5);
ALTER TABLE `{prefix}s3upload_queue` ADD KEY idx_waiting_for (waiting_for);
ALTER TABLE `{prefix}s3upload_uploaded` MODIFY url TEXT NOT NULL;
