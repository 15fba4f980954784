//! The fault suite: the real binary killed at random moments, several
//! daemons on one queue, S3 and the database going away, S3 answering
//! errors, resets and stalls. After each: every photo is in the bucket
//! once, under its key, byte-identical, the queue is empty and no object
//! was written twice.
//!
//! Slow, so `#[ignore]`d in the default run: `scripts/faults.sh` runs it at
//! full scale, and `scripts/test.sh` at a short scale (`FAULT_SCALE=short`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::faults::{HttpFaultProxy, TcpCutProxy};
use common::*;

/// Short runs for CI, full runs for `scripts/faults.sh`.
fn full() -> bool {
    std::env::var("FAULT_SCALE").as_deref() == Ok("full")
}

fn scale(short: usize, full_size: usize) -> usize {
    if full() { full_size } else { short }
}

/// Deterministic pseudo-random numbers for kill timings, seeded per run
/// and printed, so a failing run can be replayed with FAULT_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("FAULT_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// A photo and where it must land.
struct Photo {
    key: String,
    md5: String,
}

struct Harness {
    g: Gallery,
    s3: S3Server,
    proxy: HttpFaultProxy,
    dir: tempfile::TempDir,
    photos: HashMap<u32, Photo>,
    /// Formats by their photo's id.
    formats: HashMap<u32, Photo>,
    /// Objects a new version superseded, by photo id: kept as they were.
    superseded: HashMap<u32, Photo>,
    next: u32,
}

impl Harness {
    async fn new() -> Self {
        let g = Gallery::new().await;
        let s3 = S3Server::start().await;
        let proxy = HttpFaultProxy::start(s3.port()).await;
        Self {
            g,
            s3,
            proxy,
            dir: tempfile::tempdir().unwrap(),
            photos: HashMap::new(),
            formats: HashMap::new(),
            superseded: HashMap::new(),
            next: 0,
        }
    }

