//! Database snapshots and `restore --gallery`/`--database-only` against a
//! real MariaDB and a real S3 server: the SQL loads into an empty
//! database (ours and by hand with `mariadb`) with every table identical,
//! encrypted snapshots need the right key, broken objects and non-empty
//! targets are refused, and a snapshot taken while photos arrive is
//! consistent.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cli::run_with;
use common::*;
use sqlx::{Executor, MySqlPool};

/// An empty database of the test's own.
struct Empty {
    name: String,
    url: String,
}

impl Empty {
    async fn new() -> Self {
        let name = format!("s3u_snap_{}_{}", std::process::id(), rand_suffix());
        let admin = MySqlPool::connect(&server_url()).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str())
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    async fn pool(&self) -> MySqlPool {
        MySqlPool::connect(&self.url).await.unwrap()
    }

    async fn tables(&self) -> Vec<String> {
        let pool = self.pool().await;
        let names = sqlx::query_scalar(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        names
    }

    async fn drop(self) {
        let admin = MySqlPool::connect(&server_url()).await.unwrap();
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS `{}`", self.name).as_str())
            .await;
        admin.close().await;
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// `CHECKSUM TABLE` of every table, by name; our state table is left
/// out: `snapshot` records its own result there after the snapshot.
async fn checksums(pool: &MySqlPool) -> Vec<(String, Option<i64>)> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| !n.ends_with("s3upload_state")) {
        let row: (String, Option<i64>) =
            sqlx::query_as(&format!("CHECKSUM TABLE `{name}` EXTENDED"))
                .fetch_one(pool)
                .await
                .unwrap();
        out.push((name, row.1));
    }
    out
}

/// A gallery with uploaded photos, awkward text in its tables, and a
/// local/ directory.
async fn gallery() -> (Gallery, S3Server) {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    for i in 1..=3u32 {
        g.add_upload(i, &format!("p{i}.jpg"), &photo_bytes(i, 3000 + i as usize))
            .await;
    }
    drain(config(&g, &s3, "")).await;
    g.exec(&format!(
        "UPDATE {} SET name = 'L''été \\\\ \"quoted\"\\n; -- not a comment', comment = NULL, latitude = 45.123456 WHERE id = 1",
        g.table("images")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (id, name, comment, uppercats, status) VALUES (1, 'Vacances ☀', 'a\\r\\nb\\0c', '1', 'private')",
        g.table("categories")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} VALUES (1, 1, NULL), (2, 1, 2)",
        g.table("image_category")
    ))
    .await;
    let local = g.root().join("local/config");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(
        local.join("config.inc.php"),
        "<?php $conf['show_exif'] = false;\n",
    )
    .unwrap();
    std::fs::write(
        local.join("database.inc.php"),
        "<?php $conf['db_password'] = 'HostOnlyPassword';\n",
    )
    .unwrap();
    std::fs::create_dir_all(g.root().join("include")).unwrap();
    std::fs::write(
        g.root().join("include/constants.php"),
        "<?php\ndefine('PHPWG_VERSION', '16.4.0');\n",
    )
    .unwrap();
    (g, s3)
}

/// The config of `g` pointed at another database and root.
fn config_for(g: &Gallery, s3: &S3Server, url: &str, root: &Path, extra: &str) -> String {
    config_text(g, s3, SECRET_KEY, extra)
        .replace(&g.url, url)
        .replace(&g.root().display().to_string(), &root.display().to_string())
}

