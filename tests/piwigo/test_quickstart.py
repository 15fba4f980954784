"""The README's quick start, followed literally against a real Piwigo, as
the package sets things up: a system user `piwigo-s3upload`, the config at
/etc/piwigo-s3upload.toml, a database user of the daemon's own made only
from `grants`' output, then `init` as root, and `check`, `enqueue --all`,
`run --until-idle` and `status` as the unprivileged system user. Every
photo ends up in the bucket."""

import fcntl
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness import photos
from harness.daemon import binary
from harness.s3 import ACCESS_KEY, BUCKET, SECRET_KEY

USER = "piwigo-s3upload"
CONFIG = Path("/etc/piwigo-s3upload.toml")
SECRETS = Path("/etc/piwigo-s3upload")
# The Debian package's test takes the same lock: one owner of /etc's files.
LOCK = "/tmp/piwigo-s3upload-deb-test.lock"


@pytest.fixture
def system_user():
    """The package's system user and group, made as its postinst does
    (removed afterwards when the test made them), and /etc to itself."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it makes a system user and writes /etc")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CONFIG.exists() or SECRETS.exists():
            pytest.skip(f"{CONFIG} or {SECRETS} exists on this machine; not replacing it")
        made = False
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", USER],
                           check=True)
            made = True
        try:
            yield USER
        finally:
            CONFIG.unlink(missing_ok=True)
            shutil.rmtree(SECRETS, ignore_errors=True)
            if made:
                subprocess.run(["userdel", USER], check=False)


def let_others_traverse(path):
    """pytest's temporary directories are 0700 root: the daemon's user may
    pass through (not list) them to reach the gallery, as it would reach
    /var/www."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        os.chmod(p, stat.S_IMODE(mode) | stat.S_IXOTH)


def test_quick_start_as_the_package_sets_it_up(piwigo, s3, db_server, system_user, tmp_path):
    # Photos already in the gallery before the daemon is installed.
    album = piwigo.add_album("quick start")
    data = {n: photos.jpeg(f"quick-start-{n}", size=20_000) for n in range(4)}
    ids = {n: piwigo.add_photo(b, album, name=f"qs{n}") for n, b in data.items()}
    let_others_traverse(piwigo.root)
    # The gallery belongs to the web server's group, and its photos are not
    # for others: the daemon's user reads them only as a member of that
    # group, which init makes it (the README's step 3).
    web = grp.getgrnam("www-data")
    was_member = USER in web.gr_mem
    subprocess.run(["chgrp", "-R", "www-data", str(piwigo.root)], check=True)
    subprocess.run(["chmod", "-R", "g+rX", str(piwigo.root)], check=True)
    (piwigo.root / "upload").chmod(0o750)
    # A database user per Piwigo version: the server is shared by the suite.
    db_user = f"s3u-{piwigo.version.replace('.', '')}-{os.getpid()}"
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PIWIGO_S3UPLOAD_CONFIG", None)

    def root(*args, stdin=None):
        out = subprocess.run([binary(), *args], capture_output=True, text=True,
                             timeout=300, env=env, input=stdin)
        assert out.returncode == 0, f"{' '.join(args)} exited {out.returncode}:\n{out.stdout}{out.stderr}"
        return out.stdout + out.stderr

    def as_daemon(*args):
        out = subprocess.run(["runuser", "-u", USER, "--", binary(), *args],
                             capture_output=True, text=True, timeout=300, env=env)
        text = out.stdout + out.stderr
        assert out.returncode == 0, f"{' '.join(args)} as {USER} exited {out.returncode}:\n{text}"
        return out.stdout if args[-1] == "--json" else text

    # 2. The database user: a password in a file only root and the
    #    daemon's group read, and the statements `grants` prints, run by
    #    the database's administrator.
    SECRETS.mkdir(mode=0o750)
    os.chown(SECRETS, 0, grp.getgrnam(USER).gr_gid)
    password = SECRETS / "database_password"
    password.write_text(os.urandom(18).hex() + "\n")
    os.chown(password, 0, grp.getgrnam(USER).gr_gid)
    password.chmod(0o640)
    script = root("grants", "--piwigo-root", str(piwigo.root), "--user", db_user,
                  "--host", "127.0.0.1", "--password-file", str(password))
    assert "ALL" not in script and "GRANT" in script, script
    mysql = subprocess.run(["mysql", "-h", db_server.host, "-P", str(db_server.port),
                            "-u", db_server.user], input=script, capture_output=True,
                           text=True, env=dict(env, MYSQL_PWD=db_server.password))
    assert mysql.returncode == 0, mysql.stderr
    try:
        secret = SECRETS / "s3_secret_access_key"
        secret.write_text(SECRET_KEY + "\n")
        os.chown(secret, 0, grp.getgrnam(USER).gr_gid)
        secret.chmod(0o640)

        # 3. init as root, with the daemon's own database user.
        out = root("init", "--non-interactive", "--piwigo-root", str(piwigo.root),
                   "--database-url", f"mysql://{db_user}@127.0.0.1:{db_server.port}/{piwigo.db_name}",
                   "--database-password-file", str(password),
                   "--bucket", BUCKET, "--endpoint", s3.endpoint,
                   "--access-key-id", ACCESS_KEY, "--secret-access-key-file", str(secret))
        assert "enqueue --all" in out and " run" in out, out
        if not was_member:
            assert f"added user {USER} to group www-data" in out, out
        assert USER in grp.getgrnam("www-data").gr_mem
        st = CONFIG.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, grp.getgrgid(st.st_gid).gr_name) \
            == (0o640, 0, USER), out
        assert f"readable by the service's user {USER}" in out, out
        written = CONFIG.read_text()
        assert SECRET_KEY not in written and f'table_prefix = "{piwigo.prefix}"' in written, written
        # init never replaces a file without --force.
        again = subprocess.run([binary(), "init", "--non-interactive", "--piwigo-root",
                                str(piwigo.root), "--bucket", BUCKET], capture_output=True,
                               text=True, env=env)
        assert again.returncode == 2 and "--force" in again.stderr, again.stderr
        assert CONFIG.read_text() == written

        # 4. check, as the service will run.
        out = as_daemon("check")
        assert "all checks passed" in out, out
        assert "ok    privileges" in out, out

        # 5. enqueue --all, then the daemon until the queue is empty.
        out = as_daemon("enqueue", "--all")
        assert f"queued {len(ids)} of {len(ids)} selected photos" in out, out
        as_daemon("run", "--until-idle")

        keys = s3.keys()
        assert len(keys) == len(ids), keys
        assert sorted(s3.get(k) for k in keys) == sorted(data.values())
        # What to look at afterwards: status.
        out = as_daemon("status")
        assert "Daemon: stopped (" in out, out
        status = json.loads(as_daemon("status", "--json"))
        assert status["counts"]["uploaded"] == len(ids), status
        # Piwigo's tables were only read.
        assert piwigo.db.scalar(f"SELECT COUNT(*) FROM {piwigo.table('images')}") == len(ids)
    finally:
        if not was_member:
            subprocess.run(["gpasswd", "-d", USER, "www-data"], capture_output=True, check=False)
        with db_server.connect() as conn, conn.cursor() as cur:
            for host in ("127.0.0.1",):
                cur.execute(f"DROP USER IF EXISTS '{db_user}'@'{host}'")