    /// Writes a config pointing at `endpoint` and `database_url`.
    fn config(&self, name: &str, database_url: &str, extra: &str) -> PathBuf {
        let text = config_text(&self.g, &self.s3, SECRET_KEY, extra)
            .replace(&self.s3.endpoint, &self.proxy.endpoint())
            .replace(&self.g.url, database_url)
            .replace("claim_lease = \"10s\"", "claim_lease = \"2s\"")
            .replace("retry_backoff_max = \"5s\"", "retry_backoff_max = \"2s\"");
        let text = format!("{text}\n[monitor]\npoll_interval = \"200ms\"\n");
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Adds photos: mostly small, every 50th above the multipart threshold
    /// so kills also land between parts.
    async fn add(&mut self, n: usize) {
        for _ in 0..n {
            self.next += 1;
            let i = self.next;
            let len = if i % 50 == 7 {
                7 * 1024 * 1024 + 123
            } else {
                2_000 + (i as usize * 7919) % 60_000
            };
            let bytes = photo_bytes(i, len);
            let name = format!("p{i:05}.jpg");
            let id = self.g.add_upload(i, &name, &bytes).await;
            self.photos.insert(
                id,
                Photo {
                    key: upload_key(&name),
                    md5: md5_hex(&bytes),
                },
            );
        }
    }

    /// Gives every photo added so far a RAW: every fifth above the
    /// multipart threshold, so kills land between a format's parts too.
    async fn add_formats(&mut self) {
        self.g.create_formats_table().await;
        let ids: Vec<u32> = self.photos.keys().copied().collect();
        for id in ids {
            let n = self.next + id;
            let len = if id % 5 == 0 {
                6 * 1024 * 1024 + 77
            } else {
                30_000 + (id as usize * 131) % 20_000
            };
            let bytes = photo_bytes(n, len);
            // `add` named photo i `p{i:05}.jpg` and its file after i.
            let key = self.photos[&id].key.replace(".jpg", ".cr2");
            let i: u32 = key[upload_key("p").len()..][..5].parse().unwrap();
            self.g.add_format(id, i, "cr2", &bytes).await;
            self.formats.insert(
                id,
                Photo {
                    key,
                    md5: md5_hex(&bytes),
                },
            );
        }
    }

    /// Replaces every photo's file with new bytes (every fifth above the
    /// multipart threshold) and updates Piwigo's row, as
    /// `pwg.images.addFile` does: each photo's record must move to a new
    /// version and its first object stay as it was.
    async fn change_all(&mut self) {
        let ids: Vec<u32> = self.photos.keys().copied().collect();
        for id in ids {
            let old = self.photos.remove(&id).unwrap();
            let i: u32 = old.key[upload_key("p").len()..][..5].parse().unwrap();
            let len = if i % 5 == 3 {
                6 * 1024 * 1024 + 99
            } else {
                3_000 + (i as usize * 104_729) % 50_000
            };
            let bytes = photo_bytes(i + 1_000_000, len);
            let path = self
                .g
                .root()
                .join(format!("upload/2024/05/17/20240517120000-{i:08x}.jpg"));
            std::fs::write(path, &bytes).unwrap();
            self.g
                .exec(&format!(
                    "UPDATE {} SET filesize = {} WHERE id = {id}",
                    self.g.table("images"),
                    len / 1024
                ))
                .await;
            let md5 = md5_hex(&bytes);
            let rest = old.key.strip_prefix("photos/").unwrap();
            let key = format!("photos/s3upload-versions/{id}/v2-{md5}/{rest}");
            self.photos.insert(id, Photo { key, md5 });
            self.superseded.insert(id, old);
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn spawn(&self, config: &Path, args: &[&str], log: &Path) -> Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env("PIWIGO_S3UPLOAD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap()
    }

    fn run_to_end(&self, config: &Path, args: &[&str], log: &Path) {
        let status = self.spawn(config, args, log).wait().unwrap();
        assert!(status.success(), "{args:?} failed; see {}", log.display());
    }

    async fn queue_len(&self) -> i64 {
        self.g
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM {}",
                self.g.table("s3upload_queue")
            ))
            .await
    }

    /// Runs `--until-idle` until the queue is empty, waiting out the
    /// leases of killed daemons in between.
    async fn finish(&self, config: &Path) {
        let log = self.log("finish");
        for _ in 0..40 {
            self.run_to_end(config, &["run", "--until-idle"], &log);
            if self.queue_len().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let left = self.g.queue_statuses().await;
        panic!("queue not empty after 40 runs: {left:?}");
    }

    /// Everything in its place, once, byte-identical.
    async fn verify(&self) {
        assert_eq!(self.queue_len().await, 0, "queue empty");
        let uploaded = self.g.uploaded().await;
        assert_eq!(
            uploaded.len(),
            self.photos.len(),
            "every photo recorded once"
        );
        for (id, outcome, key, md5) in &uploaded {
            let p = &self.photos[id];
            assert_eq!(key, &p.key, "photo {id} under its key");
            assert_eq!(md5, &p.md5, "photo {id}: recorded md5 ({outcome})");
            let body = self
                .s3
                .get(key)
                .await
                .unwrap_or_else(|| panic!("photo {id}: {key} missing"));
            assert_eq!(md5_hex(&body), p.md5, "photo {id}: bytes in the bucket");
        }
        let formats: Vec<(u32, String, String)> = sqlx::query_as(&format!(
            "SELECT image_id, s3_key, md5 FROM {}",
            self.g.table("s3upload_formats")
        ))
        .fetch_all(&self.g.pool)
        .await
        .unwrap_or_default();
        assert_eq!(
            formats.len(),
            self.formats.len(),
            "every format recorded once"
        );
        for (id, key, md5) in &formats {
            let f = &self.formats[id];
            assert_eq!((key, md5), (&f.key, &f.md5), "format of photo {id}");
            let body = self
                .s3
                .get(key)
                .await
                .unwrap_or_else(|| panic!("format of photo {id}: {key} missing"));
            assert_eq!(
                md5_hex(&body),
                f.md5,
                "format of photo {id}: bytes in the bucket"
            );
        }
        for (id, old) in &self.superseded {
            let body = self
                .s3
                .get(&old.key)
                .await
                .unwrap_or_else(|| panic!("photo {id}: superseded {} missing", old.key));
            assert_eq!(md5_hex(&body), old.md5, "photo {id}: first version kept");
        }
        let history: Vec<(u32, String, String)> = sqlx::query_as(&format!(
            "SELECT image_id, s3_key, md5 FROM {}",
            self.g.table("s3upload_versions")
        ))
        .fetch_all(&self.g.pool)
        .await
        .unwrap_or_default();
        assert_eq!(
            history.len(),
            self.superseded.len(),
            "one history row per superseded object"
        );
        for (id, key, md5) in &history {
            let old = &self.superseded[id];
            assert_eq!((key, md5), (&old.key, &old.md5), "history of photo {id}");
        }
        let keys = self.s3.keys().await;
        assert_eq!(
            keys.len(),
            self.photos.len() + self.formats.len() + self.superseded.len(),
            "no stray objects"
        );
        // Writes the daemon was told succeeded: a stalled answer the SDK
        // retried may reach the server twice with the same bytes, but never
        // counts as two acknowledged writes.
        // The start-up probe writes its one throwaway key twice on each
        // start, by design (the second write asks whether the server
        // refuses it).
        let writes = self.proxy.acknowledged_writes();
        let probe = format!("/{}/", piwigo_s3upload::s3::keys::PROBE_DIR);
        let twice: Vec<_> = writes
            .iter()
            .filter(|(k, n)| **n > 1 && !k.contains(&probe))
            .collect();
        assert!(
            twice.is_empty(),
            "objects written more than once: {twice:?}"
        );
    }

    async fn done(self) {
        self.g.drop_database().await;
    }
}

/// Fails the test, with the daemon's exit and the end of its log, unless
/// it is still running.
fn assert_running(daemon: &mut Child, log: &Path, when: &str) {
    if let Some(status) = daemon.try_wait().unwrap() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        panic!("the daemon exited ({status}) {when}; the end of its log:\n{tail}");
    }
}

/// Waits until the daemon has logged its start (the log held `before`
/// starts), so that what the test does next meets a running daemon, not
/// one still starting: a busy machine can take longer than any pause.
async fn wait_started(daemon: &mut Child, log: &Path, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_in(log, "piwigo-s3upload started") == before {
        assert_running(daemon, log, "while starting");
        assert!(
            Instant::now() < deadline,
            "the daemon did not start; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count_in(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// SIGKILL at random moments (polling, claiming, hashing, mid-stream,
/// between the PUT and the database update), restart, repeat; photos keep
/// arriving meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn killed_at_random_moments_loses_and_duplicates_nothing() {
    let mut h = Harness::new().await;
    let url = h.g.url.clone();
    let config = h.config("crash.toml", &url, "");
    let log = h.log("crash");
    h.run_to_end(&config, &["run", "--until-idle"], &log);
    h.add(scale(150, 500)).await;
    h.run_to_end(&config, &["enqueue", "--all"], &log);
    let mut rng = Rng::new();
    let kills = scale(8, 25);
    for _ in 0..kills {
        let mut child = h.spawn(&config, &["run"], &log);
        h.add(2).await;
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1400))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    eprintln!("kills survived: {kills}, photos: {}", h.photos.len());
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}

/// SIGKILL while formats upload (every photo has a RAW, some sent in
/// parts): every format ends in the bucket once, byte-identical, recorded
/// once, as photos do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn killed_while_formats_upload_loses_and_duplicates_nothing() {
    let mut h = Harness::new().await;
    let url = h.g.url.clone();
    let config = h.config("formats.toml", &url, "");
    let log = h.log("formats");
    h.run_to_end(&config, &["run", "--until-idle"], &log);
    h.add(scale(40, 150)).await;
    h.add_formats().await;
    h.run_to_end(&config, &["enqueue", "--all"], &log);
    let mut rng = Rng::new();
    let kills = scale(8, 25);
    for _ in 0..kills {
        let mut child = h.spawn(&config, &["run"], &log);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1500))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let sent =
        h.g.scalar_i64(&format!(
            "SELECT COUNT(*) FROM {}",
            h.g.table("s3upload_formats")
        ))
        .await;
    eprintln!(
        "kills survived: {kills}, formats: {}, recorded before the last run: {sent}",
        h.formats.len()
    );
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}

