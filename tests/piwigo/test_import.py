"""`import-s3upload`: a gallery that used the old S3Upload plugin moves to
the daemon without uploading anything twice or missing what came after."""

from harness import photos


def old_plugin_table(piwigo, rows):
    """The old plugin's table as its users have it (MyISAM, like Piwigo's)."""
    t = piwigo.table("s3upload")
    piwigo.db.execute(f"""CREATE TABLE {t} (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        date_updated DATETIME NULL,
        img_id MEDIUMINT UNSIGNED NULL,
        img_file VARCHAR(255) NULL,
        img_path VARCHAR(255) NULL,
        s3_url VARCHAR(1024) NULL,
        img_md5sum CHAR(32) NULL,
        status VARCHAR(32) NOT NULL) ENGINE=MyISAM DEFAULT CHARSET=utf8""")
    for img_id, url, md5, status in rows:
        piwigo.db.execute(f"INSERT INTO {t} (date_updated, img_id, s3_url, img_md5sum, status) "
                          "VALUES ('2013-04-01 12:00:00', %s, %s, %s, %s)",
                          (img_id, url, md5, status))


def test_old_plugin_table_is_imported_once_and_the_watermark_kept(piwigo, s3, daemon_factory):
    album = piwigo.add_album("old plugin")
    data = {n: photos.jpeg(f"import-{n}") for n in "abcd"}
    ids = {n: piwigo.add_photo(b, album, name=n) for n, b in data.items()}
    old_plugin_table(piwigo, [
        (ids["a"], None, None, "install"),
        (ids["b"], "https://oldbucket.s3.amazonaws.com/photos/b%20copy.jpg", photos.md5(data["b"]), "uploaded"),
        (ids["c"], "ftp://nowhere.example/c.jpg", photos.md5(data["c"]), "uploaded"),
        (ids["d"], None, photos.md5(data["d"]), "failed_code_403"),
    ])
    daemon = daemon_factory(piwigo, s3)

    out = daemon.command("import-s3upload").stdout
    assert "4 rows" in out, out
    assert "1 uploads imported as upload records, 0 already recorded" in out, out
    assert f"photo {ids['c']}: s3_url `ftp://nowhere.example/c.jpg`" in out, out
    assert "1 photos queued of 1" in out, out
    assert f"monitoring watermark set to photo {ids['d']}" in out, out
    record = piwigo.db.rows(
        f"SELECT bucket, s3_key, md5, outcome FROM {piwigo.table('s3upload_uploaded')} "
        "WHERE image_id = %s", (ids["b"],))
    assert record == [("oldbucket", "photos/b copy.jpg", photos.md5(data["b"]), "uploaded")]

    again = daemon.command("import-s3upload").stdout
    assert "0 uploads imported as upload records, 1 already recorded" in again, again
    assert "0 photos queued of 1" in again, again
    assert piwigo.db.scalar(f"SELECT COUNT(*) FROM {piwigo.table('s3upload_uploaded')}") == 1

    # A photo added after the old plugin stopped is picked up by monitoring.
    e = piwigo.add_photo(photos.jpeg("import-e"), album, name="e")
    daemon.run_until_idle()
    uploaded = dict(piwigo.db.rows(
        f"SELECT image_id, s3_key FROM {piwigo.table('s3upload_uploaded')}"))
    assert set(uploaded) == {ids["b"], ids["d"], e}
    assert s3.get(uploaded[ids["d"]]) == data["d"]
    # b was the old plugin's: nothing sent again. a predates it: not queued.
    assert len(s3.keys()) == 2


def test_photos_behind_an_earlier_daemon_watermark_are_queued(piwigo, s3, daemon_factory):
    p = piwigo
    prefix_table = p.table("s3upload")
    p.db.execute(f"DROP TABLE IF EXISTS {prefix_table}")
    for t in ("s3upload_uploaded", "s3upload_queue", "s3upload_state", "s3upload_counts"):
        if p.db.table_exists(f"{p.prefix}{t}"):
            p.db.execute(f"DELETE FROM {p.table(t)}")
    album = p.add_album("gap")
    old = p.add_photo(photos.jpeg("gap-old"), album, name="old")
    # Added after the old plugin stopped, before this daemon first ran.
    between = p.add_photo(photos.jpeg("gap-between"), album, name="between")
    daemon = daemon_factory(p, s3)
    daemon.run_until_idle()  # its watermark: the newest photo, `between`
    old_plugin_table(p, [(old, None, None, "install")])

    out = daemon.command("import-s3upload").stdout
    assert "monitoring watermark kept" in out, out
    assert "1 photos queued of 1" in out, out
    daemon.run_until_idle()
    uploaded = [r[0] for r in p.db.rows(f"SELECT image_id FROM {p.table('s3upload_uploaded')}")]
    assert uploaded == [between]
