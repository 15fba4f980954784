//! `verify` against a real MariaDB and a real S3 server: it reports exactly
//! what was planted, and nothing on a clean backup.

mod common;

use std::process::Command;

use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::verify::{self, Options, bucket::Problem, disk::FileProblem};

fn tables(g: &Gallery) -> Tables {
    Tables::new(&g.prefix)
}

/// A gallery with `n` photos uploaded (one of them multipart), nothing
/// else queued.
async fn backed_up(n: u32) -> (Gallery, S3Server, Vec<u32>) {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let mut ids = Vec::new();
    for i in 1..=n {
        // The first is above the 6 MiB multipart threshold of the tests.
        let len = if i == 1 {
            7 * 1024 * 1024
        } else {
            3000 + i as usize
        };
        ids.push(
            g.add_upload(i, &format!("p{i}.jpg"), &photo_bytes(i, len))
                .await,
        );
    }
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, u64::from(n));
    (g, s3, ids)
}

fn all() -> Options {
    Options {
        disk: true,
        orphans: true,
        ..Options::default()
    }
}

#[tokio::test]
async fn a_clean_backup_reports_nothing() {
    let (g, s3, _) = backed_up(4).await;
    // What the start-up probe leaves when the keys cannot delete: the
    // daemon's own object, not an orphan.
    s3.put("photos/s3upload-probe/if-none-match", b"probe")
        .await;
    let c = config(&g, &s3, "");
    let r = verify::run(&c, &g.pool, &tables(&g), all()).await.unwrap();
    assert!(r.ok, "{}", verify::to_text(&r));
    assert_eq!(r.coverage.photos, 4);
    assert_eq!(r.coverage.recorded, 4);
    assert_eq!(r.coverage.not_backed_up, 0);
    assert_eq!(r.bucket.intact, 4, "{}", verify::to_text(&r));
    assert!(r.bucket.problems.is_empty());
    assert_eq!(r.bucket.orphans.as_deref().map(<[_]>::len), Some(0));
    let d = r.disk.as_ref().unwrap();
    assert_eq!((d.checked, d.intact), (4, 4));
    // One listing request for the prefix; nothing needed a HEAD.
    assert_eq!(r.bucket.list_requests, 1);
    assert_eq!(r.bucket.head_requests, 0);
    g.drop_database().await;
}

