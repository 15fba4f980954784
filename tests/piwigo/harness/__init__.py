"""A real Piwigo, a real S3 server, the daemon binary and a headless browser,
for tests that involve Piwigo's own behaviour and pages.

- `db`: the suite's MariaDB (TEST_DATABASE_URL), one database per Piwigo.
- `piwigo`: unpacks a Piwigo release, serves it with `php -S`, installs it
  through install.php and drives it through its web API (ws.php).
- `s3`: `rclone serve s3` with signature checking, objects readable as files.
- `daemon`: the piwigo-s3upload binary with a config written for both.
- `browser`: Debian's chromium through chromedriver, headless.
- `photos`: distinct, valid JPEG files of a chosen size.
"""