fn snapshot_keys(s3_keys: &[String]) -> Vec<String> {
    s3_keys
        .iter()
        .filter(|k| k.starts_with("photos/s3upload-snapshots/"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_snapshot_loads_into_an_empty_database_with_every_table_identical() {
    let (g, s3) = gallery().await;
    let text = config_text(&g, &s3, SECRET_KEY, "[snapshots]\n");
    let (out, said) = run_with(&text, &["snapshot"]);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("snapshot 20") && said.contains("-piwigo-16.4.0"),
        "{said}"
    );
    assert!(said.contains("not encrypted"), "{said}");
    assert!(
        !said.contains("HostOnlyPassword") && !said.contains(SECRET_KEY),
        "{said}"
    );

    let keys = snapshot_keys(&s3.keys().await);
    let db_key = keys
        .iter()
        .find(|k| k.ends_with("/database.sql.gz"))
        .unwrap();
    assert!(
        keys.iter()
            .any(|k| k.ends_with("/local/config/config.inc.php")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.contains("database.inc.php")),
        "{keys:?}"
    );

    let (out, listed) = run_with(&text, &["snapshot", "--list"]);
    assert!(out.status.success(), "{listed}");
    assert!(listed.contains("16.4.0"), "{listed}");
    let (_, status) = run_with(&text, &["status"]);
    assert!(status.contains("Last snapshot: 20"), "{status}");
    let (_, checked) = run_with(&text, &["check"]);
    assert!(
        checked.contains("snapshots") && checked.contains("unencrypted"),
        "{checked}"
    );
    // Snapshot objects are neither orphans nor photos to restore.
    let (_, verified) = run_with(&text, &["verify", "--orphans"]);
    assert!(!verified.contains("snapshots/"), "{verified}");
    let elsewhere = tempfile::tempdir().unwrap();
    let (out, said) = run_with(
        &text,
        &[
            "restore",
            "--from-bucket",
            "--all",
            "--to",
            elsewhere.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("restore: 3 selected"), "{said}");
    assert!(!elsewhere.path().join("galleries").exists(), "{said}");

    // Loaded by hand, as an admin without our tool would: zcat | mariadb.
    let by_hand = Empty::new().await;
    let mut sql = Vec::new();
    flate2::read::GzDecoder::new(&s3.get(db_key).await.unwrap()[..])
        .read_to_end(&mut sql)
        .unwrap();
    let url = url::Url::parse(&server_url()).unwrap();
    let mut mariadb = std::process::Command::new("mariadb")
        .arg(format!("--host={}", url.host_str().unwrap()))
        .arg(format!("--port={}", url.port().unwrap_or(3306)))
        .arg(format!("--user={}", url.username()))
        .arg(format!("--password={}", url.password().unwrap_or("")))
        .arg(&by_hand.name)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    mariadb.stdin.take().unwrap().write_all(&sql).unwrap();
    assert!(mariadb.wait().unwrap().success());
    let original = checksums(&g.pool).await;
    assert!(original.len() >= 10, "{original:?}");
    assert_eq!(checksums(&by_hand.pool().await).await, original);

    // And by `restore --database-only` into another empty one.
    let restored = Empty::new().await;
    let fresh = tempfile::tempdir().unwrap();
    let text2 = config_for(&g, &s3, &restored.url, fresh.path(), "[snapshots]\n");
    let (out, said) = run_with(&text2, &["restore", "--database-only"]);
    assert!(out.status.success(), "{said}");
    assert_eq!(checksums(&restored.pool().await).await, original);

    // A second load is refused: the database is not empty any more.
    let (out, said) = run_with(&text2, &["restore", "--database-only"]);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("already holds") && said.contains("--force"),
        "{said}"
    );
    let (out, said) = run_with(&text2, &["restore", "--database-only", "--force"]);
    assert!(out.status.success(), "{said}");
    assert_eq!(checksums(&restored.pool().await).await, original);
    by_hand.drop().await;
    restored.drop().await;
    g.drop_database().await;
}

fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let id = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("# test key\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    (path, id.to_public().to_string())
}

#[tokio::test]
async fn encrypted_snapshots_need_the_right_key_and_a_wrong_one_writes_nothing() {
    let (g, s3) = gallery().await;
    let keys_dir = tempfile::tempdir().unwrap();
    let (right, public) = keypair(keys_dir.path(), "right.txt");
    let (wrong, _) = keypair(keys_dir.path(), "wrong.txt");
    let section = format!("[snapshots]\nrecipient = \"{public}\"\n");
    let text = config_text(&g, &s3, SECRET_KEY, &section);
    let (out, said) = run_with(&text, &["snapshot"]);
    assert!(out.status.success(), "{said}");
    let keys = snapshot_keys(&s3.keys().await);
    let db_key = keys
        .iter()
        .find(|k| k.ends_with("/database.sql.gz.age"))
        .unwrap();
    let sealed = s3.get(db_key).await.unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1"));
    let local = keys
        .iter()
        .find(|k| k.ends_with("config.inc.php.age"))
        .unwrap();
    assert!(!String::from_utf8_lossy(&s3.get(local).await.unwrap()).contains("show_exif"));

    let target = Empty::new().await;
    let fresh = tempfile::tempdir().unwrap();
    let text2 = config_for(&g, &s3, &target.url, fresh.path(), &section);
    let (out, said) = run_with(&text2, &["restore", "--database-only"]);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("--identity"), "{said}");
    let (out, said) = run_with(
        &text2,
        &[
            "restore",
            "--database-only",
            "--identity",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot be decrypted") && said.contains("private key"),
        "{said}"
    );
    assert!(target.tables().await.is_empty(), "a wrong key wrote tables");

    let (out, said) = run_with(
        &text2,
        &[
            "restore",
            "--database-only",
            "--identity",
            right.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(
        checksums(&target.pool().await).await,
        checksums(&g.pool).await
    );
    target.drop().await;
    g.drop_database().await;
}

#[tokio::test]
async fn a_truncated_snapshot_is_refused_and_leaves_no_table_behind() {
    let (g, s3) = gallery().await;
    // Enough rows that the cut falls inside the data.
    for i in 0..3000 {
        g.add_row(
            &format!("./galleries/a/{i}.jpg"),
            &format!("{i}.jpg"),
            None,
            1,
        )
        .await;
    }
    let text = config_text(&g, &s3, SECRET_KEY, "[snapshots]\n");
    let (out, said) = run_with(&text, &["snapshot"]);
    assert!(out.status.success(), "{said}");
    let keys = snapshot_keys(&s3.keys().await);
    let db_key = keys
        .iter()
        .find(|k| k.ends_with("/database.sql.gz"))
        .unwrap()
        .clone();
    let manifest_key = keys.iter().find(|k| k.ends_with("/manifest.json")).unwrap();
    // A copy cut short, as a broken upload or a damaged disk would leave.
    let whole = s3.get(&db_key).await.unwrap();
    let name = "20200101T000000Z-piwigo-16.4.0";
    let cut_key = format!("photos/s3upload-snapshots/{name}/database.sql.gz");
    s3.put(&cut_key, &whole[..whole.len() * 2 / 3]).await;
    let manifest = String::from_utf8(s3.get(manifest_key).await.unwrap())
        .unwrap()
        .replace(
            &db_key.replace('\\', "\\\\"),
            &cut_key.replace('\\', "\\\\"),
        );
    let old_name = db_key.split('/').nth(2).unwrap();
    let manifest = manifest.replace(old_name, name);
    s3.put(
        &format!("photos/s3upload-snapshots/{name}/manifest.json"),
        manifest.as_bytes(),
    )
    .await;

    let target = Empty::new().await;
    let fresh = tempfile::tempdir().unwrap();
    let text2 = config_for(&g, &s3, &target.url, fresh.path(), "[snapshots]\n");
    let (out, said) = run_with(&text2, &["restore", "--database-only", "--snapshot", name]);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("damaged or truncated"), "{said}");
    assert!(said.contains("dropped again"), "{said}");
    assert!(
        target.tables().await.is_empty(),
        "{:?}",
        target.tables().await
    );
    // A name that does not exist is named.
    let (out, said) = run_with(
        &text2,
        &["restore", "--database-only", "--snapshot", "nope"],
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("no complete snapshot is named `nope`"),
        "{said}"
    );
    target.drop().await;
    g.drop_database().await;
}

#[tokio::test]
async fn a_snapshot_from_a_newer_piwigo_than_the_tree_is_refused() {
    let (g, s3) = gallery().await;
    let text = config_text(&g, &s3, SECRET_KEY, "[snapshots]\n");
    assert!(run_with(&text, &["snapshot"]).0.status.success());
    let target = Empty::new().await;
    let fresh = tempfile::tempdir().unwrap();
    let text2 = config_for(&g, &s3, &target.url, fresh.path(), "[snapshots]\n");
    let (out, said) = run_with(&text2, &["restore", "--gallery"]);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("holds no Piwigo tree") && said.contains("16.4.0"),
        "{said}"
    );
    std::fs::create_dir_all(fresh.path().join("include")).unwrap();
    std::fs::write(
        fresh.path().join("include/constants.php"),
        "<?php\ndefine('PHPWG_VERSION', '14.5.0');\n",
    )
    .unwrap();
    let (out, said) = run_with(&text2, &["restore", "--gallery"]);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("newer than the tree") && said.contains("unpack Piwigo 16.4.0"),
        "{said}"
    );
    assert!(target.tables().await.is_empty());
    target.drop().await;
    g.drop_database().await;
}

#[tokio::test]
async fn restore_gallery_brings_back_database_local_settings_and_files_and_the_daemon_resumes() {
    let (g, s3) = gallery().await;
    // Photo 4 is queued when the snapshot is taken, uploaded after it.
    let p4 = photo_bytes(4, 4000);
    g.add_upload(4, "p4.jpg", &p4).await;
    let text = config_text(&g, &s3, SECRET_KEY, "[snapshots]\n");
    let (out, said) = run_with(&text, &["enqueue", "--ids", "4"]);
    assert!(out.status.success(), "{said}");
    let (out, said) = run_with(&text, &["snapshot"]);
    assert!(out.status.success(), "{said}");
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, 1);
    let objects_before = s3.keys().await;

    // A new host: an empty database and a freshly unpacked tree.
    let target = Empty::new().await;
    let fresh = tempfile::tempdir().unwrap();
    let root = fresh.path().join("piwigo");
    std::fs::create_dir_all(root.join("include")).unwrap();
    std::fs::write(
        root.join("include/constants.php"),
        "<?php\ndefine('PHPWG_VERSION', '16.4.0');\n",
    )
    .unwrap();
    let text2 = config_for(&g, &s3, &target.url, &root, "[snapshots]\n");
    let (out, said) = run_with(&text2, &["restore", "--gallery", "--dry-run"]);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("plan:") && said.contains("nothing written"),
        "{said}"
    );
    assert!(target.tables().await.is_empty());
    let (out, said) = run_with(
        &text2,
        &["restore", "--gallery", "--url", "http://gallery.example/"],
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("open the gallery: http://gallery.example/"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("local/config/config.inc.php")).unwrap(),
        "<?php $conf['show_exif'] = false;\n"
    );
    assert!(!root.join("local/config/database.inc.php").exists());
    for i in 1..=3u32 {
        let rel = format!("upload/2024/05/17/20240517120000-{i:08x}.jpg");
        assert_eq!(
            std::fs::read(root.join(&rel)).unwrap(),
            photo_bytes(i, 3000 + i as usize),
            "{rel}"
        );
    }

    // The daemon on the restored database: photos 1-3 are recorded, photo
    // 4 (queued in the snapshot, uploaded since) is found in the bucket.
    std::fs::create_dir_all(root.join("upload/2024/05/17")).unwrap();
    std::fs::write(
        root.join("upload/2024/05/17/20240517120000-00000004.jpg"),
        &p4,
    )
    .unwrap();
    let restored =
        piwigo_s3upload::config::Config::from_toml(&text2, Path::new("t.toml"), None).unwrap();
    let s = drain(restored).await;
    assert_eq!((s.uploaded, s.already_present), (0, 1), "{s:?}");
    assert_eq!(s3.keys().await, objects_before);
    target.drop().await;
    g.drop_database().await;
}