#[tokio::test]
async fn verify_finds_exactly_what_was_planted() {
    let (g, s3, ids) = backed_up(6).await;
    let up = g.uploaded().await;
    let key = |id: u32| up.iter().find(|u| u.0 == id).unwrap().2.clone();
    let client = s3.client();
    // 2: object deleted. 3: object truncated. 4: same size, other bytes.
    client
        .delete_object()
        .bucket(BUCKET)
        .key(key(ids[1]))
        .send()
        .await
        .unwrap();
    s3.put(&key(ids[2]), &photo_bytes(3, 100)).await;
    s3.put(&key(ids[3]), &photo_bytes(99, 3004)).await;
    // 5: the file changed on disk after upload, same size.
    let path5 = g
        .root()
        .join("upload/2024/05/17/20240517120000-00000005.jpg");
    std::fs::write(&path5, photo_bytes(555, 3005)).unwrap();
    // A photo never queued (monitoring has not seen it), in an album.
    let never = g.add_upload(7, "never.jpg", &photo_bytes(7, 3007)).await;
    g.exec(&format!(
        "INSERT INTO {} (id, name, uppercats) VALUES (3, 'Holidays &amp; more', '3')",
        g.table("categories")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, category_id) VALUES ({never}, 3)",
        g.table("image_category")
    ))
    .await;
    s3.put("photos/stray.jpg", b"not from piwigo").await;
    // Piwigo 13+'s formats table, with a RAW file attached to photo 6,
    // which the daemon has not seen yet.
    let raw = g
        .root()
        .join("upload/2024/05/17/pwg_format/20240517120000-00000006.cr2");
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    std::fs::write(&raw, photo_bytes(66, 5000)).unwrap();
    g.exec(&format!(
        "CREATE TABLE {} (format_id int unsigned NOT NULL auto_increment PRIMARY KEY, \
         image_id mediumint unsigned NOT NULL, ext varchar(255) NOT NULL, filesize mediumint unsigned)",
        g.table("image_format")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, ext) VALUES ({}, 'cr2')",
        g.table("image_format"),
        ids[5]
    ))
    .await;

    // Without the change check: the file changed on disk is what verify
    // must find, not a new version the daemon would send meanwhile.
    let c = config(&g, &s3, "[changes]\nenabled = false\n");
    let r = verify::run(&c, &g.pool, &tables(&g), all()).await.unwrap();
    let text = verify::to_text(&r);
    assert!(!r.ok, "{text}");
    assert_eq!(r.coverage.not_backed_up, 1, "{text}");
    assert_eq!(r.coverage.not_backed_up_ids, never.to_string());
    assert_eq!(r.coverage.formats.total, 1);
    assert_eq!(r.coverage.formats.not_backed_up, 1);
    assert!(text.contains("Formats: 1 attached"), "{text}");
    assert_eq!(r.coverage.by_album.len(), 1);
    assert_eq!(r.coverage.by_album[0].album, "Holidays & more");
    assert_eq!(r.coverage.by_album[0].sample_ids, vec![never]);
    let found: Vec<(u32, Problem)> = r
        .bucket
        .problems
        .iter()
        .map(|p| (p.image_id, p.problem))
        .collect();
    assert_eq!(
        found,
        vec![
            (ids[1], Problem::Missing),
            (ids[2], Problem::WrongSize),
            (ids[3], Problem::OtherBytes)
        ],
        "{text}"
    );
    assert_eq!(r.bucket.intact, 3, "{text}");
    let orphans: Vec<&str> = r
        .bucket
        .orphans
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| o.key.as_str())
        .collect();
    assert_eq!(orphans, vec!["photos/stray.jpg"]);
    let disk: Vec<(u32, FileProblem)> = r
        .disk
        .as_ref()
        .unwrap()
        .problems
        .iter()
        .map(|p| (p.image_id, p.problem))
        .collect();
    assert_eq!(disk, vec![(ids[4], FileProblem::Changed)], "{text}");
    assert!(text.contains("Holidays & more"), "{text}");
    assert!(text.contains("PROBLEMS FOUND"), "{text}");

    // Without --disk and --orphans, those parts are not looked at.
    let quick = verify::run(&c, &g.pool, &tables(&g), Options::default())
        .await
        .unwrap();
    assert!(quick.disk.is_none() && quick.bucket.orphans.is_none());
    assert_eq!(quick.bucket.problems.len(), 3);

    // --enqueue queues the photo nobody queued; it then uploads.
    let opts = Options {
        enqueue: true,
        ..Options::default()
    };
    let r = verify::run(&c, &g.pool, &tables(&g), opts).await.unwrap();
    // Photos and formats counted apart: the photo nobody queued, and the
    // RAW of a recorded photo.
    assert_eq!(r.enqueued.map(|e| (e.photos, e.formats)), Some((1, 1)));
    assert!(
        verify::to_text(&r).contains("queued 1 photo and 1 format now"),
        "{}",
        verify::to_text(&r)
    );
    assert_eq!(drain(c.clone()).await.uploaded, 1);
    let r = verify::run(&c, &g.pool, &tables(&g), Options::default())
        .await
        .unwrap();
    assert_eq!(r.coverage.not_backed_up, 0);
    assert_eq!(r.coverage.formats.recorded, 1);
    assert_eq!(
        s3.get("photos/20240517120000-p6.cr2").await.unwrap(),
        photo_bytes(66, 5000)
    );
    g.drop_database().await;
}

#[tokio::test]
async fn the_command_exits_1_on_problems_0_when_clean_and_stores_the_result() {
    let (g, s3, ids) = backed_up(2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text(&g, &s3, SECRET_KEY, "")).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
            .arg("--config")
            .arg(&path)
            .arg("verify")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("OK: every photo is backed up and intact"),
        "{text}"
    );
    let last = verify::LastRun::load(&g.pool, &tables(&g))
        .await
        .unwrap()
        .unwrap();
    assert!(last.ok && last.at > 0);

    let up = g.uploaded().await;
    let key = &up.iter().find(|u| u.0 == ids[1]).unwrap().2;
    s3.client()
        .delete_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["bucket"]["problems"][0]["problem"], "missing");
    assert_eq!(json["bucket"]["problems"][0]["key"], key.as_str());
    let last = verify::LastRun::load(&g.pool, &tables(&g))
        .await
        .unwrap()
        .unwrap();
    assert!(!last.ok);
    assert_eq!(last.objects_missing, 1);
    g.drop_database().await;
}