/// SIGKILL while new versions of changed photos are found, sent and
/// recorded (some in parts): each photo ends with its record on its new
/// version, the first object untouched, one history row, nothing written
/// twice and no stray object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn killed_while_new_versions_upload_loses_and_overwrites_nothing() {
    let (h, config, log) = changed_after_upload("versions", scale(60, 200)).await;
    let mut rng = Rng::new();
    let kills = scale(8, 25);
    for _ in 0..kills {
        let mut child = h.spawn(&config, &["run"], &log);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1500))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let moved =
        h.g.scalar_i64(&format!(
            "SELECT COUNT(*) FROM {} WHERE version = 2",
            h.g.table("s3upload_uploaded")
        ))
        .await;
    eprintln!(
        "kills survived: {kills}, photos changed: {}, moved before the last run: {moved}",
        h.superseded.len()
    );
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}

/// `n` photos uploaded, then every file changed, and the change due at the
/// next poll: the harness, its config and its log, named `name`.
async fn changed_after_upload(name: &str, n: usize) -> (Harness, PathBuf, PathBuf) {
    let mut h = Harness::new().await;
    let url = h.g.url.clone();
    let config = h.config(&format!("{name}.toml"), &url, "");
    let log = h.log(name);
    h.run_to_end(&config, &["run", "--until-idle"], &log);
    h.add(n).await;
    h.run_to_end(&config, &["enqueue", "--all"], &log);
    h.finish(&config).await;
    h.change_all().await;
    // The poll reads settled seconds of `lastmodified` only.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    (h, config, log)
}

