"""Piwigo's formats (RAW, TIFF... files attached to a photo) added the way
Piwigo adds them, with `$conf['enable_formats']` on: backed up next to
their photo, verified, and restored with it."""

import json

import pytest

from conftest import VERSIONS
from harness import photos


@pytest.fixture(scope="module", params=VERSIONS or ["none"])
def piwigo(request, piwigo_factory):
    """One Piwigo per version with formats enabled."""
    if request.param == "none":
        pytest.fail("no Piwigo tarballs: set PIWIGO_TARBALLS (see tests/piwigo/README.md)")
    return piwigo_factory(request.param, config_lines=["$conf['enable_formats'] = true;"])


def add_format(piwigo, image_id, filename, data):
    """What Piwigo's uploader does for "add formats": pwg.images.upload with
    `format_of`; Piwigo writes the file to pwg_format/ and the row to
    image_format."""
    piwigo.admin.api("pwg.images.upload", files={"file": (filename, data, "application/octet-stream")},
                     name=filename, format_of=image_id, chunk=0, chunks=1,
                     pwg_token=piwigo.admin.token)


def format_rows(piwigo, image_id):
    return piwigo.db.rows(f"SELECT ext FROM {piwigo.table('image_format')} WHERE image_id = %s "
                          "ORDER BY ext", (image_id,))


def test_formats_are_backed_up_verified_and_restored(piwigo, s3, daemon_factory):
    daemon = daemon_factory(piwigo, s3)
    daemon.run_until_idle()  # the watermark starts at the newest photo
    album = piwigo.add_album("formats")
    jpg = photos.jpeg("formats-photo", size=30_000)
    image = piwigo.add_photo(jpg, album, name="beach")
    raw = photos.jpeg("formats-raw", size=200_000)  # any bytes: Piwigo does not parse a RAW
    add_format(piwigo, image, "beach.cr2", raw)
    assert [r[0] for r in format_rows(piwigo, image)] == ["cr2"]
    photo_path = piwigo.photo_path(image)
    raw_path = photo_path.parent / "pwg_format" / (photo_path.stem + ".cr2")
    assert raw_path.read_bytes() == raw

    daemon.run_until_idle()
    key = piwigo.db.scalar(f"SELECT s3_key FROM {piwigo.table('s3upload_uploaded')} "
                           "WHERE image_id = %s", (image,))
    assert s3.get(key) == jpg
    raw_key = key.rsplit(".", 1)[0] + ".cr2"
    assert s3.get(raw_key) == raw

    # A format added to a photo that is in the bucket already.
    tif = photos.jpeg("formats-tif", size=120_000)
    add_format(piwigo, image, "beach.tif", tif)
    daemon.run_until_idle()
    tif_key = key.rsplit(".", 1)[0] + ".tif"
    assert s3.get(tif_key) == tif

    out = daemon.command("verify", "--json", "--disk")
    report = json.loads(out.stdout)
    assert report["ok"], out.stdout
    assert report["coverage"]["formats"]["total"] == 2
    assert report["coverage"]["formats"]["recorded"] == 2
    assert report["disk"]["checked"] == 3

    # The files are lost: one command brings photo and formats back.
    photo_path.unlink()
    raw_path.unlink()
    tif_path = raw_path.with_suffix(".tif")
    tif_path.unlink()
    out = daemon.command("restore", "--missing", "--json")
    summary = json.loads(out.stdout)
    assert summary["restored"] == 3, out.stdout
    assert photo_path.read_bytes() == jpg
    assert raw_path.read_bytes() == raw
    assert tif_path.read_bytes() == tif