/// Photos keep arriving (images row and album link together, as one
/// locked pair) while the snapshot reads: the snapshot holds both or
/// neither of every pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_while_photos_arrive_is_consistent() {
    let (g, s3) = gallery().await;
    let images = g.table("images");
    let links = g.table("image_category");
    g.exec(&format!(
        "INSERT INTO {images} (file, path, date_available) SELECT CONCAT('s', seq, '.jpg'), CONCAT('./galleries/s/', seq, '.jpg'), NOW() FROM seq_1_to_40000"
    ))
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let pool = g.pool.clone();
        let stop = stop.clone();
        let (images, links) = (images.clone(), links.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            let mut conn = pool.acquire().await.unwrap();
            while !stop.is_cancelled() {
                conn.execute(format!("LOCK TABLES {images} WRITE, {links} WRITE").as_str())
                    .await
                    .unwrap();
                let id = sqlx::query(&format!(
                    "INSERT INTO {images} (file, path, date_available) VALUES ('w.jpg', './galleries/w/w.jpg', NOW())"
                ))
                .execute(&mut *conn)
                .await
                .unwrap()
                .last_insert_id();
                conn.execute(format!("INSERT INTO {links} VALUES ({id}, 7, NULL)").as_str())
                    .await
                    .unwrap();
                conn.execute("UNLOCK TABLES").await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let config = config(&g, &s3, "[snapshots]\n");
    let snap = config.snapshots.clone().unwrap();
    let t = piwigo_s3upload::db::Tables::new(&g.prefix);
    let taken = piwigo_s3upload::snapshot::take(&config, &snap, &g.pool, &t)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let written = writer.await.unwrap();
    assert!(written > 10, "the writer barely ran: {written}");

    let target = Empty::new().await;
    let fresh = tempfile::tempdir().unwrap();
    let text2 = config_for(&g, &s3, &target.url, fresh.path(), "[snapshots]\n");
    let (out, said) = run_with(
        &text2,
        &[
            "restore",
            "--database-only",
            "--snapshot",
            &taken.manifest.name,
        ],
    );
    assert!(out.status.success(), "{said}");
    let pool = target.pool().await;
    let (pairs_images,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM {images} WHERE file = 'w.jpg'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let (pairs_links,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM {links} WHERE category_id = 7"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let (dangling,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM {links} l LEFT JOIN {images} i ON i.id = l.image_id WHERE i.id IS NULL"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(pairs_images > 0, "the snapshot began before any pair");
    assert_eq!((pairs_images, dangling), (pairs_links, 0));
    let rows: u64 = taken.manifest.rows;
    assert!(rows > 40_000, "{rows}");
    pool.close().await;
    target.drop().await;
    g.drop_database().await;
}

/// `status` warns of a snapshot overdue (none succeeded for twice the
/// interval), as `check` does, and of a failed one.
#[tokio::test]
async fn status_warns_of_an_overdue_or_failed_snapshot() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "[snapshots]\ninterval = \"1h\"\n");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let state = |ok: i64, at: i64| {
        format!(
            "INSERT INTO {} (name, value) VALUES ('snapshot_at', '{at}'), ('snapshot_ok', '{ok}'), \
             ('snapshot_name', 'x'), ('snapshot_bytes', '10'), ('snapshot_last_ok_at', '{at}'), \
             ('snapshot_error', 'S3 said no') ON DUPLICATE KEY UPDATE value = VALUES(value)",
            g.table("s3upload_state")
        )
    };
    let now = chrono::Utc::now().timestamp();
    g.exec(&state(1, now - 60)).await;
    let (_, msg) = run_with(&text, &["status"]);
    assert!(msg.contains("Last snapshot: x"), "{msg}");
    assert!(!msg.contains("WARNING"), "{msg}");
    g.exec(&state(1, now - 3 * 3600)).await;
    let (_, msg) = run_with(&text, &["status"]);
    assert!(
        msg.contains("WARNING: no snapshot succeeded for 3h"),
        "{msg}"
    );
    g.exec(&state(0, now)).await;
    let (_, msg) = run_with(&text, &["status"]);
    assert!(msg.contains("WARNING: the last snapshot failed"), "{msg}");
    g.drop_database().await;
}

/// A database user that lacks one privilege loading needs (DROP) is told
/// which, with the GRANT, before anything is read or written: exit 2, no
/// table created.
#[tokio::test]
async fn a_missing_grant_is_named_before_anything_is_loaded() {
    let (g, s3) = gallery().await;
    let text = config_text(&g, &s3, SECRET_KEY, "[snapshots]\n");
    let (out, said) = run_with(&text, &["snapshot"]);
    assert!(out.status.success(), "{said}");
    let target = Empty::new().await;
    let user = format!("r{}", rand_suffix());
    let admin = MySqlPool::connect(&server_url()).await.unwrap();
    for host in ["localhost", "127.0.0.1"] {
        admin
            .execute(
                format!(
                    "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'Restore-pw-1'; \
                     GRANT SELECT, INSERT, CREATE, ALTER, INDEX ON `{}`.* TO '{user}'@'{host}'",
                    target.name
                )
                .as_str(),
            )
            .await
            .unwrap();
    }
    let url = format!("mysql://{user}:Restore-pw-1@{}/{}", db_host(), target.name);
    let fresh = tempfile::tempdir().unwrap();
    let restore = config_for(&g, &s3, &url, fresh.path(), "[snapshots]\n");
    let (out, said) = run_with(&restore, &["restore", "--database-only"]);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("lacks DROP"), "{said}");
    assert!(said.contains("GRANT DROP ON `"), "{said}");
    assert!(said.contains("nothing was loaded"), "{said}");
    assert!(target.tables().await.is_empty());
    for host in ["localhost", "127.0.0.1"] {
        let _ = admin
            .execute(format!("DROP USER '{user}'@'{host}'").as_str())
            .await;
    }
    admin.close().await;
    target.drop().await;
    g.drop_database().await;
}
