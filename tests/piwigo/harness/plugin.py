"""The companion plugin deployed in one Piwigo, with a daemon (monitoring
off, [http] with a token) and an S3 server beside it."""

import json
import os
import signal

from .daemon import Daemon
from .procs import REPO
from .s3 import S3Server

PLUGIN_ID = "s3upload_companion"
PLUGIN_DIR = REPO / "piwigo-plugin" / PLUGIN_ID
TOKEN = "plugin-suite-token-0123456789"
BATCH_ACTION = "s3upload_companion_queue"


class Env:
    def __init__(self, piwigo, s3, daemon):
        self.piwigo = piwigo
        self.s3 = s3
        self.daemon = daemon
        self.album = None

    @classmethod
    def start(cls, piwigo, workdir):
        s3 = S3Server(workdir).start()
        piwigo.deploy_plugin(PLUGIN_DIR)
        piwigo.activate_plugin(PLUGIN_ID)
        # Monitoring off: only the plugin's requests queue photos here. A
        # long backoff: a failure stays until the retry button is pressed.
        daemon = Daemon(workdir / "daemon", piwigo, s3, http=True, sections={
            "http": [f'token = "{TOKEN}"'], "monitor": ["enabled = false"],
            "upload": ['retry_backoff_min = "1h"', 'retry_backoff_max = "1h"']}).start()
        e = cls(piwigo, s3, daemon)
        daemon.wait_until(lambda: piwigo.db.table_exists(f"{piwigo.prefix}s3upload_heartbeat")
                          and piwigo.db.scalar(
                              f"SELECT COUNT(*) FROM {piwigo.table('s3upload_heartbeat')}"),
                          what="the daemon's first heartbeat")
        e.settings()
        e.album = piwigo.add_album("plugin album")
        return e

    def close(self):
        self.daemon.stop()
        self.s3.close()

    def settings(self, **changes):
        current = {"link_visibility": "everyone", "link_mode": "private",
                   "daemon_url": f"http://127.0.0.1:{self.daemon.http_port}",
                   "daemon_token": TOKEN}
        current.update(changes)
        self.piwigo.set_config("s3upload_companion", json.dumps(current))

    def stored_settings(self):
        return json.loads(self.piwigo.db.scalar(
            f"SELECT value FROM {self.piwigo.table('config')} WHERE param = 's3upload_companion'"))

    def uploaded(self, image_id):
        return self.piwigo.db.scalar(
            f"SELECT s3_key FROM {self.piwigo.table('s3upload_uploaded')} WHERE image_id = %s",
            (image_id,))

    def wait_uploaded(self, image_ids, timeout=60):
        return self.daemon.wait_until(lambda: all(self.uploaded(i) for i in image_ids),
                                      timeout=timeout, what=f"photos {image_ids} uploaded")

    def queue_status(self, image_id):
        return self.piwigo.db.scalar(
            f"SELECT status FROM {self.piwigo.table('s3upload_queue')} WHERE image_id = %s",
            (image_id,))

    def request_count(self):
        return self.piwigo.db.scalar(f"SELECT COUNT(*) FROM {self.piwigo.table('s3upload_requests')}")

    def admin_page(self, query=""):
        return self.piwigo.admin.get(f"admin.php?page=plugin-{PLUGIN_ID}{query}")

    def queue_from_photo_tab(self, image_id, token=None):
        """Presses "Upload to S3" on the photo's S3 tab."""
        data = {"s3c_queue": "1"}
        if token is not False:
            data["pwg_token"] = token or self.piwigo.admin.token
        return self.piwigo.admin.post(
            f"admin.php?page=plugin-{PLUGIN_ID}-photo&image_id={image_id}", data=data)

    def uploaded_photo(self, seed, **jpeg):
        """A new photo in the album, uploaded by the daemon: (id, bytes)."""
        from . import photos
        data = photos.jpeg(seed, **jpeg)
        image = self.piwigo.add_photo(data, self.album, name=str(seed))
        self.queue_from_photo_tab(image)
        self.wait_uploaded([image])
        return image, data

    def reload_daemon(self, **sections):
        """Rewrites the daemon's config with `sections` and sends SIGHUP."""
        for name, lines in sections.items():
            self.daemon.sections[name] = [
                *[c for c in self.daemon.sections.get(name, [])
                  if c.split("=", 1)[0].strip() not in {l.split("=", 1)[0].strip() for l in lines}],
                *lines]
        self.daemon.write_config()
        os.kill(self.daemon.proc.pid, signal.SIGHUP)

    def heartbeat_s3(self):
        return self.piwigo.db.rows(
            f"SELECT s3_state, s3_detail FROM {self.piwigo.table('s3upload_heartbeat')} "
            "WHERE stopped_at IS NULL ORDER BY last_seen DESC LIMIT 1")[0]
