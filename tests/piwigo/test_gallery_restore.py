"""The whole gallery back on a new host: a gallery built only through
Piwigo's web API is backed up and snapshotted, then everything is
destroyed (database, upload/, galleries/, local/, _data/ and the tree
itself) and `restore --gallery` rebuilds it into a new database and a
freshly unpacked tree. Piwigo's API and a headless browser then see the
same gallery."""

import shutil
import tarfile
import time

import pytest

from conftest import VERSIONS
from harness import photos
from harness.db import Database
from harness.piwigo import ADMIN, ADMIN_PASSWORD, tarball_dir

USER, USER_PASSWORD = "alice", "Alice-Old-Pass-9"


@pytest.fixture(scope="module", params=VERSIONS or ["none"])
def piwigo(request, piwigo_factory):
    if request.param == "none":
        pytest.fail("no Piwigo tarballs: set PIWIGO_TARBALLS (see tests/piwigo/README.md)")
    return piwigo_factory(request.param, config_lines=["$conf['enable_formats'] = true;"])


def build_gallery(piwigo):
    """Albums, photos, tags, a comment, a user in a group with access to a
    private album, a photo at level 8 and a RAW format: all through ws.php."""
    api = piwigo.admin.api
    token = piwigo.admin.token
    travels = int(api("pwg.categories.add", name="Travels", comment="Trips since 2019")["id"])
    alps = int(api("pwg.categories.add", name="Alps", parent=travels,
                   comment="Summits & valleys")["id"])
    family = int(api("pwg.categories.add", name="Family", status="private",
                     comment="Only for the family")["id"])
    ids = {
        "matterhorn": piwigo.add_photo(photos.jpeg("gr-1", size=40_000), alps,
                                       name="Matterhorn at dawn", tags=["mountain", "snow"]),
        "lake": piwigo.add_photo(photos.jpeg("gr-2", size=20_000), travels,
                                 name="Lake Geneva", tags=["water"]),
        "birthday": piwigo.add_photo(photos.jpeg("gr-3", size=25_000), family,
                                     name="Birthday cake"),
        "secret": piwigo.add_photo(photos.jpeg("gr-4", size=15_000), travels,
                                   name="Admins only"),
    }
    piwigo.set_level(ids["secret"], 8)
    raw = photos.jpeg("gr-raw", size=150_000)
    api("pwg.images.upload", files={"file": ("matterhorn.cr2", raw, "application/octet-stream")},
        name="matterhorn.cr2", format_of=ids["matterhorn"], chunk=0, chunks=1, pwg_token=token)
    # Comments are off in a fresh install; the harness switches the option
    # as it does upload_detect_duplicate.
    piwigo.set_config("activate_comments", "true")
    key = api("pwg.images.getInfo", image_id=ids["matterhorn"])["comment_post"]["key"]
    time.sleep(3)  # Piwigo refuses a comment posted too soon after its key
    api("pwg.images.addComment", image_id=ids["matterhorn"], author=ADMIN,
        content="What a morning!", key=key)
    user = piwigo.add_user(USER, USER_PASSWORD)
    group = int(api("pwg.groups.add", name="family")["groups"][0]["id"])
    api("pwg.groups.addUser", group_id=group, user_id=user, pwg_token=token)
    api("pwg.permissions.add", cat_id=family, group_id=group, pwg_token=token)
    return {"albums": {"travels": travels, "alps": alps, "family": family}, "photos": ids,
            "user": user, "group": group}


def seen_by_admin(client):
    """What Piwigo's API says of the gallery, in a comparable form."""
    api = client.api
    albums = sorted((int(c["id"]), c["name"], c.get("comment") or "", c.get("status"),
                     str(c.get("id_uppercat")))
                    for c in api("pwg.categories.getAdminList")["categories"])
    tags = sorted(t["name"] for t in api("pwg.tags.getAdminList")["tags"])
    users = sorted((int(u["id"]), u["username"]) for u in
                   api("pwg.users.getList", per_page=100)["users"])
    groups = sorted((int(g["id"]), g["name"]) for g in api("pwg.groups.getList")["groups"])
    perms = api("pwg.permissions.getList")["categories"]
    perms = sorted((int(p["id"]), tuple(sorted(int(g) for g in p.get("groups", []))))
                   for p in perms)
    return {"albums": albums, "tags": tags, "users": users, "groups": groups,
            "permissions": perms}


def photo_info(client, image_id):
    info = client.api("pwg.images.getInfo", image_id=image_id)
    return {
        "name": info["name"],
        "level": int(info["level"]),
        "tags": sorted(t["name"] for t in info["tags"]),
        "albums": sorted(int(c["id"]) for c in info["categories"]),
        "comments": [(c["author"], c["content"]) for c in info.get("comments", [])],
        "file": info["file"],
    }


