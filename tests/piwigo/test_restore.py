"""`restore` on Piwigo's real layout."""

import json

import pytest

from harness import photos


def test_two_photos_sharing_one_file_restore_together(piwigo, s3, daemon_factory):
    """Piwigo 14 names an upload `<datetime>-<md5[:8]>`: the same bytes added
    twice within one second are two photos with one file. `restore --ids`
    of both succeeds, and says the second is in place."""
    daemon = daemon_factory(piwigo, s3)
    daemon.run_until_idle()
    album = piwigo.add_album("same second")
    jpg = photos.jpeg("same-second", size=40_000)
    for _ in range(5):
        a = piwigo.add_photo(jpg, album, name="first")
        b = piwigo.add_photo(jpg, album, name="second")
        if piwigo.photo_path(a) == piwigo.photo_path(b):
            break
    else:
        pytest.skip(f"Piwigo {piwigo.version} gave the two uploads a file each")
    daemon.run_until_idle()
    path = piwigo.photo_path(a)
    for _ in range(3):
        path.unlink()
        out = daemon.command("restore", "--ids", f"{a},{b}", "--json", check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        summary = json.loads(out.stdout)
        assert (summary["restored"], summary["already_in_place"]) == (1, 1), out.stdout
        assert path.read_bytes() == jpg
