"""The companion plugin keeps Piwigo's own rules, on real Piwigo 16 and 14:
who may get an original (guest access, the "access to original" right and
its exception for small originals), Piwigo's own words in every language,
administration links, where the daemon token may go, the History, and
Piwigo's own download while S3 refuses the daemon."""

import itertools
import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from harness import photos
from harness.browser import Browser
from harness.piwigo import ApiError
from harness.plugin import PLUGIN_DIR, PLUGIN_ID, TOKEN
from harness.procs import php_binary
from harness.s3 import SECRET_KEY

USERS = itertools.count()
LANGUAGES = ("en_UK", "fr_FR", "de_DE", "es_ES", "it_IT")


def download(client_or_cookies, piwigo, image_id):
    """The plugin's download link, not followed."""
    path = f"plugins/{PLUGIN_ID}/download.php?image_id={image_id}"
    if isinstance(client_or_cookies, dict):
        return requests.get(piwigo.url(path), cookies=client_or_cookies,
                            allow_redirects=False, timeout=30)
    return client_or_cookies.get(path, allow_redirects=False)


def core_translation(piwigo, language, file, key):
    """A key's translation in Piwigo's own language file."""
    script = (f"$lang = array(); include '{piwigo.root}/language/{language}/{file}';"
              f"echo $lang[{key!r}];")
    return subprocess.run([php_binary(), "-r", script], check=True, capture_output=True,
                          text=True).stdout


