"""Fixtures for tests against a real Piwigo. See README.md beside this file."""

import os

import pytest

from harness.browser import Browser
from harness.daemon import Daemon
from harness.db import DbServer
from harness.piwigo import Piwigo, available_versions, tarball_dir
from harness.plugin import Env
from harness.s3 import S3Server


def _versions():
    wanted = os.environ.get("PIWIGO_VERSIONS")
    return [v.strip() for v in wanted.split(",") if v.strip()] if wanted else available_versions()


VERSIONS = _versions()


@pytest.fixture(scope="session")
def db_server():
    return DbServer()


@pytest.fixture(scope="session")
def piwigo_factory(db_server, tmp_path_factory):
    """`make(version, prefix="piwigo_", config_lines=(), php_options=())`
    (`php -d` settings for its server): a fresh install
    in a database of its own, stopped and dropped at the end of the session."""
    made = []

    def make(version, prefix="piwigo_", config_lines=(), php_options=()):
        workdir = tmp_path_factory.mktemp(f"piwigo-{version}")
        p = Piwigo(version, workdir, db_server, prefix=prefix, config_lines=config_lines,
                   php_options=php_options)
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.close()


@pytest.fixture(scope="module", params=VERSIONS or ["none"])
def piwigo(request, piwigo_factory):
    """One installed Piwigo per test module and version (16.4.0, 14.5.0...)."""
    if request.param == "none":
        pytest.fail(f"no Piwigo tarballs in {tarball_dir()}: set PIWIGO_TARBALLS "
                    "(see tests/piwigo/README.md)")
    return piwigo_factory(request.param)


@pytest.fixture(scope="module")
def env(piwigo, tmp_path_factory):
    """The companion plugin active in `piwigo`, with its daemon and S3
    server (harness/plugin.py)."""
    e = Env.start(piwigo, tmp_path_factory.mktemp(f"plugin-{piwigo.version}"))
    yield e
    e.close()


@pytest.fixture
def s3(tmp_path):
    server = S3Server(tmp_path).start()
    yield server
    server.close()


@pytest.fixture
def daemon_factory(tmp_path):
    """`make(piwigo, s3, sections=None, http=False)`: a configured daemon
    (not started); every started one is stopped after the test."""
    made = []

    def make(piwigo, s3, sections=None, http=False):
        d = Daemon(tmp_path / f"daemon-{len(made)}", piwigo, s3, sections=sections, http=http)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()
