//! `restore` against a real MariaDB and a real S3 server: every file back
//! byte-identical, nothing overwritten, nothing corrupt written, nothing
//! partial under a real name after a SIGKILL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::restore::{self, Mode, Options};

/// Photos uploaded (one multipart, one an md5 duplicate of another); their
/// files by path.
async fn backed_up() -> (Gallery, S3Server, Vec<(PathBuf, Vec<u8>)>) {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let mut files = Vec::new();
    for i in 1..=5u32 {
        let len = if i == 1 {
            7 * 1024 * 1024
        } else {
            2000 + i as usize
        };
        let seed = if i == 5 { 2 } else { i };
        let bytes = photo_bytes(seed, if i == 5 { 2002 } else { len });
        g.add_upload(i, &format!("p{i}.jpg"), &bytes).await;
        let path = g
            .root()
            .join(format!("upload/2024/05/17/20240517120000-{i:08x}.jpg"));
        files.push((path, bytes));
    }
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!((s.uploaded, s.duplicates), (4, 1));
    (g, s3, files)
}

/// The daemon's tables dropped, the gallery's files gone.
async fn lose_files_and_tables(g: &Gallery) {
    g.drop_daemon_tables().await;
    std::fs::remove_dir_all(g.root().join("upload")).unwrap();
    std::fs::remove_dir_all(g.root().join("galleries")).unwrap();
}

/// A file under the gallery root.
fn read(g: &Gallery, rel: &str) -> Vec<u8> {
    std::fs::read(g.root().join(rel)).unwrap()
}