def files_of(piwigo, ids):
    """Every original and format file, by path relative to the root."""
    out = {}
    for image_id in ids:
        path = piwigo.photo_path(image_id)
        out[str(path.relative_to(piwigo.root))] = path.read_bytes()
        fmt = path.parent / "pwg_format"
        if fmt.is_dir():
            # Piwigo's index.htm guards are not part of any photo.
            for f in fmt.glob(path.stem + ".*"):
                out[str(f.relative_to(piwigo.root))] = f.read_bytes()
    return out


def test_the_whole_gallery_comes_back_on_a_new_host(piwigo, s3, daemon_factory, browser):
    snapshots = ['interval = "1d"']
    daemon = daemon_factory(piwigo, s3, sections={"snapshots": snapshots})
    daemon.run_until_idle()  # the watermark starts at the newest photo
    made = build_gallery(piwigo)
    ids = made["photos"]
    daemon.run_until_idle()
    formats = piwigo.db.scalar(f"SELECT COUNT(*) FROM {piwigo.table('s3upload_formats')}")
    assert formats == 1
    out = daemon.command("snapshot")
    assert "snapshot " in out.stdout, out.stdout + out.stderr

    before = seen_by_admin(piwigo.admin)
    before_photos = {k: photo_info(piwigo.admin, v) for k, v in ids.items()}
    assert before_photos["matterhorn"]["comments"] == [(ADMIN, "What a morning!")]
    assert before_photos["secret"]["level"] == 8
    before_files = files_of(piwigo, ids.values())
    assert any("pwg_format" in p for p in before_files)
    database_inc = (piwigo.root / "local/config/database.inc.php").read_text()

    # Everything lost: the database, the files, the whole tree.
    piwigo.proc.kill()
    piwigo.proc.wait()
    old_db = piwigo.db_name
    piwigo.db.close()
    piwigo.db_server.drop_database(old_db)
    for d in ("upload", "galleries", "local", "_data"):
        shutil.rmtree(piwigo.root / d, ignore_errors=True)
    shutil.rmtree(piwigo.root)

    # A new host: a freshly unpacked tree, an empty database, and this
    # host's database.inc.php written by its admin.
    with tarfile.open(tarball_dir() / f"piwigo-{piwigo.version}.tar.gz") as tar:
        tar.extractall(piwigo.workdir, filter="tar")
    new_db = piwigo.db_server.create_database("pwg")
    piwigo.db_name = new_db
    piwigo.db = Database(piwigo.db_server, new_db)
    (piwigo.root / "local/config/database.inc.php").write_text(
        database_inc.replace(old_db, new_db))
    piwigo.serve()

    restorer = daemon_factory(piwigo, s3, sections={"snapshots": snapshots})
    started = time.monotonic()
    out = restorer.command("restore", "--gallery", "--url", piwigo.url(), timeout=600)
    elapsed = time.monotonic() - started
    print(f"restore --gallery on Piwigo {piwigo.version}: {elapsed:.1f} s")
    assert f"open the gallery: {piwigo.url()}" in out.stdout, out.stdout + out.stderr
    assert "local/: " in out.stdout

    # Piwigo's own answers: the same gallery.
    piwigo.admin = piwigo.client().login(ADMIN, ADMIN_PASSWORD)
    assert seen_by_admin(piwigo.admin) == before
    for k, image_id in ids.items():
        assert photo_info(piwigo.admin, image_id) == before_photos[k], k
    assert files_of(piwigo, ids.values()) == before_files
    # The admin's local settings came back, this host's credentials stayed.
    assert "enable_formats" in (piwigo.root / "local/config/config.inc.php").read_text()
    assert new_db in (piwigo.root / "local/config/database.inc.php").read_text()

    # A guest sees the public albums, not the private one nor level 8.
    guest = piwigo.client()
    names = {c["name"] for c in guest.api("pwg.categories.getList", recursive="true")["categories"]}
    assert {"Travels", "Alps"} <= names and "Family" not in names
    browser.get(piwigo.url("index.php"))
    assert "Travels" in browser.page and "Family" not in browser.page
    browser.get(piwigo.url(f"picture.php?/{ids['secret']}"))
    assert "Admins only" not in browser.page

    # The user logs in with the old password and sees the private album.
    browser.login(piwigo, USER, USER_PASSWORD)
    browser.get(piwigo.url("index.php"))
    assert "Family" in browser.page
    browser.get(piwigo.url(f"index.php?/category/{made['albums']['family']}"))
    assert "Birthday cake" in browser.page or "Family" in browser.page

    # And the daemon goes on: nothing sent again.
    objects = sorted(s3.keys())
    restorer.run_until_idle()
    assert sorted(s3.keys()) == objects
