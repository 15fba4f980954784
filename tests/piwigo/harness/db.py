"""The suite's MariaDB server: TEST_DATABASE_URL (as the Rust tests use it),
one fresh database per Piwigo install."""

import itertools
import os
import urllib.parse

import pymysql

_counter = itertools.count()


class DbServer:
    """`mysql://user:password@host:port` without a database name."""

    def __init__(self, url=None):
        url = (url or os.environ.get("TEST_DATABASE_URL")
               or "mysql://root@127.0.0.1:3306").rstrip("/")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb"):
            raise ValueError(f"TEST_DATABASE_URL must start with mysql://, got {parts.scheme}://")
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 3306
        self.user = urllib.parse.unquote(parts.username or "root")
        self.password = urllib.parse.unquote(parts.password or "")

    def connect(self, database=None):
        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, database=database,
                               charset="utf8mb4", autocommit=True)

    def create_database(self, stem="pwg"):
        name = f"{stem}_{os.getpid()}_{next(_counter)}"
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return name

    def drop_database(self, name):
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def database_url(self, name):
        return f"{self.url}/{name}"


class Database:
    """One database: small query helpers with values always bound."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.conn = server.connect(name)

    def rows(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def scalar(self, sql, args=None):
        rows = self.rows(sql, args)
        return rows[0][0] if rows else None

    def execute(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.lastrowid

    def table_exists(self, table):
        return bool(self.scalar(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = %s", (self.name, table)))

    def close(self):
        self.conn.close()