/// The window a random kill may miss, made certain: the record of a new
/// version is held (the test locks the photo's record), the version's PUT
/// is acknowledged, and the daemon is killed there. The old object and
/// the record stay as they were; the next run finds its own object at the
/// version's key (the md5 is in it) and records it without a second write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn killed_between_a_new_versions_upload_and_its_record() {
    let (h, config, log) = changed_after_upload("window", 3).await;
    // Every record locked: moving one to its new version waits.
    let mut lock = h.g.pool.begin().await.unwrap();
    sqlx::query(&format!(
        "SELECT * FROM {} FOR UPDATE",
        h.g.table("s3upload_uploaded")
    ))
    .fetch_all(&mut *lock)
    .await
    .unwrap();
    let mut child = h.spawn(&config, &["run"], &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let acked = loop {
        let versions: Vec<String> = h
            .proxy
            .acknowledged_writes()
            .into_keys()
            .filter(|k| k.contains("/s3upload-versions/"))
            .collect();
        if !versions.is_empty() {
            break versions;
        }
        assert!(Instant::now() < deadline, "no new version was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Its record is waiting for the lock: kill it there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    lock.rollback().await.unwrap();
    let moved =
        h.g.scalar_i64(&format!(
            "SELECT COUNT(*) FROM {} WHERE version = 2",
            h.g.table("s3upload_uploaded")
        ))
        .await;
    assert_eq!(moved, 0, "killed before any record moved: {acked:?}");
    for old in h.superseded.values() {
        assert_eq!(
            md5_hex(&h.s3.get(&old.key).await.unwrap()),
            old.md5,
            "the first object is untouched"
        );
    }
    // The next run records what was sent, and sends the rest; verify()
    // checks every record and object, and that nothing was written twice.
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}

/// Three daemons on one queue; two of them killed and restarted at random.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn three_daemons_two_killed_at_random() {
    let mut h = Harness::new().await;
    let url = h.g.url.clone();
    let config = h.config("three.toml", &url, "");
    let logs = [h.log("d0"), h.log("d1"), h.log("d2")];
    h.run_to_end(&config, &["run", "--until-idle"], &logs[0]);
    h.add(scale(120, 500)).await;
    h.run_to_end(&config, &["enqueue", "--all"], &logs[0]);
    let mut daemons: Vec<Child> = logs.iter().map(|l| h.spawn(&config, &["run"], l)).collect();
    let mut rng = Rng::new();
    let rounds = scale(6, 20);
    let started = Instant::now();
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
        let victim = rng.below(2) as usize;
        daemons[victim].kill().unwrap();
        daemons[victim].wait().unwrap();
        h.add(1).await;
        daemons[victim] = h.spawn(&config, &["run"], &logs[victim]);
    }
    // The survivor and the restarted ones drain the rest.
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.queue_len().await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for d in &mut daemons {
        d.kill().unwrap();
        d.wait().unwrap();
    }
    eprintln!(
        "daemon kills: {rounds}, photos: {}, drained in {:?}",
        h.photos.len(),
        started.elapsed()
    );
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}

