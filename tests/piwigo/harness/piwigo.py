"""A real Piwigo: unpacked from a release tarball, served by `php -S`,
installed through install.php, driven through its web API (ws.php)."""

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import requests

from .db import Database
from .procs import free_port, php_binary, stop, tail, wait_for_port

ADMIN = "admin"
ADMIN_PASSWORD = "Admin-Pass-123"


class ApiError(RuntimeError):
    def __init__(self, method, answer):
        super().__init__(f"Piwigo API {method} failed: {answer}")
        self.answer = answer


def tarball_dir():
    """Where the Piwigo release tarballs are: $PIWIGO_TARBALLS, by default
    ../shared/piwigo beside the repository."""
    from .procs import REPO
    return Path(os.environ.get("PIWIGO_TARBALLS") or REPO.parent / "shared" / "piwigo")


def available_versions():
    found = sorted(tarball_dir().glob("piwigo-*.tar.gz"), reverse=True)
    return [p.name[len("piwigo-"):-len(".tar.gz")] for p in found]


class Client:
    """One logged-in (or anonymous) browser-less session on Piwigo."""

    def __init__(self, piwigo):
        self.piwigo = piwigo
        self.http = requests.Session()
        self.token = None

    def api_answer(self, method, files=None, **params):
        """The raw JSON answer, for tests that expect a refusal."""
        r = self.http.post(self.piwigo.url("ws.php"),
                           params={"format": "json", "method": method},
                           data=params, files=files, timeout=120)
        try:
            return r.json()
        except ValueError:
            raise ApiError(method, f"HTTP {r.status_code}: {r.text[:500]}") from None

    def api(self, method, files=None, **params):
        answer = self.api_answer(method, files=files, **params)
        if answer.get("stat") != "ok":
            raise ApiError(method, answer)
        return answer.get("result")

    def login(self, username, password):
        self.api("pwg.session.login", username=username, password=password)
        self.token = self.api("pwg.session.getStatus")["pwg_token"]
        return self

    def get(self, path, **kw):
        kw.setdefault("timeout", 60)
        return self.http.get(self.piwigo.url(path), **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", 60)
        return self.http.post(self.piwigo.url(path), **kw)


class Piwigo:
    def __init__(self, version, workdir, db_server, prefix="piwigo_", config_lines=(),
                 php_options=()):
        self.version = version
        self.php_options = [a for o in php_options for a in ("-d", o)]
        self.workdir = Path(workdir)
        self.db_server = db_server
        self.prefix = prefix
        self.config_lines = list(config_lines)
        self.root = self.workdir / "piwigo"
        self.port = None
        self.proc = None
        self.db_name = None
        self.db = None
        self.admin = None
        self.log = self.workdir / "php-server.log"

    # --- lifecycle -----------------------------------------------------
    def start(self):
        tarball = tarball_dir() / f"piwigo-{self.version}.tar.gz"
        if not tarball.exists():
            raise FileNotFoundError(f"no Piwigo tarball at {tarball} (set PIWIGO_TARBALLS)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            tar.extractall(self.workdir, filter="tar")
        # Piwigo would otherwise call ImageMagick's `convert`.
        lines = ["<?php", "$conf['graphics_library'] = 'gd';", *self.config_lines]
        (self.root / "local" / "config" / "config.inc.php").write_text("\n".join(lines) + "\n")
        self.db_name = self.db_server.create_database("pwg")
        self.serve()
        self.install()
        self.db = Database(self.db_server, self.db_name)
        # Tests upload identical bytes on purpose (md5 de-duplication).
        self.set_config("upload_detect_duplicate", "false")
        self.admin = self.client().login(ADMIN, ADMIN_PASSWORD)
        return self

    def serve(self):
        self.port = free_port()
        env = dict(os.environ, PHP_CLI_SERVER_WORKERS="4")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [php_binary(), "-d", "upload_max_filesize=200M", "-d", "post_max_size=200M",
                 "-d", "display_errors=stderr", *self.php_options, "-S", f"127.0.0.1:{self.port}", "-t", str(self.root)],
                cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proc, what="php -S", log=self.log)

    def install(self):
        s = self.db_server
        form = {
            "dbhost": f"{s.host}:{s.port}", "dbuser": s.user, "dbpasswd": s.password,
            "dbname": self.db_name, "prefix": self.prefix,
            "admin_name": ADMIN, "admin_pass1": ADMIN_PASSWORD, "admin_pass2": ADMIN_PASSWORD,
            "admin_mail": "admin@example.org", "install": "Start",
        }
        r = requests.post(self.url("install.php?language=en_GB"), data=form, timeout=120)
        if "installation is completed" not in r.text:
            raise RuntimeError(f"Piwigo {self.version} install failed (HTTP {r.status_code})"
                               f"{tail(self.log)}\n{r.text[-2000:]}")

    def close(self):
        stop(self.proc, group=True)
        if self.db is not None:
            self.db.close()
        if self.db_name:
            self.db_server.drop_database(self.db_name)

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    @property
    def database_url(self):
        return self.db_server.database_url(self.db_name)

    def table(self, name):
        return f"`{self.prefix}{name}`"

    def client(self):
        return Client(self)

    def login(self, username, password):
        return Client(self).login(username, password)

    # --- content -------------------------------------------------------
    def add_album(self, name, parent=None):
        params = {"name": name}
        if parent:
            params["parent"] = parent
        return int(self.admin.api("pwg.categories.add", **params)["id"])

    def add_photo(self, data, album, name="photo", filename=None, tags=None, launch=True):
        """Adds a photo exactly as the web uploader does; returns its id.
        New photos wait in Piwigo's lounge (not yet in their album, so not
        visible to visitors) until the upload ends: `launch` ends it."""
        params = {"category": album, "name": name}
        if tags:
            params["tags"] = ",".join(tags)
        files = {"image": (filename or f"{name}.jpg", data, "image/jpeg")}
        image_id = int(self.admin.api("pwg.images.addSimple", files=files, **params)["image_id"])
        if launch:
            self.admin.api("pwg.images.emptyLounge")
        return image_id

    def add_tag(self, name):
        return int(self.admin.api("pwg.tags.add", name=name)["id"])

    def tag_photos(self, image_ids, tag_id):
        for image_id in image_ids:
            self.admin.api("pwg.images.setInfo", image_id=image_id, tag_ids=tag_id,
                           multiple_value_mode="append", pwg_token=self.admin.token)

    def set_level(self, image_id, level):
        """Privacy level: 0 everybody ... 8 administrators only."""
        self.admin.api("pwg.images.setInfo", image_id=image_id, level=level,
                       single_value_mode="replace", pwg_token=self.admin.token)

    def add_to_caddie(self, image_ids):
        ids = list(image_ids)
        if ids:
            self.admin.api("pwg.caddie.add", **{"image_id[]": ids})

    def caddie(self, user_id=1):
        return sorted(r[0] for r in self.db.rows(
            f"SELECT element_id FROM {self.table('caddie')} WHERE user_id = %s", (user_id,)))

    def delete_photo(self, image_id):
        self.admin.api("pwg.images.delete", image_id=image_id, pwg_token=self.admin.token)

    def add_user(self, username, password):
        answer = self.admin.api("pwg.users.add", username=username, password=password,
                                password_confirm=password, pwg_token=self.admin.token)
        return int(answer["users"][0]["id"])

    def language_action(self, action, code):
        """Administration > Languages: `activate` one of Piwigo's languages
        (an install activates only its own; visitors whose browser asks for
        an active one get it) or `set_default` (the gallery's language)."""
        self.admin.get(f"admin.php?page=languages&tab=installed&action={action}"
                       f"&language={code}&pwg_token={self.admin.token}")
        if not self.db.scalar(f"SELECT COUNT(*) FROM {self.table('languages')} WHERE id = %s",
                              (code,)):
            raise RuntimeError(f"Piwigo {self.version} did not activate {code}")

    def default_language(self):
        return self.db.scalar(f"SELECT language FROM {self.table('user_infos')} WHERE user_id = 2")

    def photo(self, image_id):
        """The images row as a dict."""
        rows = self.db.rows(f"SELECT id, file, path, md5sum, filesize FROM {self.table('images')} "
                            "WHERE id = %s", (image_id,))
        if not rows:
            return None
        return dict(zip(("id", "file", "path", "md5sum", "filesize"), rows[0]))

    def photo_path(self, image_id):
        return self.root / self.photo(image_id)["path"].removeprefix("./")

    def set_config(self, param, value):
        self.db.execute(f"REPLACE INTO {self.table('config')} (param, value) VALUES (%s, %s)",
                        (param, value))

    # --- plugins -------------------------------------------------------
    def deploy_plugin(self, source, plugin_id=None):
        """Copies a plugin folder into plugins/ as an admin would."""
        source = Path(source)
        target = self.root / "plugins" / (plugin_id or source.name)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
        return target.name

    def activate_plugin(self, plugin_id):
        for action in ("install", "activate"):
            self.admin.api("pwg.plugins.performAction", action=action, plugin=plugin_id,
                           pwg_token=self.admin.token)

    def plugin_state(self, plugin_id):
        return self.db.scalar(f"SELECT state FROM {self.table('plugins')} WHERE id = %s",
                              (plugin_id,))
