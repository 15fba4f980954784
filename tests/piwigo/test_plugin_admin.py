"""What the companion plugin shows and lets a gallery admin do, on real
Piwigo 16 and 14: the at-a-glance summary, "Test connection", the Batch
Manager filters, the notice on other administration pages; and the
screenshots a reviewer looks at (tests/piwigo/artifacts/)."""

import re
import subprocess
from pathlib import Path

from selenium.webdriver.support.ui import Select

from harness import photos
from harness.daemon import binary, config_text
from harness.piwigo import ADMIN, ADMIN_PASSWORD
from harness.plugin import PLUGIN_ID, TOKEN

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def screenshot(browser, piwigo, name):
    ARTIFACTS.mkdir(exist_ok=True)
    browser.driver.set_window_size(1280, 1000)
    height = browser.driver.execute_script("return document.body.scrollHeight")
    browser.driver.set_window_size(1280, max(1000, min(height + 100, 4000)))
    path = ARTIFACTS / f"{piwigo.version}-{name}.png"
    browser.driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, path


def failed_photo(env, seed):
    """A photo the daemon failed (its file moved away): (id, path moved)."""
    p = env.piwigo
    image = p.add_photo(photos.jpeg(seed), env.album, name=seed)
    path = p.photo_path(image)
    path.rename(path.with_suffix(".away"))
    env.queue_from_photo_tab(image)
    env.daemon.wait_until(lambda: (env.queue_status(image) or "").startswith("failed"),
                          what="the failure")
    return image, path


def test_the_summary_counts_backed_up_photos(env):
    p = env.piwigo
    env.uploaded_photo("summary")
    total = p.db.scalar(f"SELECT COUNT(*) FROM {p.table('images')}")
    backed = p.db.scalar(f"SELECT COUNT(*) FROM {p.table('s3upload_uploaded')}")
    assert 0 < backed <= total
    page = env.admin_page().text
    assert f"{backed} of {total} photos backed up" in page, page[-3000:]
    assert re.search(r'id="s3c-last-upload">\d{4}-\d\d-\d\d', page)
    assert 'id="s3c-bytes">' in page and "never run (piwigo-s3upload verify)" in page
    # The daemon's settings, as it reports them (monitoring is off here).
    assert 'id="s3c-bucket">gallery<' in page and 'id="s3c-prefix">photos/<' in page
    assert 'id="s3c-key-layout">file<' in page
    assert "off: only photos queued by hand are sent" in page


def post_test(env):
    return env.piwigo.admin.post(f"admin.php?page=plugin-{PLUGIN_ID}", data={
        "s3c_test": "1", "pwg_token": env.piwigo.admin.token}).text


def test_test_connection_says_what_is_wrong(env):
    assert "Connection works" in post_test(env)
    env.settings(daemon_token="a-wrong-token-of-enough-length")
    try:
        page = post_test(env)
        assert "refuses the token" in page and "a-wrong-token" not in page
    finally:
        env.settings()
    env.settings(daemon_url="http://127.0.0.1:9")
    try:
        assert "Cannot reach the daemon at http://127.0.0.1:9" in post_test(env)
    finally:
        env.settings()
    assert TOKEN not in post_test(env)


def test_batch_manager_filters_select_the_photos_that_need_action(env, browser):
    p = env.piwigo
    done, _ = env.uploaded_photo("filter-done")
    failed, moved = failed_photo(env, "filter-failed")
    never = p.add_photo(photos.jpeg("filter-never"), env.album, name="filter-never")
    browser.login(p, ADMIN, ADMIN_PASSWORD)

    def ids_in_page(prefilter):
        browser.get(p.url(f"admin.php?page=batch_manager&filter=prefilter-{prefilter}"))
        return set(map(int, re.findall(r'name="selection\[\]" value="(\d+)"', browser.page)))

    backed_up = ids_in_page("s3c_backed_up")
    assert done in backed_up and failed not in backed_up and never not in backed_up
    failing = ids_in_page("s3c_failed")
    assert failed in failing and done not in failing and never not in failing
    not_backed = ids_in_page("s3c_not_backed_up")
    assert failed in not_backed and never in not_backed and done not in not_backed
    # The filters are offered in the Batch Manager's own list.
    options = [o.get_attribute("value") for o in
               Select(browser.find("select[name=filter_prefilter]")).options]
    assert {"s3c_not_backed_up", "s3c_failed", "s3c_backed_up"} <= set(options)
    screenshot(browser, p, "batch-manager-filters")
    moved.with_suffix(".away").rename(moved)


def test_other_admin_pages_say_when_something_needs_attention(env):
    p = env.piwigo
    failed, moved = failed_photo(env, "notice")
    page = p.admin.get("admin.php?page=photos_add").text
    assert 'id="s3c-notice"' in page and "photos failed" in page
    assert f"page=plugin-{PLUGIN_ID}" in page
    moved.with_suffix(".away").rename(moved)
    p.db.execute(f"DELETE FROM {p.table('s3upload_queue')} WHERE status LIKE 'failed%%'")
    assert 'id="s3c-notice"' not in p.admin.get("admin.php?page=photos_add").text


