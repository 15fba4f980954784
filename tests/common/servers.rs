//! The S3-compatible servers the harness can start: `rclone serve s3` (the
//! default of every test), moto, SeaweedFS and Garage (the compatibility
//! suite, tests/compat.rs). Each is started on free loopback ports with a
//! data directory of its own, signature checking on and its own keys, and
//! is killed when the test's `S3Server` is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BUCKET, SECRET_KEY, free_port, unique_access_key};

/// The Garage release the suite runs, built by `scripts/test.sh --servers`
/// into a cache directory keyed by this version.
pub const GARAGE_VERSION: &str = "2.5.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Rclone,
    Moto,
    Seaweedfs,
    Garage,
}

impl ServerKind {
    pub const ALL: [ServerKind; 4] = [Self::Rclone, Self::Moto, Self::Seaweedfs, Self::Garage];

    pub fn name(self) -> &'static str {
        match self {
            Self::Rclone => "rclone",
            Self::Moto => "moto",
            Self::Seaweedfs => "seaweedfs",
            Self::Garage => "garage",
        }
    }

    /// The server's program: from its environment variable, the project's
    /// tool venv or cache, or PATH.
    pub fn binary(self) -> PathBuf {
        let (var, name) = match self {
            Self::Rclone => ("RCLONE", "rclone"),
            Self::Moto => ("MOTO_SERVER", "moto_server"),
            Self::Seaweedfs => ("WEED", "weed"),
            Self::Garage => ("GARAGE", "garage"),
        };
        if let Ok(p) = std::env::var(var) {
            return PathBuf::from(p);
        }
        let local = match self {
            Self::Garage => garage_cache().join("bin/garage"),
            _ => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".tools/venv/bin")
                .join(name),
        };
        if local.exists() {
            return local;
        }
        PathBuf::from(name)
    }

    /// Whether the program can be found.
    pub fn present(self) -> bool {
        let bin = self.binary();
        if bin.components().count() > 1 {
            return bin.exists();
        }
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(&bin).exists()))
            .unwrap_or(false)
    }
}

/// Where `scripts/test.sh --servers` installs Garage: one build per
/// machine and version, shared by every clone.
pub fn garage_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join(format!("piwigo-s3upload/garage-{GARAGE_VERSION}"))
}

/// A started server: its process, its S3 port (the one asked for, unless
/// it had to move) and the keys it accepts.
pub struct Started {
    pub child: Child,
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
}

/// Starts `kind` on `port`, storing under `data`, with the test bucket.
/// `fresh` is false on a restart: the bucket and keys are there already.
pub async fn start(kind: ServerKind, port: u16, data: &Path, fresh: bool) -> Started {
    match kind {
        ServerKind::Rclone => rclone(port, data).await,
        ServerKind::Moto => {
            assert!(fresh, "moto keeps everything in memory: it cannot restart");
            moto(port).await
        }
        ServerKind::Seaweedfs => seaweedfs(port, data).await,
        ServerKind::Garage => garage(port, data, fresh).await,
    }
}

fn spawn(kind: ServerKind, cmd: &mut Command, log: Option<&Path>) -> Child {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "start {} ({}): {e}; scripts/test.sh --servers installs it",
                kind.name(),
                kind.binary().display()
            )
        })
}

