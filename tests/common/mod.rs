//! Test harness: a fresh database per test on a real MariaDB, a Piwigo
//! shaped schema with real image files, and a real S3-compatible server
//! process (`rclone serve s3`, or another of `servers`) with signature
//! checking on.
#![allow(dead_code)]

pub mod cli;
pub mod faults;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{Credentials, Region};
use md5::{Digest, Md5};
use piwigo_s3upload::config::Config;
use piwigo_s3upload::daemon::{self, RunOptions};
use piwigo_s3upload::metrics::Summary;
use piwigo_s3upload::shutdown::Shutdown;
use sqlx::{Executor, MySqlPool};

pub use servers::ServerKind;

/// An access key of its own for each server a test starts: a test that
/// reached another test's server (one port given to both) is refused with
/// a 403 instead of acting on that test's bucket.
pub fn unique_access_key() -> String {
    static STARTED: AtomicU32 = AtomicU32::new(0);
    format!(
        "TEST{}K{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    )
}
pub const SECRET_KEY: &str = "TestSecretKey+With/Symbols0001";
pub const BUCKET: &str = "gallery";

/// The server root for test databases, without a database name.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_string())
        .trim_end_matches('/')
        .to_string()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name(stem: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{stem}_{}_{}_{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database of its own with Piwigo's tables, and a gallery directory.
pub struct Gallery {
    pub name: String,
    pub url: String,
    pub pool: MySqlPool,
    pub dir: tempfile::TempDir,
    pub prefix: String,
}

const PIWIGO_SCHEMA: &str = include_str!("piwigo_schema.sql");

impl Gallery {
    pub async fn new() -> Self {
        Self::with_prefix("piwigo_").await
    }

    pub async fn with_prefix(prefix: &str) -> Self {
        let name = unique_name("s3u_test");
        let admin = MySqlPool::connect(&server_url())
            .await
            .expect("connect to the test MariaDB (set TEST_DATABASE_URL)");
        admin
            .execute(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str())
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{}/{name}", server_url());
        let pool = MySqlPool::connect(&url).await.unwrap();
        for stmt in PIWIGO_SCHEMA.replace("{prefix}", prefix).split(";\n") {
            if !stmt.trim().is_empty() {
                pool.execute(stmt).await.unwrap();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("piwigo/upload")).unwrap();
        std::fs::create_dir_all(dir.path().join("piwigo/galleries")).unwrap();
        Self {
            name,
            url,
            pool,
            dir,
            prefix: prefix.to_string(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("piwigo")
    }

    pub fn table(&self, name: &str) -> String {
        format!("`{}{name}`", self.prefix)
    }

    /// Writes `bytes` at `path` (relative to the root) and inserts the
    /// images row the way Piwigo does: file first, row second.
    pub async fn add_photo(
        &self,
        path: &str,
        file: &str,
        bytes: &[u8],
        md5sum: Option<&str>,
    ) -> u32 {
        let full = self.root().join(path.trim_start_matches("./"));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, bytes).unwrap();
        self.add_row(path, file, md5sum, bytes.len() as u64).await
    }

    pub async fn add_row(&self, path: &str, file: &str, md5sum: Option<&str>, size: u64) -> u32 {
        let done = sqlx::query(&format!(
            "INSERT INTO {} (file, path, md5sum, filesize, date_available) VALUES (?, ?, ?, ?, NOW())",
            self.table("images")
        ))
        .bind(file)
        .bind(path)
        .bind(md5sum)
        .bind(size / 1024)
        .execute(&self.pool)
        .await
        .unwrap();
        done.last_insert_id() as u32
    }

    /// A typical web upload: ./upload/YYYY/MM/DD/<stamp>-<rand>.jpg.
    pub async fn add_upload(&self, n: u32, file: &str, bytes: &[u8]) -> u32 {
        let path = format!("./upload/2024/05/17/20240517120000-{n:08x}.jpg");
        let md5 = md5_hex(bytes);
        self.add_photo(&path, file, bytes, Some(&md5)).await
    }

    /// Piwigo 13+'s formats table, as its installer makes it.
    pub async fn create_formats_table(&self) {
        self.exec(&format!(
            "CREATE TABLE {} (format_id int(11) unsigned NOT NULL auto_increment, \
             image_id mediumint(8) unsigned NOT NULL DEFAULT '0', ext varchar(255) NOT NULL, \
             filesize mediumint(9) unsigned DEFAULT NULL, PRIMARY KEY (format_id)) ENGINE=MyISAM",
            self.table("image_format")
        ))
        .await;
    }

    /// Adds a format to the photo `add_upload(n, ...)` made, the way
    /// Piwigo does: file in place first, then the row.
    pub async fn add_format(&self, image_id: u32, n: u32, ext: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join(format!(
            "upload/2024/05/17/pwg_format/20240517120000-{n:08x}.{ext}"
        ));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        self.exec(&format!(
            "INSERT INTO {} (image_id, ext, filesize) VALUES ({image_id}, '{ext}', {})",
            self.table("image_format"),
            bytes.len() / 1024
        ))
        .await;
        path
    }

    /// Our tables created (or brought up to date) beside Piwigo's.
    pub async fn migrated(&self) -> piwigo_s3upload::db::Tables {
        let t = piwigo_s3upload::db::Tables::new(&self.prefix);
        piwigo_s3upload::queue::migrate::run(&self.pool, &t)
            .await
            .unwrap();
        t
    }

    /// The queue as the daemon opens it, on this test's database.
    pub async fn queue(&self) -> piwigo_s3upload::queue::Queue {
        use piwigo_s3upload::queue::Queue;
        let strategy = Queue::detect_strategy(&self.pool).await.unwrap();
        Queue::new(
            self.pool.clone(),
            piwigo_s3upload::db::Tables::new(&self.prefix),
            strategy,
        )
    }

    pub async fn exec(&self, sql: &str) {
        self.pool.execute(sql).await.unwrap();
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn queue_statuses(&self) -> Vec<(u32, String)> {
        sqlx::query_as(&format!(
            "SELECT image_id, status FROM {} ORDER BY image_id",
            self.table("s3upload_queue")
        ))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    pub async fn uploaded(&self) -> Vec<(u32, String, String, String)> {
        sqlx::query_as(&format!(
            "SELECT image_id, outcome, s3_key, md5 FROM {} ORDER BY image_id",
            self.table("s3upload_uploaded")
        ))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Drops every table of the daemon's, as if the database were lost
    /// (Piwigo's own tables stay).
    pub async fn drop_daemon_tables(&self) {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name LIKE ?",
        )
        .bind(format!("{}s3upload%", self.prefix.replace('_', "\\_")))
        .fetch_all(&self.pool)
        .await
        .unwrap();
        assert!(!names.is_empty());
        for name in names {
            self.exec(&format!("DROP TABLE `{name}`")).await;
        }
    }

    pub async fn drop_database(self) {
        self.pool.close().await;
        if let Ok(admin) = MySqlPool::connect(&server_url()).await {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS `{}`", self.name).as_str())
                .await;
            admin.close().await;
        }
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// Deterministic pseudo-random bytes, distinct per seed.
pub fn photo_bytes(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345) as u64 | 1;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A real S3-compatible server on a free loopback port, checking SigV4
/// signatures: `rclone serve s3` (storing buckets as directories) unless a
/// test asks for another with [`S3Server::start_kind`].
pub struct S3Server {
    pub kind: ServerKind,
    pub endpoint: String,
    pub data: tempfile::TempDir,
    /// The keys this server accepts (Garage and moto make their own).
    pub access_key: String,
    pub secret_key: String,
    port: u16,
    child: Option<Child>,
}

impl S3Server {
    pub async fn start() -> Self {
        Self::start_kind(ServerKind::Rclone).await
    }

    pub async fn start_kind(kind: ServerKind) -> Self {
        let data = tempfile::tempdir().unwrap();
        let started = servers::start(kind, free_port(), data.path(), true).await;
        Self {
            kind,
            endpoint: format!("http://127.0.0.1:{}", started.port),
            data,
            access_key: started.access_key,
            secret_key: started.secret_key,
            port: started.port,
            child: Some(started.child),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends a signal (`STOP`, `CONT`) to the server process.
    pub fn signal(&self, name: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(c.id().to_string())
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill -{name} the S3 server");
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A client with the right keys, to look at what the daemon did.
    pub fn client(&self) -> aws_sdk_s3::Client {
        client_for(&self.endpoint, &self.access_key, &self.secret_key)
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .client()
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.unwrap().into_bytes().to_vec())
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) {
        self.client()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    /// Every key in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .client()
            .list_objects_v2()
            .bucket(BUCKET)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for o in page.unwrap().contents.unwrap_or_default() {
                keys.push(o.key.unwrap_or_default());
            }
        }
        keys.sort();
        keys
    }

    /// The keys of the multipart uploads open in the bucket, sorted.
    pub async fn open_uploads(&self) -> Vec<String> {
        let out = self
            .client()
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = out
            .uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }
}

/// A plain SDK client for `endpoint` with these keys.
pub fn client_for(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version_latest()
        .http_client(piwigo_s3upload::s3::https_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback endpoint where no S3 server answers, for as long as the
/// value lives: its port is bound but never listened on, so connections
/// are refused and no other test's server can take the port. (A test that
/// stopped its own server to find S3 down freed the port, and a server
/// another test started there took the removals meant to fail.)
pub struct Unreachable {
    _socket: tokio::net::TcpSocket,
    pub endpoint: String,
}

impl Unreachable {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Self {
            _socket: socket,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config for this gallery and server; `extra` is appended to sections
/// by name (`[monitor]` lines etc.).
pub fn config_text(g: &Gallery, s3: &S3Server, secret: &str, extra: &str) -> String {
    format!(
        r#"
[piwigo]
database_url = "{url}"
table_prefix = "{prefix}"
root = "{root}"

[s3]
bucket = "{BUCKET}"
region = "us-east-1"
endpoint = "{endpoint}"
force_path_style = true
access_key_id = "{access_key}"
secret_access_key = "{secret}"
prefix = "photos/"
key_format = "file"

[upload]
workers = 4
retry_backoff_min = "1s"
retry_backoff_max = "5s"
claim_lease = "10s"
multipart_threshold = "6MiB"
part_size = "5MiB"
{extra}
"#,
        url = g.url,
        prefix = g.prefix,
        root = g.root().display(),
        endpoint = s3.endpoint,
        access_key = s3.access_key,
    )
}

pub fn config(g: &Gallery, s3: &S3Server, extra: &str) -> Config {
    config_with_secret(g, s3, &s3.secret_key, extra)
}

pub fn config_with_secret(g: &Gallery, s3: &S3Server, secret: &str, extra: &str) -> Config {
    Config::from_toml(
        &config_text(g, s3, secret, extra),
        Path::new("test.toml"),
        None,
    )
    .expect("test config is valid")
}

/// Runs the daemon until the queue is idle.
pub async fn drain(config: Config) -> Summary {
    init_logs();
    daemon::run(
        config,
        Shutdown::default(),
        RunOptions {
            until_idle: true,
            config_path: None,
        },
    )
    .await
    .expect("daemon run")
}

/// The key the daemon gives an upload made by `add_upload` with `file`.
pub fn upload_key(file: &str) -> String {
    format!("photos/20240517120000-{file}")
}

/// Logs to the test's output when PIWIGO_S3UPLOAD_LOG is set.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("PIWIGO_S3UPLOAD_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// Polls `check` every 100 ms until it holds; fails the test after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host and port of the test server (`host:port`), as Piwigo's
/// `db_host` or a database URL holds them.
pub fn db_host() -> String {
    server_url()
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:3306")
        .trim_start_matches("mysql://")
        .to_string()
}

impl Gallery {
    /// A database user `<stem><8 chars of this database's name>` with
    /// `password`, made from `grants`' output alone (the least privilege
    /// the daemon asks for); returns its name.
    pub async fn create_user(&self, stem: &str, password: &str) -> String {
        let user = format!("{stem}{}", &self.name[self.name.len() - 8..]);
        for host in ["localhost", "127.0.0.1"] {
            self.grant_as_printed(&user, host, password).await;
        }
        user
    }

    /// Runs what `piwigo-s3upload grants` prints for this database, as an
    /// admin piping it into `mysql` would.
    pub async fn grant_as_printed(&self, user: &str, host: &str, password: &str) {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .args(["--config", "/nonexistent.toml", "grants", "--database"])
            .arg(&self.name)
            .args(["--prefix", &self.prefix, "--user", user, "--host", host])
            .arg("--password-file")
            .arg(&password_file)
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "grants: {script}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for statement in script.lines().filter(|l| !l.starts_with("--")) {
            self.pool.execute(statement).await.unwrap();
        }
    }

    pub async fn drop_user(&self, user: &str) {
        for host in ["localhost", "127.0.0.1"] {
            let _ = self
                .pool
                .execute(format!("DROP USER '{user}'@'{host}'").as_str())
                .await;
        }
    }
}
