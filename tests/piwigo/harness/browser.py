"""Debian's chromium, headless, through Debian's chromedriver."""

import os
import shutil
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000"]


def _find(*names):
    for name in names:
        found = shutil.which(name) or (name if os.path.exists(name) else None)
        if found:
            return found
    raise RuntimeError(f"none of {names} found: apt-get install chromium chromium-driver")


class Browser:
    def __init__(self, language=None):
        """`language` ("de-DE"): the visitor's Accept-Language, which
        Piwigo follows for visitors who are not logged in."""
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM") or _find("chromium", "/usr/bin/chromium")
        for flag in FLAGS:
            options.add_argument(flag)
        if language:
            options.add_argument(f"--lang={language}")
            options.add_experimental_option("prefs", {"intl.accept_languages": language})
        options.add_argument(f"--user-data-dir={self.profile}")
        service = Service(executable_path=os.environ.get("CHROMEDRIVER")
                          or _find("chromedriver", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(60)

    def get(self, url):
        self.driver.get(url)
        return self.driver

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    @property
    def page(self):
        return self.driver.page_source

    def login(self, piwigo, username, password):
        """Logs in through Piwigo's own identification form, as nobody else:
        both Piwigo versions of the suite serve 127.0.0.1, and cookies do
        not tell ports apart, so an earlier session's cookie (of another
        user, another install or another path) must not ride along."""
        self.get(piwigo.url("identification.php"))
        self.driver.delete_all_cookies()
        self.get(piwigo.url("identification.php"))
        self.find("input[name=username]").send_keys(username)
        self.find("input[name=password]").send_keys(password)
        self.find("input[name=login]").click()
        # The click only starts the form's POST: wait for Piwigo's redirect,
        # or the next get() would cancel the login.
        WebDriverWait(self.driver, 60).until(
            lambda d: "identification.php" not in d.current_url)

    def cookies_for_requests(self):
        """The browser's cookies, to fetch a link it would follow."""
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