fn all(mode: Mode) -> Options {
    Options {
        mode,
        jobs: 4,
        ..Options::default()
    }
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(leftovers(&p));
            } else if p.to_string_lossy().ends_with(".s3restore") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn every_file_comes_back_byte_identical_and_others_are_kept() {
    let (g, s3, files) = backed_up().await;
    let c = config(&g, &s3, "");
    let t = Tables::new(&g.prefix);
    std::fs::remove_dir_all(g.root().join("upload")).unwrap();
    // A different file planted where photo 2 belongs.
    std::fs::create_dir_all(files[1].0.parent().unwrap()).unwrap();
    std::fs::write(&files[1].0, b"someone else's bytes").unwrap();

    let dry = restore::from_records(
        &c,
        &g.pool,
        &t,
        &all(Mode {
            dry_run: true,
            ..Mode::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!((dry.would_restore, dry.kept_different.len()), (4, 1));
    assert!(!files[0].0.exists());

    let s = restore::from_records(&c, &g.pool, &t, &all(Mode::default()))
        .await
        .unwrap();
    assert_eq!(s.restored, 4, "{}", s.to_text());
    assert_eq!(s.kept_different.len(), 1);
    assert!(!s.ok());
    for (path, bytes) in [&files[0], &files[2], &files[3], &files[4]] {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }
    assert_eq!(std::fs::read(&files[1].0).unwrap(), b"someone else's bytes");
    assert!(leftovers(&g.root()).is_empty());

    // Again: everything is in place; --overwrite replaces the planted file.
    let s = restore::from_records(&c, &g.pool, &t, &all(Mode::default()))
        .await
        .unwrap();
    assert_eq!((s.restored, s.already_in_place), (0, 4));
    let s = restore::from_records(
        &c,
        &g.pool,
        &t,
        &all(Mode {
            overwrite: true,
            ..Mode::default()
        }),
    )
    .await
    .unwrap();
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!(std::fs::read(&files[1].0).unwrap(), files[1].1);
    g.drop_database().await;
}

#[tokio::test]
async fn a_corrupted_object_is_refused_and_missing_restores_only_the_missing() {
    let (g, s3, files) = backed_up().await;
    let c = config(&g, &s3, "");
    let t = Tables::new(&g.prefix);
    let up = g.uploaded().await;
    // Photo 3's object: same size, other bytes.
    s3.put(&up[2].2, &photo_bytes(77, 2003)).await;
    std::fs::remove_file(&files[2].0).unwrap();
    std::fs::remove_file(&files[3].0).unwrap();
    let opts = all(Mode {
        missing_only: true,
        ..Mode::default()
    });
    let s = restore::from_records(&c, &g.pool, &t, &opts).await.unwrap();
    assert_eq!((s.restored, s.on_disk), (1, 3), "{}", s.to_text());
    assert_eq!(s.refused.len(), 1);
    assert!(s.refused[0].reason.contains("md5"), "{}", s.to_text());
    assert!(!files[2].0.exists());
    assert_eq!(std::fs::read(&files[3].0).unwrap(), files[3].1);
    assert!(leftovers(&g.root()).is_empty());
    g.drop_database().await;
}

/// A real SIGKILL in the middle of a download, then a second run.
#[tokio::test]
async fn killed_mid_restore_leaves_no_partial_file_under_a_real_name() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let big = photo_bytes(9, 48 * 1024 * 1024);
    g.add_upload(1, "big.jpg", &big).await;
    assert_eq!(drain(config(&g, &s3, "")).await.uploaded, 1);
    let dest = g
        .root()
        .join("upload/2024/05/17/20240517120000-00000001.jpg");
    std::fs::remove_dir_all(g.root().join("upload")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config_text(&g, &s3, SECRET_KEY, "")).unwrap();
    let restore = || {
        Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
            .arg("--config")
            .arg(&cfg)
            .args(["restore", "--all"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = restore();
    let temp = restore::fetch::temp_name(&dest);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !temp.exists() {
        assert!(Instant::now() < deadline, "the download never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Freeze the server so the download is surely half-way, then kill.
    s3.signal("STOP");
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    s3.signal("CONT");
    assert!(!dest.exists(), "a partial file took the real name");
    assert!(std::fs::metadata(&temp).unwrap().len() < big.len() as u64);

    let status = restore().wait().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&dest).unwrap(), big);
    assert!(!temp.exists());
    g.drop_database().await;
}

/// The database's tables dropped too: objects go back by their key where
/// the layout keeps Piwigo's path, and the others are reported.
#[tokio::test]
async fn from_the_bucket_alone_with_the_tables_dropped() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(
        "key_format = \"file\"",
        "key_format = \"path_and_file_unique\"",
    );
    let c = piwigo_s3upload::config::Config::from_toml(&text, Path::new("t.toml"), None).unwrap();
    drain(c.clone()).await;
    let up = photo_bytes(1, 5000);
    g.add_upload(1, "Beach.JPEG", &up).await;
    let synced = photo_bytes(2, 4000);
    g.add_photo("./galleries/trips/rome/a.jpg", "a.jpg", &synced, None)
        .await;
    assert_eq!(drain(c.clone()).await.uploaded, 2);
    // An object from another tool, whose key says nothing of a path.
    s3.put("photos/upload/2013/03/31/beach.jpg", b"x").await;
    lose_files_and_tables(&g).await;

    let opts = all(Mode::default());
    let s = restore::from_bucket::run(&c, &opts, None).await.unwrap();
    assert_eq!(s.restored, 2, "{}", s.to_text());
    assert_eq!(s.unplaceable, vec!["photos/upload/2013/03/31/beach.jpg"]);
    assert!(!s.ok());
    assert_eq!(
        read(&g, "upload/2024/05/17/20240517120000-00000001.jpg"),
        up
    );
    assert_eq!(read(&g, "galleries/trips/rome/a.jpg"), synced);
    g.drop_database().await;
}

/// Objects carry their Piwigo path and md5: with the tables dropped, every
/// file of the default layout comes back, checked.
#[tokio::test]
async fn from_the_bucket_by_object_metadata() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let c = config(&g, &s3, "");
    drain(c.clone()).await;
    let a = photo_bytes(1, 7 * 1024 * 1024);
    let ida = g.add_upload(1, "a.jpg", &a).await;
    let b = photo_bytes(2, 3000);
    g.add_photo(
        "./galleries/Été 2019/plage & mer.jpg",
        "plage &amp; mer.jpg",
        &b,
        None,
    )
    .await;
    assert_eq!(drain(c.clone()).await.uploaded, 2);
    let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
    let meta = target
        .head_meta(BUCKET, &upload_key("a.jpg"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.image_id, Some(ida));
    assert_eq!(meta.md5.as_deref(), Some(md5_hex(&a).as_str()));
    assert_eq!(meta.format.as_deref(), Some("original"));
    lose_files_and_tables(&g).await;

    let s = restore::from_bucket::run(&c, &all(Mode::default()), None)
        .await
        .unwrap();
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!(s.restored, 2);
    assert_eq!(read(&g, "upload/2024/05/17/20240517120000-00000001.jpg"), a);
    assert_eq!(read(&g, "galleries/Été 2019/plage & mer.jpg"), b);
    g.drop_database().await;
}

#[test]
fn restore_says_what_is_missing_from_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[piwigo]\ndatabase_url = \"mysql://u:p@127.0.0.1:1/db\"\nroot = \"/tmp\"\n[s3]\nbucket = \"b\"\n",
    )
    .unwrap();
    for (args, expected) in [
        (
            &["restore"][..],
            "say what to restore: --ids, --album, --all or --missing",
        ),
        (
            &["restore", "--from-bucket", "--album", "3"][..],
            "--album needs the database",
        ),
        (&["restore", "--ids", "9-5"][..], "runs backwards"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// `--album` picks the album's photos (sub-albums included); `--to`
/// writes into another tree and leaves the gallery alone.
#[tokio::test]
async fn an_album_into_another_directory() {
    let (g, s3, files) = backed_up().await;
    let c = config(&g, &s3, "");
    let t = Tables::new(&g.prefix);
    g.exec(&format!(
        "INSERT INTO {} (id, name, id_uppercat, uppercats) VALUES (4, 'Trips', NULL, '4'), \
         (5, 'Rome', 4, '4,5')",
        g.table("categories")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, category_id) VALUES (2, 5), (3, 4)",
        g.table("image_category")
    ))
    .await;
    let elsewhere = tempfile::tempdir().unwrap();
    let mut opts = all(Mode::default());
    opts.filter.album = Some(4);
    opts.to = Some(elsewhere.path().join("copy"));
    let s = restore::from_records(&c, &g.pool, &t, &opts).await.unwrap();
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!((s.selected, s.restored), (2, 2), "{}", s.to_text());
    for (path, bytes) in [&files[1], &files[2]] {
        let rel = path.strip_prefix(g.root()).unwrap();
        let copy = elsewhere.path().join("copy").join(rel);
        assert_eq!(&std::fs::read(&copy).unwrap(), bytes);
    }
    let copied = elsewhere
        .path()
        .join("copy")
        .join(files[0].0.strip_prefix(g.root()).unwrap());
    assert!(!copied.exists());
    g.drop_database().await;
}

/// Piwigo 14 names uploads `<datetime>-<md5[:8]>`: the same bytes added
/// twice in one second are two photos with one path. Restoring both is one
/// download, and the answer says both are in place.
#[tokio::test]
async fn two_photos_sharing_one_file_restore_cleanly() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let c = config(&g, &s3, "");
    drain(c.clone()).await;
    let bytes = photo_bytes(14, 5000);
    let path = "./upload/2024/05/17/20240517120000-1a2b3c4d.jpg";
    let a = g
        .add_photo(path, "a.jpg", &bytes, Some(&md5_hex(&bytes)))
        .await;
    let b = g.add_row(path, "a.jpg", Some(&md5_hex(&bytes)), 5000).await;
    let s = drain(c.clone()).await;
    assert_eq!((s.uploaded, s.duplicates), (1, 1));
    let t = Tables::new(&g.prefix);
    let file = g.root().join(path.trim_start_matches("./"));
    for round in 0..3 {
        std::fs::remove_file(&file).unwrap();
        let mut opts = all(Mode::default());
        opts.filter.ids = vec![(a, a), (b, b)];
        let s = restore::from_records(&c, &g.pool, &t, &opts).await.unwrap();
        assert!(s.ok(), "round {round}: {}", s.to_text());
        assert_eq!((s.restored, s.already_in_place), (1, 1), "{}", s.to_text());
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
        assert!(leftovers(&g.root()).is_empty());
    }
    g.drop_database().await;
}

/// Run as root (as the tests are), a restore gives what it creates the
/// owner, group and mode of the directory it lands in, and says so.
#[tokio::test]
async fn restored_files_take_their_parents_owner_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (g, s3, files) = backed_up().await;
    let c = config(&g, &s3, "");
    let t = Tables::new(&g.prefix);
    let upload = g.root().join("upload");
    std::fs::remove_dir_all(upload.join("2024")).unwrap();
    // The web server's user and group, as on a Debian host.
    std::os::unix::fs::chown(&upload, Some(33), Some(33)).unwrap();
    std::fs::set_permissions(&upload, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let s = restore::from_records(&c, &g.pool, &t, &all(Mode::default()))
        .await
        .unwrap();
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!(s.dirs_created, 3, "{}", s.to_text());
    assert!(s.to_text().contains("took the owner, group and mode"));
    for dir in ["2024", "2024/05", "2024/05/17"] {
        let m = std::fs::metadata(upload.join(dir)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (33, 33, 0o2775),
            "{dir}"
        );
    }
    for (path, bytes) in &files {
        let m = std::fs::metadata(path).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (33, 33, 0o664));
        assert_eq!(&std::fs::read(path).unwrap(), bytes);
    }
    g.drop_database().await;
}

/// Nothing to restore is said, with the way out, and exits 2 like
/// `enqueue`: no records at all, an unknown album, ids without records.
#[tokio::test]
async fn a_restore_that_selects_nothing_says_why_and_exits_2() {
    let (g, s3, _) = backed_up().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config_text(&g, &s3, SECRET_KEY, "")).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
            .arg("--config")
            .arg(&cfg)
            .arg("restore")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--album", "99"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no Piwigo album has id 99"), "{err}");
    let (code, err) = run(&["--ids", "500"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no backed-up photo matches ids 500"), "{err}");
    // The daemon's tables lost (they are re-created empty on start).
    g.drop_daemon_tables().await;
    let (code, err) = run(&["--missing"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no upload records exist"), "{err}");
    assert!(err.contains("restore --from-bucket --all"), "{err}");
    g.drop_database().await;
}

/// The daemon's tables lost, Piwigo's left: every photo's file comes back
/// from the bucket, md5 duplicates (never sent on their own) included;
/// photos deleted from Piwigo only when asked; objects without metadata
/// are flagged.
#[tokio::test]
async fn from_the_bucket_with_piwigos_rows() {
    let (g, s3, files) = backed_up().await;
    let c = config(&g, &s3, "");
    let t = Tables::new(&g.prefix);
    // Photo 3 deleted from Piwigo (its object is kept).
    g.exec(&format!("DELETE FROM {} WHERE id = 3", g.table("images")))
        .await;
    // An object from before objects carried metadata.
    let old = photo_bytes(40, 1500);
    s3.put("photos/trips/old.jpg", &old).await;
    lose_files_and_tables(&g).await;

    let s = restore::from_bucket::run(&c, &all(Mode::default()), Some((&g.pool, &t)))
        .await
        .unwrap();
    let text = s.to_text();
    assert!(s.ok(), "{text}");
    assert_eq!(
        (s.restored, s.duplicates, s.deleted_from_piwigo),
        (5, 1, 1),
        "{text}"
    );
    assert_eq!(s.no_metadata, vec!["photos/trips/old.jpg"], "{text}");
    assert!(text.contains("NO META"), "{text}");
    for i in [0, 1, 3, 4] {
        assert_eq!(
            std::fs::read(&files[i].0).unwrap(),
            files[i].1,
            "photo {}",
            i + 1
        );
    }
    assert!(!files[2].0.exists());
    assert_eq!(read(&g, "galleries/trips/old.jpg"), old);

    let mut opts = all(Mode::default());
    opts.include_deleted = true;
    let s = restore::from_bucket::run(&c, &opts, Some((&g.pool, &t)))
        .await
        .unwrap();
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!(s.restored, 1, "{}", s.to_text());
    assert_eq!(std::fs::read(&files[2].0).unwrap(), files[2].1);
    g.drop_database().await;
}