/// Where the ETag cannot prove the bytes (SSE-KMS here, multipart objects
/// on most servers), a same-size object with other bytes is never called
/// intact on its size: with no md5 metadata, or with the recorded md5 kept
/// in its metadata, it is unproven (exit 1) until `--read-data` reads it and
/// finds the damage.
#[tokio::test]
async fn size_alone_never_proves_an_object() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(
        "key_format = \"file\"",
        "key_format = \"file\"\nserver_side_encryption = \"aws:kms\"",
    );
    let c = piwigo_s3upload::config::Config::from_toml(&text, std::path::Path::new("t.toml"), None)
        .unwrap();
    drain(c.clone()).await;
    let mut ids = Vec::new();
    for i in 1..=3u32 {
        let len = if i == 1 { 7 * 1024 * 1024 } else { 3000 };
        ids.push(
            g.add_upload(i, &format!("p{i}.jpg"), &photo_bytes(i, len))
                .await,
        );
    }
    assert_eq!(drain(c.clone()).await.uploaded, 3);
    let t = tables(&g);
    let r = verify::run(&c, &g.pool, &t, Options::default())
        .await
        .unwrap();
    assert!(r.ok, "{}", verify::to_text(&r));
    assert_eq!(r.bucket.proven.upload_etag + r.bucket.proven.etag_md5, 3);

    let up = g.uploaded().await;
    let key = |id: u32| up.iter().find(|u| u.0 == id).unwrap().2.clone();
    // 1 (multipart): same size, other bytes, no metadata at all.
    s3.put(&key(ids[0]), &photo_bytes(91, 7 * 1024 * 1024))
        .await;
    // 2: same size, other bytes, the recorded md5 kept in the metadata.
    let md5_2 = md5_hex(&photo_bytes(2, 3000));
    s3.client()
        .put_object()
        .bucket(BUCKET)
        .key(key(ids[1]))
        .metadata("md5", &md5_2)
        .body(photo_bytes(92, 3000).into())
        .send()
        .await
        .unwrap();
    let r = verify::run(&c, &g.pool, &t, Options::default())
        .await
        .unwrap();
    let text = verify::to_text(&r);
    assert!(!r.ok, "{text}");
    assert!(r.bucket.problems.is_empty(), "{text}");
    let unproven: Vec<u32> = r.bucket.unproven.iter().map(|u| u.image_id).collect();
    assert_eq!(unproven, vec![ids[0], ids[1]], "{text}");
    assert_eq!(r.bucket.intact, 1, "{text}");
    assert!(text.contains("verify --read-data"), "{text}");
    assert!(text.contains("PROBLEMS FOUND"), "{text}");

    // --read-data downloads them: damage, named as such.
    let read = Options {
        read_data: Some(100.0),
        ..Options::default()
    };
    let r = verify::run(&c, &g.pool, &t, read).await.unwrap();
    let text = verify::to_text(&r);
    let found: Vec<(u32, Problem)> = r
        .bucket
        .problems
        .iter()
        .map(|p| (p.image_id, p.problem))
        .collect();
    assert_eq!(
        found,
        vec![(ids[0], Problem::OtherBytes), (ids[1], Problem::OtherBytes)],
        "{text}"
    );
    assert!(r.bucket.unproven.is_empty(), "{text}");
    assert_eq!((r.bucket.intact, r.bucket.proven.read), (1, 1), "{text}");
    assert_eq!(r.bucket.objects_read, 3, "{text}");
    assert!(text.contains("1 by downloading and hashing them"), "{text}");
    // A 0% sample reads only what the ETag cannot prove.
    let sampled = Options {
        read_data: Some(0.0),
        ..Options::default()
    };
    let r = verify::run(&c, &g.pool, &t, sampled).await.unwrap();
    assert_eq!((r.bucket.objects_read, r.bucket.problems.len()), (2, 2));
    g.drop_database().await;
}