/// S3 answering 500 and 503 SlowDown, resetting connections and stalling
/// transfers on a share of requests, then gone entirely for a while: the
/// daemon retries, logs the outage once, and finishes with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn s3_errors_resets_stalls_and_an_outage() {
    let mut h = Harness::new().await;
    let url = h.g.url.clone();
    let config = h.config("flaky.toml", &url, "");
    let log = h.log("flaky");
    h.run_to_end(&config, &["run", "--until-idle"], &log);
    h.add(scale(80, 300)).await;
    h.run_to_end(&config, &["enqueue", "--all"], &log);

    // Phase 1: a flaky server.
    h.proxy.set_fault_rate(0.08, 0.03, 0.05, 0.10);
    let mut daemon = h.spawn(&config, &["run"], &log);
    let deadline = Instant::now() + Duration::from_secs(180);
    while h.queue_len().await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    h.proxy.clear();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let injected = h.proxy.fault_counts();
    eprintln!("faults injected: {injected:?}");
    assert!(injected.values().sum::<usize>() > 0);

    // Phase 2: the server goes away while photos are queued, and comes back.
    let outage_log = h.log("outage");
    h.add(scale(30, 100)).await;
    h.proxy.stop().await;
    let mut daemon = h.spawn(&config, &["run"], &outage_log);
    let down_for = Duration::from_secs(if full() { 60 } else { 6 });
    tokio::time::sleep(down_for).await;
    h.proxy.start().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.queue_len().await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let unreachable = count_in(&outage_log, "S3 unreachable");
    assert_eq!(
        unreachable,
        1,
        "the outage is logged once; see {}",
        outage_log.display()
    );
    assert!(count_in(&outage_log, "S3 reachable again") >= 1);
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}

/// The database connection is cut (as a restart would) mid-run: the daemon
/// does not exit or spin, reconnects, and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: scripts/faults.sh"]
async fn database_outage_mid_run() {
    let mut h = Harness::new().await;
    let db_port: u16 =
        h.g.url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(3306);
    let cut = TcpCutProxy::start(db_port).await;
    let proxied =
        h.g.url
            .replace(&format!(":{db_port}/"), &format!(":{}/", cut.port()));
    let config = h.config("db.toml", &proxied, "");
    let log = h.log("db");
    h.run_to_end(&config, &["run", "--until-idle"], &log);
    h.add(scale(80, 300)).await;
    h.run_to_end(&config, &["enqueue", "--all"], &log);
    // The log holds the first runs' starts too.
    let before = count_in(&log, "piwigo-s3upload started");
    let mut daemon = h.spawn(&config, &["run"], &log);
    wait_started(&mut daemon, &log, before).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let outage = Duration::from_secs(if full() { 30 } else { 5 });
    cut.cut_for(outage).await;
    tokio::time::sleep(outage).await;
    assert_running(&mut daemon, &log, "during the database outage");
    h.add(5).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (h.queue_len().await > 0 || h.g.uploaded().await.len() < h.photos.len())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_running(&mut daemon, &log, "after the database outage");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    // The outage is logged as the database's, once, with its end; it is
    // never taken for an S3 outage.
    // The task's span names it: task{name="monitor"}.
    assert!(
        count_in(&log, "poll failed; retrying with backoff") >= 1,
        "outage logged"
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("name=\"monitor\"") && l.contains("working again")),
        "end of the outage logged, by the monitor"
    );
    assert_eq!(count_in(&log, "S3 unreachable"), 0);
    h.finish(&config).await;
    h.verify().await;
    h.done().await;
}