def test_screenshots_of_the_admin_tab_and_the_photo_tab(env, browser):
    p = env.piwigo
    image, _ = env.uploaded_photo("screenshot")
    browser.login(p, ADMIN, ADMIN_PASSWORD)
    browser.get(p.url(f"admin.php?page=plugin-{PLUGIN_ID}"))
    assert browser.find("#s3c-summary")
    screenshot(browser, p, "admin-tab")
    browser.get(p.url(f"admin.php?page=plugin-{PLUGIN_ID}-photo&image_id={image}"))
    assert browser.find("#s3c-photo")
    screenshot(browser, p, "photo-tab")
    browser.get(p.url(f"picture.php?/{image}"))
    screenshot(browser, p, "photo-page")


def test_the_photo_tab_retries_that_photo_alone(env, browser):
    p = env.piwigo
    image, moved = failed_photo(env, "photo-retry")
    other, other_moved = failed_photo(env, "photo-retry-other")
    moved.with_suffix(".away").rename(moved)
    other_moved.with_suffix(".away").rename(other_moved)
    browser.login(p, ADMIN, ADMIN_PASSWORD)
    browser.get(p.url(f"admin.php?page=plugin-{PLUGIN_ID}-photo&image_id={image}"))
    assert "Put the file back" in browser.find(".s3c-fix").text
    browser.find("#s3c-retry-photo").click()
    env.wait_uploaded([image], timeout=30)
    # The other failure waits out its backoff (an hour here).
    assert (env.queue_status(other) or "").startswith("failed")
    assert env.uploaded(other) is None


def test_the_tables_page_beyond_the_ten_most_recent(env):
    p = env.piwigo
    ids = [p.add_photo(photos.jpeg(f"page-{i}"), env.album, name=f"page-{i}") for i in range(11)]
    p.add_to_caddie(ids)
    p.admin.post("admin.php?page=batch_manager", data={
        "selectAction": "s3upload_companion_queue", "selection[]": [str(i) for i in ids],
        "submit": "1", "pwg_token": p.admin.token})
    env.wait_uploaded(ids)

    def rows(html):
        block = re.search(r'id="s3c-uploaded".*?</fieldset>', html, re.S).group(0)
        return re.findall(r'<tr data-image-id="(\d+)"', block)

    first = env.admin_page().text
    assert 'id="s3c-uploaded-pages"' in first
    assert len(rows(first)) == 10
    second = env.admin_page("&uploaded_start=10").text
    assert rows(second) and not set(rows(second)) & set(rows(first))
    assert "uploaded_start=10" in first
    # A start that is not a number shows the first page.
    assert rows(env.admin_page("&uploaded_start=x%27").text) == rows(first)


def test_the_summary_shows_the_last_database_snapshot(env, tmp_path):
    p = env.piwigo
    p.db.execute(f"DELETE FROM {p.table('s3upload_state')} WHERE name LIKE 'snapshot%%'")
    assert "never taken" in env.admin_page().text

    env.daemon.command("snapshot")
    page = env.admin_page().text
    shown = re.search(r'id="s3c-snapshot">(\d{4}-\d\d-\d\d \d\d:\d\d): (\S+-piwigo-[\d.]+) \(', page)
    assert shown, page[-3000:]

    # A snapshot that fails (S3 refuses a wrong secret) is shown with its
    # error, the last good one, and a notice; never with the secret.
    wrong = "Wrong-Secret-For-The-Test-42"
    config = tmp_path / "wrong.toml"
    config.write_text(config_text(p, env.daemon.s3, {
        **env.daemon.sections, "s3": [f'secret_access_key = "{wrong}"']}))
    config.chmod(0o600)
    out = subprocess.run([binary(), "--config", str(config), "snapshot"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, out.stdout
    page = env.admin_page().text
    assert re.search(r'id="s3c-snapshot">[^<]*failed: ', page), page[-3000:]
    assert f"last good one {shown.group(1)}" in page
    assert wrong not in page
    notice = p.admin.get("admin.php?page=photos_add").text
    assert "the last database snapshot failed" in notice

    env.daemon.command("snapshot")
    assert "the last database snapshot failed" not in p.admin.get("admin.php?page=photos_add").text


def test_the_summary_says_when_deletions_are_held(env):
    """Most of an album deleted at once through Piwigo's API: the daemon
    holds every deletion from the bucket, and the tab and the notice say
    so until `retention --release`."""
    p = env.piwigo
    held = lambda: p.db.scalar(
        f"SELECT COUNT(*) FROM {p.table('s3upload_state')} WHERE name = 'deletions_hold'")
    assert held() == 0
    album = p.add_album("held deletions")
    ids = []
    for i in range(4):
        image = p.add_photo(photos.jpeg(f"held-{i}"), album, name=f"held{i}")
        env.queue_from_photo_tab(image)
        ids.append(image)
    env.wait_uploaded(ids)
    for image in ids[:3]:
        p.delete_photo(image)
    env.daemon.wait_until(lambda: held() == 1, what="the hold")
    page = env.admin_page().text
    assert 'id="s3c-hold"' in page and "held since" in page, page[-3000:]
    assert "retention --release" in page
    assert "deletions from the bucket are held" in p.admin.get("admin.php?page=photos_add").text
    out = env.daemon.command("retention", "--release")
    assert "released the hold" in out.stdout, out.stdout
    assert 'id="s3c-hold"' not in env.admin_page().text
    assert "deletions from the bucket are held" not in p.admin.get(
        "admin.php?page=photos_add").text
