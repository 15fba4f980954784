"""The harness itself against each Piwigo release: install, web API helpers,
and the daemon uploading a photo added through Piwigo."""

from harness import photos


def test_piwigo_is_installed_and_answers(piwigo):
    assert piwigo.admin.api("pwg.getVersion") == piwigo.version
    assert piwigo.db.table_exists(f"{piwigo.prefix}images")


def test_web_api_helpers(piwigo):
    album = piwigo.add_album("harness album")
    tag = piwigo.add_tag("harness tag")
    ids = [piwigo.add_photo(photos.jpeg(f"helpers-{i}"), album, name=f"h{i}") for i in range(3)]
    piwigo.tag_photos(ids[:2], tag)
    tagged = piwigo.db.rows(f"SELECT image_id FROM {piwigo.table('image_tag')} WHERE tag_id = %s "
                            "ORDER BY image_id", (tag,))
    assert [r[0] for r in tagged] == ids[:2]
    piwigo.add_to_caddie(ids[1:])
    assert set(ids[1:]) <= set(piwigo.caddie())
    piwigo.delete_photo(ids[0])
    assert piwigo.photo(ids[0]) is None
    data = photos.jpeg("helpers-bytes", size=50_000)
    image = piwigo.add_photo(data, album)
    assert piwigo.photo_path(image).read_bytes() == data
    assert piwigo.photo(image)["md5sum"] == photos.md5(data)


def test_daemon_uploads_a_photo_added_through_piwigo(piwigo, s3, daemon_factory):
    daemon = daemon_factory(piwigo, s3)
    daemon.run_until_idle()  # first run: the watermark starts at the newest photo
    album = piwigo.add_album("harness upload")
    data = photos.jpeg("harness-upload", size=20_000)
    image = piwigo.add_photo(data, album, name="beach")
    daemon.run_until_idle()
    key = piwigo.db.scalar(f"SELECT s3_key FROM {piwigo.table('s3upload_uploaded')} "
                           "WHERE image_id = %s", (image,))
    assert key is not None, daemon.command("status").stdout
    assert s3.get(key) == data
