"""The companion plugin inside real Piwigo 16 and 14, with the daemon
running beside it: Batch Manager action, photo-page link (private bucket,
presigned by the daemon), admin tab, photo tab, import of the old plugin's
table, and bad input."""

import os
import re
import signal
import subprocess
import time

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness import photos
from harness.daemon import Daemon
from harness.piwigo import ADMIN, ADMIN_PASSWORD
from harness.plugin import BATCH_ACTION, PLUGIN_DIR, PLUGIN_ID, TOKEN
from harness.procs import php_binary

def test_plugin_php_files_pass_lint():
    files = sorted(PLUGIN_DIR.rglob("*.php"))
    assert files
    for f in files:
        out = subprocess.run([php_binary(), "-l", str(f)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_plugin_is_installed_and_active_through_piwigo(env):
    assert env.piwigo.plugin_state(PLUGIN_ID) == "active"


def test_batch_manager_action_queues_the_selection(env, browser):
    p = env.piwigo
    done = p.add_photo(photos.jpeg("bm-done"), env.album, name="bm-done")
    env.piwigo.db.execute(f"DELETE FROM {p.table('caddie')}")
    p.add_to_caddie([done])
    # One photo uploaded beforehand, through the same Batch Manager path.
    browser.login(p, ADMIN, ADMIN_PASSWORD)
    apply_batch_action(browser, p)
    env.wait_uploaded([done])

    data = {i: photos.jpeg(f"bm-{i}", size=30_000 + i) for i in range(3)}
    ids = {p.add_photo(b, env.album, name=f"bm{i}"): b for i, b in data.items()}
    p.add_to_caddie(ids)
    before = env.request_count()
    message = apply_batch_action(browser, p)
    assert env.request_count() == before + 1
    request = p.db.scalar(f"SELECT MAX(id) FROM {p.table('s3upload_requests')}")
    if "is waiting for the daemon" in message:
        # A busy daemon answered after the Batch Manager stopped waiting:
        # the counts are in the S3Upload tab.
        assert f"Request #{request} is waiting for the daemon" in message, message
        env.daemon.wait_until(lambda: p.db.scalar(
            f"SELECT status FROM {p.table('s3upload_requests')} WHERE id = %s",
            (request,)) == "done", what="the request carried out")
        browser.get(p.url(f"admin.php?page=plugin-{PLUGIN_ID}"))
        message = browser.find(f"#s3c-requests li[data-request-id='{request}']").text
    assert "Queued 3 of 4 selected photos" in message, message
    assert "1 already uploaded" in message, message
    env.wait_uploaded(list(ids))
    for image_id, data in ids.items():
        assert env.s3.get(env.uploaded(image_id)) == data


def apply_batch_action(browser, piwigo):
    browser.get(piwigo.url("admin.php?page=batch_manager&filter=prefilter-caddie"))
    links = browser.find_all("#selectSet") or browser.find_all("#selectAll")
    links[0].click()
    Select(browser.find("select[name=selectAction]")).select_by_value(BATCH_ACTION)
    browser.find("#applyAction").click()
    # The plugin waits a few seconds for the daemon's counts. The page is
    # replaced while the form is submitted: the text is read in the wait,
    # and a page that went stale mid-read is read again.
    def message(driver):
        text = driver.find_element(By.TAG_NAME, "body").text
        answered = re.search(r"Queued \d+ of \d+ selected photos|is waiting for the daemon", text)
        return text if answered else False

    return WebDriverWait(
        browser.driver, 30, ignored_exceptions=[StaleElementReferenceException]
    ).until(message)


def test_photo_page_link_downloads_the_original_from_a_private_bucket(env, browser):
    p = env.piwigo
    data = photos.jpeg("page-link", size=60_000)
    image = p.add_photo(data, env.album, name="page-link")
    hidden = p.add_photo(photos.jpeg("page-hidden"), env.album, name="page-hidden")
    p.set_level(hidden, 8)
    for i in (image, hidden):
        env.queue_from_photo_tab(i)
    env.wait_uploaded([image, hidden])

    # A visitor (not logged in) allowed to see the photo gets the link.
    browser.get(p.url(f"picture.php?/{image}"))
    links = browser.find_all("#S3Download a")
    assert len(links) == 1, browser.page[:2000]
    href = links[0].get_attribute("href")
    assert "download.php" in href and TOKEN not in browser.page
    r = requests.get(href, cookies=browser.cookies_for_requests(), allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    assert "X-Amz-Signature" in r.headers["Location"]
    assert requests.get(r.headers["Location"], timeout=30).content == data

    # The same visitor may not see the hidden photo: no page, no link.
    browser.get(p.url(f"picture.php?/{hidden}"))
    assert not browser.find_all("#S3Download a")
    r = requests.get(p.url(f"plugins/{PLUGIN_ID}/download.php?image_id={hidden}"),
                     allow_redirects=False, timeout=30)
    assert r.status_code == 404 and "Location" not in r.headers
    assert env.uploaded(hidden) not in r.text

    # Administrators only: the visitor loses the link, the admin keeps it.
    env.settings(link_visibility="admins")
    try:
        browser.get(p.url(f"picture.php?/{image}"))
        assert not browser.find_all("#S3Download a")
        browser.login(p, ADMIN, ADMIN_PASSWORD)
        browser.get(p.url(f"picture.php?/{image}"))
        assert len(browser.find_all("#S3Download a")) == 1
    finally:
        env.settings()


def test_public_url_mode_links_straight_to_the_object(env):
    p = env.piwigo
    image = p.add_photo(photos.jpeg("public-mode"), env.album, name="public-mode")
    env.queue_from_photo_tab(image)
    env.wait_uploaded([image])
    env.settings(link_mode="public")
    try:
        page = p.client().get(f"picture.php?/{image}").text
        url = p.db.scalar(f"SELECT url FROM {p.table('s3upload_uploaded')} WHERE image_id = %s", (image,))
        assert url in page and "download.php" not in page
    finally:
        env.settings()


def test_admin_tab_shows_tables_counts_heartbeat_and_retry_clears_a_failure(env, browser):
    p = env.piwigo
    data = photos.jpeg("retry-me", size=40_000)
    image = p.add_photo(data, env.album, name="retry-me")
    path = p.photo_path(image)
    path.rename(path.with_suffix(".away"))
    env.queue_from_photo_tab(image)
    env.daemon.wait_until(lambda: (env.queue_status(image) or "").startswith("failed"),
                          what="the failure")

    browser.login(p, ADMIN, ADMIN_PASSWORD)
    browser.get(p.url(f"admin.php?page=plugin-{PLUGIN_ID}"))
    assert browser.find("#s3c-daemon-state").text == "running"
    row = browser.find(f"#s3c-pending tr[data-image-id='{image}'] .s3c-status")
    # The admin reads what the status means, not the status word.
    assert row.get_attribute("data-status") == "failed_file_missing"
    assert row.text == "Failed: the photo's file is missing on disk"
    assert "Put the file back" in browser.find(
        "#s3c-counts tr[data-status=failed_file_missing] .s3c-fix").text
    assert browser.find("#s3c-counts tr[data-status=failed_file_missing] .s3c-count").text == "1"
    assert browser.find_all("#s3c-uploaded tr[data-image-id]")
    assert int(browser.find("#s3c-counts tr[data-status=uploaded] .s3c-count").text) >= 1

    # Fix the cause, press the button: the failure clears at once.
    path.with_suffix(".away").rename(path)
    browser.find("#s3c-retry").click()
    env.wait_uploaded([image], timeout=30)
    assert env.s3.get(env.uploaded(image)) == data
    browser.get(p.url(f"admin.php?page=plugin-{PLUGIN_ID}"))
    assert browser.find_all(f"#s3c-uploaded tr[data-image-id='{image}']")
    assert not browser.find_all(f"#s3c-pending tr[data-image-id='{image}']")


def test_admin_tab_says_when_the_daemon_was_last_seen(env):
    p = env.piwigo
    os.kill(env.daemon.proc.pid, signal.SIGSTOP)
    try:
        p.db.execute(f"UPDATE {p.table('s3upload_heartbeat')} "
                     "SET last_seen = NOW(3) - INTERVAL 12 MINUTE")
        page = env.admin_page().text
    finally:
        os.kill(env.daemon.proc.pid, signal.SIGCONT)
    assert "not seen for 12 min" in page
    env.daemon.wait_until(lambda: "running" in env.admin_page().text, timeout=30,
                          what="the heartbeat again")


def test_photo_tab_shows_the_status_and_key(env):
    p = env.piwigo
    image = p.add_photo(photos.jpeg("photo-tab"), env.album, name="photo-tab")
    edit = p.admin.get(f"admin.php?page=photo-{image}").text
    assert f"page=plugin-{PLUGIN_ID}-photo&amp;image_id={image}" in edit
    tab = env.admin_page(f"-photo&image_id={image}").text
    assert "Not queued and not uploaded." in tab
    env.queue_from_photo_tab(image)
    env.wait_uploaded([image])
    tab = env.admin_page(f"-photo&image_id={image}").text
    assert env.uploaded(image) in tab and "uploaded" in tab


def test_photo_tab_lists_the_earlier_versions(env):
    from test_versions import replace_file
    p = env.piwigo
    image, old = env.uploaded_photo("photo-tab-versions", size=20_000)
    old_key = env.uploaded(image)
    replace_file(p, image, photos.jpeg("photo-tab-versions-new", size=80_000))
    env.daemon.wait_until(lambda: env.uploaded(image) != old_key, timeout=60,
                          what="the new version recorded")
    tab = env.admin_page(f"-photo&image_id={image}").text
    assert 'id="s3c-versions"' in tab and "Earlier versions" in tab
    assert old_key in tab and photos.md5(old) in tab
    assert env.uploaded(image) in tab and "/s3upload-versions/" in env.uploaded(image)


def test_french_strings(env):
    p = env.piwigo
    p.db.execute(f"UPDATE {p.table('user_infos')} SET language = 'fr_FR' WHERE user_id = 1")
    try:
        page = env.admin_page().text
        assert "Photos par statut" in page and "Réessayer les échecs maintenant" in page
    finally:
        p.db.execute(f"UPDATE {p.table('user_infos')} SET language = 'en_UK' WHERE user_id = 1")


# --- bad input ------------------------------------------------------------

def test_batch_manager_refuses_a_missing_or_forged_token(env):
    p = env.piwigo
    image = p.add_photo(photos.jpeg("forged"), env.album, name="forged")
    before = env.request_count()
    for token in (None, "0" * 32):
        form = {"selectAction": BATCH_ACTION, "selection[]": [str(image)], "submit": "1"}
        retry = {"s3c_retry": "1"}
        if token:
            form["pwg_token"] = retry["pwg_token"] = token
        p.admin.post("admin.php?page=batch_manager", data=form)
        p.admin.post(f"admin.php?page=plugin-{PLUGIN_ID}", data=retry)
        env.queue_from_photo_tab(image, token=token or False)
    assert env.request_count() == before
    assert env.queue_status(image) is None and env.uploaded(image) is None
    # The same forms with the session's token are accepted.
    env.queue_from_photo_tab(image)
    p.admin.post("admin.php?page=batch_manager", data={
        "selectAction": BATCH_ACTION, "selection[]": [str(image)], "submit": "1",
        "pwg_token": p.admin.token})
    assert env.request_count() == before + 2


def test_download_endpoint_refuses_bad_ids(env):
    p = env.piwigo
    base = f"plugins/{PLUGIN_ID}/download.php"
    anonymous = p.client()
    for query in ("", "?image_id=", "?image_id=abc", "?image_id=1%20OR%201=1", "?image_id=-3",
                  "?image_id[]=1", "?image_id=0x10"):
        r = anonymous.get(base + query, allow_redirects=False)
        assert r.status_code == 400, (query, r.status_code, r.text)
    r = anonymous.get(base + "?image_id=99999999", allow_redirects=False)
    assert r.status_code == 404


def test_a_wrong_daemon_token_is_refused_and_nothing_leaks(env):
    p = env.piwigo
    image = p.add_photo(photos.jpeg("wrong-token"), env.album, name="wrong-token")
    env.queue_from_photo_tab(image)
    env.wait_uploaded([image])
    env.settings(daemon_token="a-wrong-token-of-enough-length")
    try:
        r = p.client().get(f"plugins/{PLUGIN_ID}/download.php?image_id={image}",
                           allow_redirects=False)
        assert r.status_code == 502 and "Location" not in r.headers
        assert "wrong-token" not in r.text and env.uploaded(image) not in r.text
    finally:
        env.settings()
    d = env.daemon
    for path in (f"presign/{image}", "status"):
        assert d.http_get(path).status_code == 401
        assert d.http_get(path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"}).status_code == 401
    ok = d.http_get(f"presign/{image}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "X-Amz-Signature" in ok.json()["url"]
    assert d.http_get("presign/abc", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 400
    assert d.http_get("status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert d.http_get("healthz").status_code == 200
    assert d.http_get("metrics").status_code == 200


def test_a_presigned_link_expires(env, tmp_path):
    p = env.piwigo
    image = p.add_photo(photos.jpeg("expires"), env.album, name="expires")
    env.queue_from_photo_tab(image)
    env.wait_uploaded([image])
    # A second daemon on the same queue, with one-second links.
    short = Daemon(tmp_path / "short", p, env.s3, http=True, sections={
        "http": [f'token = "{TOKEN}"', 'presign_expiry = "1s"'],
        "monitor": ["enabled = false"]}).start()
    try:
        answer = short.http_get(f"presign/{image}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200 and answer.json()["expires_in"] == 1
        url = answer.json()["url"]
        assert requests.get(url, timeout=30).status_code == 200
        time.sleep(2.5)
        late = requests.get(url, timeout=30)
        assert late.status_code in (400, 403) and "AccessDenied" in late.text, late.text
    finally:
        short.stop()