def plugin_keys(language):
    script = (f"$lang = array(); include '{PLUGIN_DIR}/language/{language}/plugin.lang.php';"
              "echo json_encode($lang);")
    out = subprocess.run([php_binary(), "-r", script], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# --- who may get an original ----------------------------------------------

def test_a_members_only_gallery_gives_anonymous_visitors_nothing(env, browser):
    p = env.piwigo
    image, _ = env.uploaded_photo("members-only")
    p.set_config("guest_access", "false")
    try:
        anonymous = p.client()
        ours = download(anonymous, p, image)
        piwigos = anonymous.get(f"action.php?id={image}&part=e&download", allow_redirects=False)
        # Piwigo sends an anonymous visitor to its login page; so do we.
        assert piwigos.status_code == 302 and "identification.php" in piwigos.headers["Location"]
        assert ours.status_code == piwigos.status_code, ours.text
        assert "identification.php" in ours.headers["Location"]
        assert "X-Amz" not in ours.headers["Location"] and env.uploaded(image) not in ours.text
        browser.get(p.url(f"picture.php?/{image}"))
        assert "identification.php" in browser.driver.current_url
        assert not browser.find_all("#S3Download")
        assert env.uploaded(image) not in browser.page
    finally:
        p.set_config("guest_access", "true")
    # Guest access back on: the same visitor gets the link again.
    assert download(p.client(), p, image).status_code == 302


@pytest.fixture
def no_originals_user(env):
    """A member without Piwigo's "access to original" right."""
    p = env.piwigo
    name = f"nohigh{next(USERS)}"
    user_id = p.add_user(name, "No-High-Pass-1")
    p.db.execute(f"UPDATE {p.table('user_infos')} SET enabled_high = 'false' WHERE user_id = %s",
                 (user_id,))
    return name, "No-High-Pass-1"


def test_the_right_to_originals_is_piwigos(env, browser, no_originals_user):
    p = env.piwigo
    # Larger than Piwigo's largest size (XXL, 1656x1242): an original the
    # user may not have; smaller: Piwigo's exception, the original is no
    # more than what the user sees.
    big, _ = env.uploaded_photo("original-big", width=2000, height=1500)
    small, small_bytes = env.uploaded_photo("original-small", width=320, height=240)
    browser.login(p, *no_originals_user)
    cookies = browser.cookies_for_requests()

    # Piwigo's own download, for reference.
    action = lambda i: requests.get(p.url(f"action.php?id={i}&part=e&download"),
                                    cookies=cookies, allow_redirects=False, timeout=30)
    assert action(big).status_code == 401
    assert action(small).status_code == 200

    browser.get(p.url(f"picture.php?/{big}"))
    assert not browser.find_all("#S3Download")
    r = download(cookies, p, big)
    assert r.status_code == 404 and "Location" not in r.headers

    history = f"SELECT COUNT(*) FROM {p.table('history')} WHERE image_id = %s AND image_type = 'high'"
    logged = p.db.scalar(history, (small,))
    browser.get(p.url(f"picture.php?/{small}"))
    links = browser.find_all("#S3Download a")
    assert len(links) == 1, browser.page[:2000]
    r = requests.get(links[0].get_attribute("href"), cookies=cookies, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 302 and "X-Amz-Signature" in r.headers["Location"], r.text
    assert requests.get(r.headers["Location"], timeout=30).content == small_bytes
    # Recorded in Piwigo's History as Piwigo's own download of an original is.
    assert p.db.scalar(history, (small,)) == logged + 1

    # Public-link mode: the permanent object URL is never written into the
    # page of a user Piwigo keeps away from the original.
    env.settings(link_mode="public")
    try:
        browser.get(p.url(f"picture.php?/{big}"))
        assert env.uploaded(big) not in browser.page
        browser.get(p.url(f"picture.php?/{small}"))
        assert env.uploaded(small) in browser.page
    finally:
        env.settings()


def test_a_filter_is_not_a_restriction(env):
    """Piwigo's "recent photos" filter hides old photos from the lists, but
    action.php still serves them: so does the plugin."""
    p = env.piwigo
    image, _ = env.uploaded_photo("old-photo")
    p.db.execute(f"UPDATE {p.table('images')} SET date_available = NOW() - INTERVAL 400 DAY "
                 "WHERE id = %s", (image,))
    user = p.client()
    user.get("index.php?filter=start-recent-7")
    assert user.get(f"action.php?id={image}&part=e&download",
                    allow_redirects=False).status_code == 200
    r = download(user, p, image)
    assert r.status_code == 302 and "X-Amz-Signature" in r.headers["Location"], r.text


def test_a_private_album_is_forbidden_until_piwigo_permits_it(env, browser):
    """A photo only in a private album: a member without permission on it
    gets no link and no object, as Piwigo's action.php refuses him; once
    Piwigo permits him the album, both serve him."""
    p = env.piwigo
    api, token = p.admin.api, p.admin.token
    album = int(api("pwg.categories.add", name=f"Private {next(USERS)}", status="private")["id"])
    data = photos.jpeg("private-album", size=30_000)
    image = p.add_photo(data, album, name="private-album")
    env.queue_from_photo_tab(image)
    env.wait_uploaded([image])
    name = f"member{next(USERS)}"
    user_id = p.add_user(name, "Member-Pass-1")
    browser.login(p, name, "Member-Pass-1")
    cookies = browser.cookies_for_requests()
    action = lambda: requests.get(p.url(f"action.php?id={image}&part=e&download"),
                                  cookies=cookies, allow_redirects=False, timeout=30)

    assert action().status_code == 401
    r = download(cookies, p, image)
    assert r.status_code == 404 and "Location" not in r.headers
    assert env.uploaded(image) not in r.text
    # The photo as a visitor reaches it, inside its album: Piwigo 14.5.0's
    # picture.php without the album in the URL has refused a member even
    # after action.php admitted him.
    photo_page = p.url(f"picture.php?/{image}/category/{album}")
    browser.get(photo_page)
    assert not browser.find_all("#S3Download a")
    assert env.uploaded(image) not in browser.page
    # Anonymous visitors neither.
    assert download(p.client(), p, image).status_code == 404

    # Through a group, as an admin does: adding the member to it refreshes
    # Piwigo's cache of his forbidden albums.
    group = int(api("pwg.groups.add", name=f"readers{next(USERS)}")["groups"][0]["id"])
    api("pwg.permissions.add", cat_id=album, group_id=group, pwg_token=token)
    api("pwg.groups.addUser", group_id=group, user_id=user_id, pwg_token=token)
    assert action().status_code == 200
    browser.get(photo_page)
    links = browser.find_all("#S3Download a")
    assert len(links) == 1, browser.page[:2000]
    r = download(cookies, p, image)
    assert r.status_code == 302 and "X-Amz-Signature" in r.headers["Location"], r.text
    assert requests.get(r.headers["Location"], timeout=30).content == data


# --- Piwigo's own words ------------------------------------------------------

def test_a_german_visitor_sees_piwigos_own_german_words(env):
    """A visitor whose browser asks for German, on a gallery whose default
    language is en_UK: Piwigo's own Download button is Piwigo's German
    word, and our row is German too."""
    p = env.piwigo
    image, _ = env.uploaded_photo("german")
    installed = p.default_language()
    p.language_action("activate", "de_DE")
    p.language_action("activate", "en_UK")
    p.language_action("set_default", "en_UK")
    german = Browser(language="de-DE")
    try:
        german.get(p.url(f"picture.php?/{image}"))
        core = core_translation(p, "de_DE", "common.lang.php", "Download")
        assert core == "Herunterladen"
        button = german.find("#downloadSwitchLink .pwg-button-text")
        assert button.get_attribute("textContent").strip() == core
        row = german.find("#S3Download")
        assert "Originalqualität" in row.get_attribute("textContent")
    finally:
        german.close()
        p.language_action("set_default", installed)


def test_a_french_admin_sees_piwigos_own_french_words_on_the_photo_tab(env):
    p = env.piwigo
    image, _ = env.uploaded_photo("french-tab")
    p.db.execute(f"UPDATE {p.table('user_infos')} SET language = 'fr_FR' WHERE user_id = 1")
    try:
        page = env.admin_page(f"-photo&image_id={image}").text
    finally:
        p.db.execute(f"UPDATE {p.table('user_infos')} SET language = 'en_UK' WHERE user_id = 1")
    edit_photo = core_translation(p, "fr_FR", "admin.lang.php", "Edit photo")
    assert edit_photo in page and edit_photo != "Modifier la photo"
    assert "Modifier la photo" not in page


def test_every_language_file_has_the_same_own_keys(env):
    keys = {lang: set(plugin_keys(lang)) for lang in LANGUAGES}
    for lang, found in keys.items():
        assert found == keys["en_UK"], (lang, found ^ keys["en_UK"])
    # None of them is one of Piwigo's own keys, which ours would replace.
    p = env.piwigo
    for lang in LANGUAGES:
        for file in ("common.lang.php", "admin.lang.php"):
            script = (f"$lang = array(); include '{p.root}/language/{lang}/{file}';"
                      "echo json_encode(array_keys($lang));")
            out = subprocess.run([php_binary(), "-r", script], check=True, capture_output=True,
                                 text=True).stdout
            clash = keys["en_UK"] & set(json.loads(out))
            assert not clash, (lang, file, clash)


# --- administration ----------------------------------------------------------

def test_admin_links_work_when_the_photo_page_link_is_off(env):
    p = env.piwigo
    image, data = env.uploaded_photo("admin-links")
    env.settings(link_visibility="off")
    try:
        hrefs = []
        for page, css in (("", r'id="s3c-uploaded".*?</fieldset>'),
                          (f"-photo&image_id={image}", r'class="s3c-key".*?</td>')):
            html = env.admin_page(page).text
            block = re.search(css, html, re.S).group(0)
            hrefs += [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', block)
                      if "page=photo-" not in h]
        assert hrefs
        for href in hrefs:
            url = href if href.startswith("http") else p.url(
                re.sub(r"^(\.\./)+|^\./", "", href))
            r = p.admin.http.get(url, allow_redirects=False, timeout=30)
            assert r.status_code == 302 and "X-Amz-Signature" in r.headers["Location"], (href, r.text)
        # The photo page offers the link to nobody, administrators included.
        assert download(p.client(), p, image).status_code == 404
        assert "S3Download" not in p.admin.get(f"picture.php?/{image}").text
    finally:
        env.settings()


def post_settings(env, **form):
    data = {"s3c_save": "1", "pwg_token": env.piwigo.admin.token,
            "link_visibility": "everyone", "link_mode": "private"}
    data.update(form)
    return env.piwigo.admin.post(
        f"admin.php?page=plugin-{PLUGIN_ID}", data=data).text


def test_the_token_goes_only_where_it_was_entered_for(env):
    before = env.stored_settings()
    moved = f"http://127.0.0.2:{env.daemon.http_port}"
    try:
        page = post_settings(env, daemon_url=moved)
        assert "enter the daemon token again" in page
        assert env.stored_settings() == before
        # Plain http to another host: refused, even with the token...
        page = post_settings(env, daemon_url="http://backup.example.org:9187", daemon_token=TOKEN)
        assert "unencrypted" in page
        assert env.stored_settings() == before
        # ... unless explicitly allowed; https needs no consent.
        post_settings(env, daemon_url="http://backup.example.org:9187", daemon_token=TOKEN,
                      allow_plain_http="1")
        assert env.stored_settings()["daemon_url"] == "http://backup.example.org:9187"
        post_settings(env, daemon_url="https://backup.example.org:9187", daemon_token=TOKEN)
        stored = env.stored_settings()
        assert stored["daemon_url"] == "https://backup.example.org:9187"
        assert stored["allow_plain_http"] is False
        # A loopback address with the token again: accepted.
        post_settings(env, daemon_url=moved, daemon_token=TOKEN)
        assert env.stored_settings()["daemon_url"] == moved
    finally:
        env.settings()


def test_plain_http_stored_before_is_not_sent_the_token(env):
    """Settings saved before the rule: the token is not sent over plain
    http to a host the plugin cannot tell is this one. The host is
    127.0.0.1 written as a number, so a broken rule would reach only the
    suite's own daemon (and the test would see its link)."""
    image, _ = env.uploaded_photo("stored-plain-http")
    env.settings(daemon_url=f"http://2130706433:{env.daemon.http_port}")
    try:
        r = download(env.piwigo.client(), env.piwigo, image)
        assert r.status_code == 502 and "Location" not in r.headers, r.headers
        assert TOKEN not in r.text
    finally:
        env.settings()


def test_other_plugins_hear_of_the_download_as_of_piwigos_own(env):
    """A plugin listening to `loc_action_before_http_headers` (as download
    counters do) hears of a download through our link exactly as of one
    through Piwigo's action.php, and not of a refused one."""
    p = env.piwigo
    fixture = Path(__file__).resolve().parent / "fixtures" / "download_listener"
    p.deploy_plugin(fixture)
    p.activate_plugin("download_listener")
    log = p.root / "_data" / "download_listener.log"
    log.unlink(missing_ok=True)
    heard = lambda: log.read_text().split() if log.exists() else []
    try:
        image, _ = env.uploaded_photo("listened")
        hidden, _ = env.uploaded_photo("listened-hidden")
        p.set_level(hidden, 8)
        visitor = p.client()
        assert visitor.get(f"action.php?id={image}&part=e&download").status_code == 200
        assert heard() == [str(image)]
        r = download(visitor, p, image)
        assert r.status_code == 302 and "X-Amz-Signature" in r.headers["Location"], r.text
        assert heard() == [str(image), str(image)]
        assert download(visitor, p, hidden).status_code == 404
        assert heard() == [str(image), str(image)]
    finally:
        p.admin.api("pwg.plugins.performAction", action="deactivate", plugin="download_listener",
                    pwg_token=p.admin.token)


# --- S3 refusing the daemon ----------------------------------------------------

def test_links_fall_back_to_piwigos_download_while_s3_refuses(env, browser):
    p = env.piwigo
    image, data = env.uploaded_photo("fallback")
    wrong = "Wrong-Secret-Key-For-The-Fallback-Test"
    env.reload_daemon(s3=[f'secret_access_key = "{wrong}"'])
    try:
        env.daemon.wait_until(lambda: env.heartbeat_s3()[0] == "refused", timeout=60,
                              what="the daemon reporting S3's refusal")
        assert wrong not in (env.heartbeat_s3()[1] or "")
        anonymous = p.client()
        r = download(anonymous, p, image)
        assert r.status_code == 302 and "action.php" in r.headers["Location"], r.text
        assert "X-Amz" not in r.headers["Location"]
        got = anonymous.get(re.sub(r"^(\.\./)+", "", r.headers["Location"]))
        assert got.status_code == 200 and got.content == data
        # The page's link ends at Piwigo's own download, which gives the
        # visitor the local original.
        browser.get(p.url(f"picture.php?/{image}"))
        href = browser.find("#S3Download a").get_attribute("href")
        r = requests.get(href, cookies=browser.cookies_for_requests(), timeout=30)
        assert "action.php" in r.url and r.content == data
        env.settings(link_mode="public")
        assert env.uploaded(image) not in p.client().get(f"picture.php?/{image}").text
        env.settings()
        admin = env.admin_page().text
        assert 's3c-s3-trouble' in admin and "S3 refuses the daemon" in admin
        assert wrong not in admin
    finally:
        env.settings()
        env.reload_daemon(s3=[f'secret_access_key = "{SECRET_KEY}"'])
    env.daemon.wait_until(lambda: env.heartbeat_s3()[0] == "ok", timeout=60,
                          what="the daemon reporting S3 again")
    r = download(p.client(), p, image)
    assert r.status_code == 302 and "X-Amz-Signature" in r.headers["Location"]


# --- activation -------------------------------------------------------------

def test_missing_curl_is_a_message_at_activation(piwigo_factory, piwigo):
    p = piwigo_factory(piwigo.version, php_options=["disable_functions=curl_init,curl_exec"])
    p.deploy_plugin(PLUGIN_DIR)
    with pytest.raises(ApiError) as refused:
        p.activate_plugin(PLUGIN_ID)
    assert "curl" in str(refused.value.answer), refused.value.answer
    assert p.plugin_state(PLUGIN_ID) != "active"
