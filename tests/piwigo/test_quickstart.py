"""The README's quick start, followed literally against a real Piwigo: from
an empty configuration directory, `init` with flags, `check`,
`enqueue --all`, `run --until-idle`; every photo ends up in the bucket."""

import json
import os
import subprocess

from harness import photos
from harness.daemon import binary
from harness.s3 import ACCESS_KEY, BUCKET, SECRET_KEY


def test_quick_start_from_an_empty_config_directory(piwigo, s3, tmp_path):
    # Photos already in the gallery before the daemon is installed.
    album = piwigo.add_album("quick start")
    data = {n: photos.jpeg(f"quick-start-{n}", size=20_000) for n in range(4)}
    ids = {n: piwigo.add_photo(b, album, name=f"qs{n}") for n, b in data.items()}

    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "piwigo-s3upload.toml"
    # The secret in a file of its own, as `init --secret-access-key-file` takes it.
    secret = tmp_path / "s3_secret_access_key"
    secret.write_text(SECRET_KEY + "\n")
    secret.chmod(0o600)

    def step(*args):
        out = subprocess.run([binary(), "--config", str(config), *args],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, NO_COLOR="1"))
        text = out.stdout + out.stderr
        assert out.returncode == 0, f"{' '.join(args)} exited {out.returncode}:\n{text}"
        return out.stdout if args[-1] == "--json" else text

    # 2. init, with flags as a script gives them.
    out = step("init", "--non-interactive", "--piwigo-root", str(piwigo.root),
               "--bucket", BUCKET, "--endpoint", s3.endpoint,
               "--access-key-id", ACCESS_KEY, "--secret-access-key-file", str(secret))
    assert "enqueue --all" in out and " run" in out, out
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    written = config.read_text()
    assert SECRET_KEY not in written and "database_url =" not in written, written

    # 3. check: everything passes, the database settings came from Piwigo.
    out = step("check")
    assert "all checks passed" in out, out
    assert "local/config/database.inc.php" in out, out
    assert f"piwigo.table_prefix from {piwigo.root}" in out, out

    # 4. enqueue --all, then the daemon until the queue is empty.
    out = step("enqueue", "--all")
    assert f"queued {len(ids)} of {len(ids)} selected photos" in out, out
    step("run", "--until-idle")

    keys = s3.keys()
    assert len(keys) == len(ids), keys
    stored = sorted(s3.get(k) for k in keys)
    assert stored == sorted(data.values())
    # What to look at afterwards: status.
    status = json.loads(step("status", "--json"))
    assert status["counts"]["uploaded"] == len(ids), status
