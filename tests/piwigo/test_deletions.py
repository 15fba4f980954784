"""Photos deleted in real Piwigo with pwg.images.delete: their objects stay
with `[retention] deleted = "keep"`, go after a short duration, and half an
album deleted at once is held until `retention --release`."""

import time

from harness import photos


def keys_of(piwigo, ids):
    """The recorded object keys of `ids`, by id."""
    rows = piwigo.db.rows(
        f"SELECT image_id, s3_key FROM {piwigo.table('s3upload_uploaded')} "
        f"WHERE image_id IN ({','.join(str(i) for i in ids)})")
    return {int(r[0]): r[1] for r in rows}


def wait_past(piwigo, seconds):
    """Until every mark is older than `seconds` by the database's clock."""
    deadline = time.monotonic() + 30
    while piwigo.db.scalar(
            f"SELECT COUNT(*) FROM {piwigo.table('s3upload_deleted')} "
            f"WHERE deleted_at > NOW(3) - INTERVAL {seconds} SECOND"):
        assert time.monotonic() < deadline, "marks never aged"
        time.sleep(0.2)


def test_a_deleted_photo_keeps_its_objects_then_goes_after_the_duration(piwigo, s3,
                                                                         daemon_factory):
    daemon = daemon_factory(piwigo, s3)
    daemon.run_until_idle()  # the watermark starts at the newest photo
    album = piwigo.add_album("deletions-keep")
    ids = [piwigo.add_photo(photos.jpeg(f"deletions-keep-{i}", size=20_000), album,
                            name=f"keep{i}") for i in range(3)]
    daemon.run_until_idle()
    daemon.run_until_idle()  # notes where each photo is
    keys = keys_of(piwigo, ids)
    assert all(s3.get(k) for k in keys.values())
    path = str(piwigo.photo_path(ids[0]).relative_to(piwigo.root))

    piwigo.delete_photo(ids[0])
    daemon.run_until_idle()
    mark = piwigo.db.rows(f"SELECT path, albums, removed_at FROM {piwigo.table('s3upload_deleted')} "
                          "WHERE image_id = %s", (ids[0],))
    assert len(mark) == 1
    assert mark[0][0].lstrip("./") == path.lstrip("./")
    assert mark[0][1] == str(album)
    assert mark[0][2] is None
    assert s3.get(keys[ids[0]]), "kept under the default policy"
    out = daemon.command("status")
    assert "1 photos keep their objects" in out.stdout, out.stdout

    # A short policy: the objects go once the photo was deleted that long ago.
    daemon.sections["retention"] = ['deleted = "1s"']
    daemon.write_config()
    wait_past(piwigo, 1)
    daemon.run_until_idle()
    assert s3.get(keys[ids[0]]) is None
    assert all(s3.get(keys[i]) for i in ids[1:])
    out = daemon.command("retention")
    assert "objects removed by the policy: 1" in out.stdout, out.stdout


def test_half_an_album_deleted_at_once_is_held_until_released(piwigo, s3, daemon_factory):
    daemon = daemon_factory(piwigo, s3, sections={"retention": [
        'deleted = "1s"', 'guard_gallery_share = "100%"', 'guard_album_share = "40%"']})
    daemon.run_until_idle()
    album = piwigo.add_album("deletions-held")
    ids = [piwigo.add_photo(photos.jpeg(f"deletions-held-{i}", size=20_000), album,
                            name=f"held{i}") for i in range(4)]
    daemon.run_until_idle()
    daemon.run_until_idle()
    keys = keys_of(piwigo, ids)
    assert all(s3.get(k) for k in keys.values())

    for i in ids[:2]:
        piwigo.delete_photo(i)
    daemon.run_until_idle()
    wait_past(piwigo, 1)
    daemon.run_until_idle()
    assert all(s3.get(k) for k in keys.values()), "nothing removed while held"
    out = daemon.command("status")
    assert "DELETIONS HELD" in out.stdout, out.stdout
    assert f"2 of 4 photos of album {album}" in out.stdout, out.stdout
    out = daemon.command("retention")
    assert out.stdout.startswith("HELD since"), out.stdout

    out = daemon.command("retention", "--release")
    assert "released the hold" in out.stdout, out.stdout
    daemon.run_until_idle()
    assert [s3.get(keys[i]) for i in ids[:2]] == [None, None]
    assert all(s3.get(keys[i]) for i in ids[2:])
    assert "not held" in daemon.command("retention").stdout