/// `--resend` mends from the gallery what verify found: a missing object
/// goes back to its key, a damaged one is left alone and its good copy
/// gets a key of its own, the records follow; files gone or changed are
/// listed as beyond repair.
#[tokio::test]
async fn resend_mends_what_the_gallery_still_holds() {
    let (g, s3, ids) = backed_up(5).await;
    let up = g.uploaded().await;
    let key = |id: u32| up.iter().find(|u| u.0 == id).unwrap().2.clone();
    let file = |n: u32| {
        g.root()
            .join(format!("upload/2024/05/17/20240517120000-{n:08x}.jpg"))
    };
    let delete = |k: String| {
        let client = s3.client();
        async move {
            client
                .delete_object()
                .bucket(BUCKET)
                .key(k)
                .send()
                .await
                .unwrap();
        }
    };
    // 1 (multipart): same size, other bytes. 2: object gone.
    let planted = photo_bytes(81, 7 * 1024 * 1024);
    s3.put(&key(ids[0]), &planted).await;
    delete(key(ids[1])).await;
    // 3: object truncated and the file changed since. 4: object and file gone.
    s3.put(&key(ids[2]), b"short").await;
    std::fs::write(file(3), photo_bytes(333, 3003)).unwrap();
    delete(key(ids[3])).await;
    std::fs::remove_file(file(4)).unwrap();

    let c = config(&g, &s3, "");
    let opts = Options {
        resend: true,
        ..Options::default()
    };
    let r = verify::run(&c, &g.pool, &tables(&g), opts).await.unwrap();
    let text = verify::to_text(&r);
    assert!(!r.ok, "{text}");
    let re = r.resend.as_ref().unwrap();
    let resent: Vec<(Vec<u32>, &str, &str)> = re
        .resent
        .iter()
        .map(|s| (s.image_ids.clone(), s.old_key.as_str(), s.new_key.as_str()))
        .collect();
    assert_eq!(resent.len(), 2, "{text}");
    let multipart = resent.iter().find(|r| r.0 == vec![ids[0]]).unwrap();
    assert!(
        multipart.2.starts_with("photos/s3upload-resent/")
            && multipart.2.ends_with("/20240517120000-p1.jpg"),
        "{text}"
    );
    let gone = resent.iter().find(|r| r.0 == vec![ids[1]]).unwrap();
    assert_eq!(gone.1, gone.2, "{text}");
    let cannot: Vec<u32> = re.cannot.iter().map(|n| n.image_ids[0]).collect();
    assert_eq!(cannot, vec![ids[2], ids[3]], "{text}");
    assert!(
        re.cannot[0]
            .reason
            .contains("changed since it was backed up"),
        "{text}"
    );
    assert!(re.cannot[1].reason.contains("is missing"), "{text}");
    assert!(text.contains("RESENT") && text.contains("CANNOT"), "{text}");
    // The damaged object was not overwritten; the copies hold the photos.
    assert_eq!(s3.get(&key(ids[0])).await.unwrap(), planted);
    assert_eq!(
        s3.get(multipart.2).await.unwrap(),
        photo_bytes(1, 7 * 1024 * 1024)
    );
    assert_eq!(s3.get(&key(ids[1])).await.unwrap(), photo_bytes(2, 3002));

    // The records follow: only what could not be mended is left.
    let r = verify::run(&c, &g.pool, &tables(&g), Options::default())
        .await
        .unwrap();
    let left: Vec<u32> = r.bucket.problems.iter().map(|p| p.image_id).collect();
    assert_eq!(left, vec![ids[2], ids[3]], "{}", verify::to_text(&r));
    assert_eq!(r.bucket.intact, 3, "{}", verify::to_text(&r));
    g.drop_database().await;
}

/// The listing path on a large gallery: 100,000 records and objects.
/// Run with `cargo nextest run --test verify --run-ignored only listing_scale`;
/// prints the time and the S3 requests.
#[tokio::test]
#[ignore]
async fn listing_scale() {
    const N: u32 = 100_000;
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let dir = s3.data.path().join(BUCKET).join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    let mut values = Vec::new();
    for i in 1..=N {
        let bytes = i.to_le_bytes();
        std::fs::write(dir.join(format!("{i:06}.jpg")), bytes).unwrap();
        values.push(format!(
            "({i}, 'uploaded', '{BUCKET}', 'photos/{i:06}.jpg', 4, '{}', '')",
            md5_hex(&bytes)
        ));
        if values.len() == 5000 || i == N {
            g.exec(&format!(
                "INSERT INTO {} (image_id, outcome, bucket, s3_key, size, md5, url) VALUES {}",
                g.table("s3upload_uploaded"),
                values.join(",")
            ))
            .await;
            values.clear();
        }
    }
    let c = config(&g, &s3, "");
    let t = tables(&g);
    // The same listing alone: what the server itself takes.
    let started = std::time::Instant::now();
    assert_eq!(s3.keys().await.len(), N as usize);
    let bare = started.elapsed();
    let started = std::time::Instant::now();
    let r = verify::run(&c, &g.pool, &t, Options::default())
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!(
        "verify of {N} records: {:.2}s (a bare listing of the prefix: {:.2}s), {} objects listed in {} list requests, {} HEAD requests, {} intact",
        took.as_secs_f64(),
        bare.as_secs_f64(),
        r.bucket.objects_listed,
        r.bucket.list_requests,
        r.bucket.head_requests,
        r.bucket.intact
    );
    assert_eq!(r.bucket.intact, u64::from(N));
    assert_eq!(r.bucket.head_requests, 0);
    g.drop_database().await;
}

#[test]
fn a_sample_must_be_a_percentage_of_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[piwigo]\ndatabase_url = \"mysql://u:p@127.0.0.1:1/db\"\nroot = \"/tmp\"\n[s3]\nbucket = \"b\"\n",
    )
    .unwrap();
    for (args, expected) in [
        (
            &["--read-data", "--sample", "150"][..],
            "is not a percentage",
        ),
        (&["--sample", "10"][..], "--read-data"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
            .arg("--config")
            .arg(&cfg)
            .arg("verify")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
