#!/bin/sh
# A gallery of 1,000,000 recorded photos for the change check's figures
# (examples/changes_figures.rs): Piwigo's tables and ours in database
# $DB (MariaDB's SEQUENCE engine makes the rows), `lastmodified` spread
# over the past year, and one empty file per photo under $ROOT whose
# size and mtime are what its record says (nothing changed).
#
#   MYSQL="mariadb --defaults-file=my.cnf" DB=s3u_bench ROOT=/tmp/g bench/changes_gallery.sh
set -eu
: "${MYSQL:?the mariadb client command, with credentials}"
: "${DB:?a database name to create}"
: "${ROOT:?a directory for the gallery}"
N=${N:-1000000}
here=$(dirname "$0")/..
$MYSQL -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
sed 's/{prefix}/piwigo_/g' "$here/tests/common/piwigo_schema.sql" | $MYSQL "$DB"
for f in "$here"/migrations/*.sql; do sed 's/{prefix}/piwigo_/g' "$f" | $MYSQL "$DB"; done
$MYSQL "$DB" -e "
SET SESSION time_zone = '+00:00';
INSERT INTO piwigo_images (id, file, path, filesize, date_available, lastmodified)
  SELECT seq, CONCAT('p', seq, '.jpg'), CONCAT('./upload/b/', seq DIV 1000, '/', seq, '.jpg'),
  0, NOW(), NOW() - INTERVAL ($N - seq) * 30 SECOND FROM seq_1_to_$N;
INSERT INTO piwigo_s3upload_uploaded (image_id, outcome, bucket, s3_key, size, md5, url,
  file_size, file_mtime_ns, piwigo_filesize, piwigo_lastmodified)
  SELECT seq, 'uploaded', 'b', CONCAT('photos/p', seq, '.jpg'), 0, MD5(seq), 'u',
  0, 1700000000000000000, 0, NOW() FROM seq_1_to_$N;
INSERT INTO piwigo_s3upload_counts (outcome, n) VALUES ('uploaded', $N)
  ON DUPLICATE KEY UPDATE n = VALUES(n);
ANALYZE TABLE piwigo_images, piwigo_s3upload_uploaded;"
mkdir -p "$ROOT"
cd "$ROOT"
python3 - "$N" <<'PY'
import os, sys
n = int(sys.argv[1])
for d in range(n // 1000 + 1):
    os.makedirs(f"upload/b/{d}", exist_ok=True)
for s in range(1, n + 1):
    p = f"upload/b/{s // 1000}/{s}.jpg"
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.utime(p, ns=(1700000000000000000, 1700000000000000000))
PY