async fn wait_for_port(what: &str, port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rclone(port: u16, data: &Path) -> Started {
    std::fs::create_dir_all(data.join(BUCKET)).unwrap();
    let access_key = unique_access_key();
    let mut child = spawn(
        ServerKind::Rclone,
        Command::new(ServerKind::Rclone.binary())
            .args(["serve", "s3", "--config", "/dev/null", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--auth-key")
            .arg(format!("{access_key},{SECRET_KEY}"))
            .args([
                "--force-path-style=true",
                "--etag-hash",
                "MD5",
                "--log-level",
                "ERROR",
            ])
            .arg(data),
        // Aborted uploads (shutdown tests) make it log errors by design.
        None,
    );
    wait_for_port("rclone serve s3", port, &mut child).await;
    Started {
        child,
        port,
        access_key: access_key.clone(),
        secret_key: SECRET_KEY.into(),
    }
}

/// moto checks signatures once its IAM is on; its first three requests go
/// unchecked, and make the user, its policy and its keys.
async fn moto(port: u16) -> Started {
    let mut child = spawn(
        ServerKind::Moto,
        Command::new(ServerKind::Moto.binary())
            .args(["-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3"),
        None,
    );
    wait_for_port("moto_server", port, &mut child).await;
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
    let mut answers = Vec::new();
    for action in [
        "Action=CreateUser&UserName=tester".to_string(),
        format!("Action=PutUserPolicy&UserName=tester&PolicyName=all&PolicyDocument={policy}"),
        "Action=CreateAccessKey&UserName=tester".to_string(),
    ] {
        let body = format!("{action}&Version=2010-05-08");
        let answer = http(
            port,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
                ),
            ],
            body.as_bytes(),
        )
        .await;
        let text = String::from_utf8_lossy(&answer.1).into_owned();
        assert_eq!(answer.0, 200, "moto IAM setup: {text}");
        answers.push(text);
    }
    let keys = &answers[2];
    let started = Started {
        child,
        port,
        access_key: xml_value(keys, "AccessKeyId").expect("moto gave an access key"),
        secret_key: xml_value(keys, "SecretAccessKey").expect("moto gave a secret"),
    };
    create_bucket(port, &started).await;
    started
}

async fn seaweedfs(first_port: u16, data: &Path) -> Started {
    let access_key = unique_access_key();
    let identities = data.join("s3-identities.json");
    std::fs::write(
        &identities,
        format!(
            r#"{{"identities":[{{"name":"tester","credentials":[{{"accessKey":"{access_key}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        ),
    )
    .unwrap();
    // Its ports are picked free, but another test starting a server at the
    // same moment may take one first: then it exits, and is started again
    // on other ports (its S3 port too).
    let mut failures = Vec::new();
    let mut port = first_port;
    for attempt in 0..3 {
        if attempt > 0 {
            port = free_port();
        }
        let store = data.join(format!("weed-{attempt}"));
        std::fs::create_dir_all(&store).unwrap();
        let log = data.join(format!("weed-{attempt}.log"));
        let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
        let child = spawn(
            ServerKind::Seaweedfs,
            Command::new(ServerKind::Seaweedfs.binary())
                .args(["server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
                .arg(format!("-dir={}", store.display()))
                .arg(format!("-master.port={}", ports[0]))
                .arg(format!("-master.port.grpc={}", ports[1]))
                .arg(format!("-volume.port={}", ports[2]))
                .arg(format!("-volume.port.grpc={}", ports[3]))
                .args(["-filer", "-s3", "-s3.iam=false"])
                .arg(format!("-filer.port={}", ports[4]))
                .arg(format!("-filer.port.grpc={}", ports[5]))
                .arg(format!("-s3.port={port}"))
                .arg(format!("-s3.port.grpc={}", ports[6]))
                .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
                .arg(format!("-s3.config={}", identities.display()))
                .args([
                    "-master.telemetry=false",
                    "-master.volumeSizeLimitMB=64",
                    "-volume.max=16",
                ]),
            Some(&log),
        );
        let mut started = Started {
            child,
            port,
            access_key: access_key.clone(),
            secret_key: SECRET_KEY.into(),
        };
        match try_start(port, &mut started).await {
            Ok(()) => return started,
            Err(e) => {
                let _ = started.child.kill();
                let _ = started.child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                failures.push(format!("{e}; its log ends: {tail:?}"));
            }
        }
    }
    panic!("weed server did not start: {failures:#?}");
}

/// Waits for the S3 port, then makes the test bucket; an error when the
/// process exits meanwhile.
async fn try_start(port: u16, started: &mut Started) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = started.child.try_wait() {
            return Err(format!("exited at start: {status}"));
        }
        if Instant::now() > deadline {
            return Err("no S3 port after 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = client(port, started);
    loop {
        match c.create_bucket().bucket(BUCKET).send().await {
            Ok(_) => break,
            // A restart keeps its data.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                break;
            }
            Err(e) => {
                if let Ok(Some(status)) = started.child.try_wait() {
                    return Err(format!("exited at start: {status}"));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "create the test bucket: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until_usable(port, started).await;
    Ok(())
}

async fn garage(port: u16, data: &Path, fresh: bool) -> Started {
    let config = data.join("garage.toml");
    let rpc = free_port();
    std::fs::write(
        &config,
        format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{port}"
root_domain = ".s3.garage.localhost"
"#,
            dir = data.display(),
            secret = "4f1c".repeat(16),
        ),
    )
    .unwrap();
    let mut child = spawn(
        ServerKind::Garage,
        Command::new(ServerKind::Garage.binary())
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn"),
        Some(&data.join("garage.log")),
    );
    wait_for_port("garage server", port, &mut child).await;
    // Garage makes its own key ids (GK + 24 hex digits); these are fixed
    // so a restart finds them.
    let access_key = "GK31c2f218a2e44f485b94239e".to_string();
    let secret_key = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835".to_string();
    if fresh {
        let node = garage_cli(&config, &["node", "id", "-q"]).await;
        let node = node
            .trim()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        garage_cli(
            &config,
            &["layout", "assign", "-z", "dc1", "-c", "1G", &node],
        )
        .await;
        garage_cli(&config, &["layout", "apply", "--version", "1"]).await;
        garage_cli(
            &config,
            &[
                "key",
                "import",
                "--yes",
                "-n",
                "tester",
                &access_key,
                &secret_key,
            ],
        )
        .await;
        garage_cli(&config, &["bucket", "create", BUCKET]).await;
        garage_cli(
            &config,
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "tester",
            ],
        )
        .await;
    }
    let started = Started {
        child,
        port,
        access_key,
        secret_key,
    };
    // The layout takes a moment to reach the S3 side.
    wait_until_usable(port, &started).await;
    started
}

/// Runs the garage CLI on `config`, retrying while the node is starting.
async fn garage_cli(config: &Path, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = tokio::process::Command::new(ServerKind::Garage.binary())
            .arg("-c")
            .arg(config)
            .args(args)
            .output()
            .await
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(Instant::now() < deadline, "garage {args:?}: {err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn client(port: u16, started: &Started) -> aws_sdk_s3::Client {
    super::client_for(
        &format!("http://127.0.0.1:{port}"),
        &started.access_key,
        &started.secret_key,
    )
}

/// Creates the test bucket, retrying while the server finishes starting
/// (SeaweedFS answers before its volume server has joined).
async fn create_bucket(port: u16, started: &Started) {
    let c = client(port, started);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match c.create_bucket().bucket(BUCKET).send().await {
            Ok(_) => break,
            Err(e) => {
                let e = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
                assert!(Instant::now() < deadline, "create the test bucket: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until_usable(port, started).await;
}

/// Waits until an object can be written and deleted.
async fn wait_until_usable(port: u16, started: &Started) {
    let c = client(port, started);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let put = c
            .put_object()
            .bucket(BUCKET)
            .key("harness-ready")
            .body(b"ready".to_vec().into())
            .send()
            .await;
        match put {
            Ok(_) => break,
            Err(e) => {
                let e = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
                assert!(Instant::now() < deadline, "the server takes no object: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.delete_object()
        .bucket(BUCKET)
        .key("harness-ready")
        .send()
        .await
        .unwrap();
}

/// One plain HTTP/1.1 exchange on a new connection: status and body.
pub async fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |at| at + 4);
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer[end..].to_vec())
}

fn xml_value(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..start + len].to_owned())
}
