"""A recorded photo replaced through Piwigo's own web API gets a new
version: a second object with the new bytes, the first one unchanged, the
record on the new one; `restore` gives the new bytes and `restore --at`
a time before the change the old ones."""

import base64
import json
import time

from harness import photos


def replace_file(piwigo, image_id, data):
    """What `pwg.images.addFile` takes: the file in chunks named after the
    photo's current md5sum, then the call that puts it in place (Piwigo
    keeps the old md5sum)."""
    md5sum = piwigo.photo(image_id)["md5sum"]
    piwigo.admin.api("pwg.images.addChunk", data=base64.b64encode(data).decode(),
                     original_sum=md5sum, type="file", position=0,
                     pwg_token=piwigo.admin.token)
    piwigo.admin.api("pwg.images.addFile", image_id=image_id, type="file",
                     sum=photos.md5(data), pwg_token=piwigo.admin.token)


def record(piwigo, image_id):
    return piwigo.db.rows(f"SELECT s3_key, md5, version FROM {piwigo.table('s3upload_uploaded')} "
                          "WHERE image_id = %s", (image_id,))[0]


def test_a_photo_replaced_with_add_file_gets_a_new_version(piwigo, s3, daemon_factory):
    daemon = daemon_factory(piwigo, s3)
    daemon.run_until_idle()  # the watermark starts at the newest photo
    album = piwigo.add_album("versions")
    old = photos.jpeg("versions-old", size=30_000)
    image = piwigo.add_photo(old, album, name="harbour")
    daemon.run_until_idle()
    old_key, old_md5, version = record(piwigo, image)
    assert (old_md5, version) == (photos.md5(old), 1)
    assert s3.get(old_key) == old
    time.sleep(1.1)  # `--at` takes whole seconds: one after the upload
    before = piwigo.db.scalar("SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s')")

    new = photos.jpeg("versions-new", size=90_000)  # addFile keeps only a bigger file
    replace_file(piwigo, image, new)
    path = piwigo.photo_path(image)
    assert path.read_bytes() == new
    assert piwigo.photo(image)["md5sum"] == photos.md5(old), "Piwigo keeps the old md5sum"
    time.sleep(1.1)  # the poll reads settled seconds of images.lastmodified
    daemon.run_until_idle()

    key, md5, version = record(piwigo, image)
    assert (md5, version) == (photos.md5(new), 2), daemon.command("status").stdout
    assert key != old_key and "/s3upload-versions/" in key
    assert s3.get(key) == new
    assert s3.get(old_key) == old, "the first object is never overwritten"
    history = piwigo.db.rows(f"SELECT s3_key, md5, version FROM {piwigo.table('s3upload_versions')} "
                             "WHERE image_id = %s", (image,))
    assert history == [(old_key, old_md5, 1)]

    path.unlink()
    out = daemon.command("restore", "--ids", str(image), "--json")
    assert json.loads(out.stdout)["restored"] == 1, out.stdout
    assert path.read_bytes() == new
    out = daemon.command("restore", "--ids", str(image), "--at", before, "--overwrite", "--json")
    assert json.loads(out.stdout)["restored"] == 1, out.stdout
    assert path.read_bytes() == old

    out = daemon.command("verify", "--orphans", "--json")
    report = json.loads(out.stdout)
    assert report["versions_kept"] == 1 and report["bucket"]["orphans"] == [], out.stdout


def quick_sync(piwigo):
    """Piwigo's "Quick Local Synchronization" of ./galleries/, files and
    metadata, as the administration's button starts it."""
    r = piwigo.admin.get(f"admin.php?page=site_update&site=1&quick_sync=1&pwg_token={piwigo.admin.token}")
    r.raise_for_status()


def a_day_passes_for_the_slow_pass(piwigo):
    """Moves the clock `run --until-idle` keeps for the slow pass a day
    back: the next run owes the whole pass, as a cron run a day later."""
    piwigo.db.execute(f"UPDATE {piwigo.table('s3upload_state')} "
                      "SET value = CAST(CAST(value AS SIGNED) - 86400000 AS CHAR) "
                      "WHERE name = 'changes_pass_clock_ms'")


def test_a_file_edited_under_galleries_and_synchronised_gets_a_new_version(piwigo, s3, daemon_factory):
    daemon = daemon_factory(piwigo, s3)
    daemon.run_until_idle()  # the watermark starts at the newest photo
    folder = piwigo.root / "galleries" / "versions-sync"
    folder.mkdir(parents=True, exist_ok=True)
    old = photos.jpeg("sync-old", size=30_000)
    (folder / "quay.jpg").write_bytes(old)
    quick_sync(piwigo)
    image = piwigo.db.scalar(f"SELECT id FROM {piwigo.table('images')} WHERE path = %s",
                             ("./galleries/versions-sync/quay.jpg",))
    assert image, "the synchronisation added the photo"
    daemon.run_until_idle()
    old_key, old_md5, version = record(piwigo, image)
    assert (old_key, old_md5, version) == ("photos/versions-sync/quay.jpg", photos.md5(old), 1)
    time.sleep(1.1)
    daemon.run_until_idle()  # its poll moves past the row the synchronisation added
    before = piwigo.db.scalar("SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s')")

    new = photos.jpeg("sync-new", size=70_000)
    (folder / "quay.jpg").write_bytes(new)
    quick_sync(piwigo)
    # Piwigo's quick synchronisation reads the metadata of never-read
    # files only: the row of an edited one is left as it was, so the poll
    # has nothing to see, and the slow pass finds the edit.
    time.sleep(1.1)  # the poll reads settled seconds of images.lastmodified
    daemon.run_until_idle()
    key, md5, version = record(piwigo, image)
    assert (md5, version) == (photos.md5(old), 1), "Piwigo touched the row after all"
    a_day_passes_for_the_slow_pass(piwigo)
    daemon.run_until_idle()
    key, md5, version = record(piwigo, image)
    assert (md5, version) == (photos.md5(new), 2), daemon.command("status").stdout
    assert key == f"photos/s3upload-versions/{image}/v2-{md5}/versions-sync/quay.jpg"
    assert s3.get(key) == new
    assert s3.get(old_key) == old

    path = folder / "quay.jpg"
    path.unlink()
    out = daemon.command("restore", "--ids", str(image), "--at", before, "--json")
    assert json.loads(out.stdout)["restored"] == 1, out.stdout
    assert path.read_bytes() == old
    out = daemon.command("restore", "--ids", str(image), "--overwrite", "--json")
    assert json.loads(out.stdout)["restored"] == 1, out.stdout
    assert path.read_bytes() == new
