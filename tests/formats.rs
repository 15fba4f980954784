//! Piwigo's formats (RAW, TIFF... in `pwg_format/`) against a real MariaDB
//! and a real S3 server: sent next to their photo, never over an existing
//! object, verified and restored like the photo.

mod common;

use std::time::Duration;

use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::restore::{self, Mode, Options};
use piwigo_s3upload::verify::{self, bucket::Problem};

/// Each format's status by extension: recorded ones from the formats
/// table, the others from the queue, where they are items like photos.
async fn format_statuses(g: &Gallery) -> Vec<(String, String)> {
    sqlx::query_as(&format!(
        "SELECT ext, status FROM {} UNION ALL \
         SELECT ext, status FROM {} WHERE kind = 'format' ORDER BY ext",
        g.table("s3upload_formats"),
        g.table("s3upload_queue")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap()
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Makes every queued item due now, as `retry` does.
async fn due_now(g: &Gallery) {
    g.exec(&format!(
        "UPDATE {} SET next_attempt_at = NOW(3)",
        g.table("s3upload_queue")
    ))
    .await;
}

#[tokio::test]
async fn formats_are_sent_verified_and_restored_like_photos() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let c = config(&g, &s3, "");
    drain(c.clone()).await;
    let photo = photo_bytes(1, 4000);
    let id = g.add_upload(1, "beach.jpg", &photo).await;
    // A RAW with the photo, and a TIFF above the multipart threshold.
    let raw = photo_bytes(2, 9000);
    let raw_path = g.add_format(id, 1, "cr2", &raw).await;
    let tif = photo_bytes(3, 7 * 1024 * 1024);
    let tif_path = g.add_format(id, 1, "tif", &tif).await;
    assert_eq!(drain(c.clone()).await.uploaded, 1);
    assert_eq!(
        s3.get("photos/20240517120000-beach.cr2").await.unwrap(),
        raw
    );
    assert_eq!(
        s3.get("photos/20240517120000-beach.tif").await.unwrap(),
        tif
    );

    // A format added to a photo uploaded already is picked up; one whose
    // key is taken already is not overwritten.
    s3.put("photos/20240517120000-beach.psd", b"someone else's")
        .await;
    let psd = photo_bytes(4, 3000);
    g.add_format(id, 1, "psd", &psd).await;
    drain(c.clone()).await;
    assert_eq!(
        s3.get("photos/20240517120000-beach.psd").await.unwrap(),
        b"someone else's"
    );
    let statuses = format_statuses(&g).await;
    let want = [
        ("cr2", "uploaded"),
        ("psd", "failed_key_taken"),
        ("tif", "uploaded"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(statuses, want);

    let t = Tables::new(&g.prefix);
    let opts = verify::Options::default();
    let r = verify::run(&c, &g.pool, &t, opts).await.unwrap();
    let text = verify::to_text(&r);
    let f = &r.coverage.formats;
    assert_eq!((f.total, f.recorded, f.failing), (3, 2, 1), "{text}");
    // The psd is not backed up (its key holds other bytes): verify says so.
    assert!(!r.ok, "{text}");
    assert!(r.bucket.problems.is_empty(), "{text}");

    // A deleted format object is found missing.
    s3.client()
        .delete_object()
        .bucket(BUCKET)
        .key("photos/20240517120000-beach.cr2")
        .send()
        .await
        .unwrap();
    let r = verify::run(&c, &g.pool, &t, opts).await.unwrap();
    assert!(
        r.bucket
            .problems
            .iter()
            .any(|p| p.key.ends_with(".cr2") && p.problem == Problem::Missing)
    );
    // Put back as the daemon sent it, metadata included.
    s3.client()
        .put_object()
        .bucket(BUCKET)
        .key("photos/20240517120000-beach.cr2")
        .set_metadata(Some(piwigo_s3upload::s3::meta::for_upload(
            id,
            "./upload/2024/05/17/pwg_format/20240517120000-00000001.cr2",
            &md5_hex(&raw),
            "cr2",
        )))
        .body(raw.clone().into())
        .send()
        .await
        .unwrap();

    // Everything gone from disk: photo and formats come back.
    std::fs::remove_dir_all(g.root().join("upload")).unwrap();
    let all = Options {
        jobs: 4,
        mode: Mode::default(),
        ..Options::default()
    };
    let s = restore::from_records(&c, &g.pool, &t, &all).await.unwrap();
    assert_eq!(s.restored, 3, "{}", s.to_text());
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!(std::fs::read(&raw_path).unwrap(), raw);
    assert_eq!(std::fs::read(&tif_path).unwrap(), tif);

    // And without the database: the format objects say where they go.
    std::fs::remove_dir_all(g.root().join("upload")).unwrap();
    g.drop_daemon_tables().await;
    let s = restore::from_bucket::run(&c, &all, None).await.unwrap();
    assert_eq!(s.restored, 3, "{}", s.to_text());
    assert_eq!(s.unplaceable, vec!["photos/20240517120000-beach.psd"]);
    assert_eq!(std::fs::read(&raw_path).unwrap(), raw);
    assert_eq!(std::fs::read(&tif_path).unwrap(), tif);
    g.drop_database().await;
}

/// A format whose upload outlasts the claim lease keeps its claim (the
/// lease is renewed as a photo's is) and is sent once.
#[tokio::test]
async fn a_slow_format_keeps_its_claim_and_is_sent_once() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let mut c = config(&g, &s3, "");
    drain(c.clone()).await;
    c.upload.claim_lease = Duration::from_secs(2);
    // 5 MiB at 1 MiB/s: five seconds, more than two leases.
    c.upload.max_bandwidth = Some(1024 * 1024);
    let id = g.add_upload(1, "beach.jpg", &photo_bytes(1, 4000)).await;
    let tif = photo_bytes(3, 5 * 1024 * 1024);
    g.add_format(id, 1, "tif", &tif).await;
    let run = tokio::spawn(drain(c.clone()));

    let queue = g.table("s3upload_queue");
    let claimed = format!(
        "SELECT claimed_by, CAST(claimed_until AS CHAR) FROM {queue} \
         WHERE kind = 'format' AND claimed_by IS NOT NULL"
    );
    wait_for("the format to be claimed", Duration::from_secs(20), || {
        let (pool, sql) = (g.pool.clone(), claimed.clone());
        async move {
            let row: Option<(String, String)> =
                sqlx::query_as(&sql).fetch_optional(&pool).await.unwrap();
            row.is_some()
        }
    })
    .await;
    let (token, until): (String, String) =
        sqlx::query_as(&claimed).fetch_one(&g.pool).await.unwrap();
    // The same claim, its lease pushed past where it first ended.
    let renewed = format!(
        "SELECT COUNT(*) FROM {queue} WHERE kind = 'format' AND claimed_by = '{token}' \
         AND claimed_until > '{until}' + INTERVAL 1 SECOND"
    );
    wait_for(
        "the format's lease to be renewed",
        Duration::from_secs(20),
        || {
            let (pool, sql) = (g.pool.clone(), renewed.clone());
            async move {
                sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    == 1
            }
        },
    )
    .await;
    run.await.unwrap();
    assert_eq!(
        s3.get("photos/20240517120000-beach.tif").await.unwrap(),
        tif
    );
    assert_eq!(format_statuses(&g).await, pairs(&[("tif", "uploaded")]));
    g.drop_database().await;
}

/// A format that fails (its file is missing) fails alone: the photo's
/// other formats and other photos' formats are sent in the same run, and
/// it is sent once its file is back.
#[tokio::test]
async fn a_failing_format_among_others_fails_alone() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let c = config(&g, &s3, "");
    drain(c.clone()).await;
    let one = g.add_upload(1, "one.jpg", &photo_bytes(1, 4000)).await;
    let two = g.add_upload(2, "two.jpg", &photo_bytes(2, 4000)).await;
    let raw = photo_bytes(3, 9000);
    g.add_format(one, 1, "cr2", &raw).await;
    let tif = photo_bytes(4, 8000);
    let tif_path = g.add_format(one, 1, "tif", &tif).await;
    std::fs::remove_file(&tif_path).unwrap();
    g.add_format(one, 1, "psd", &photo_bytes(5, 7000)).await;
    g.add_format(two, 2, "cr2", &photo_bytes(6, 6000)).await;
    drain(c.clone()).await;
    assert_eq!(
        format_statuses(&g).await,
        pairs(&[
            ("cr2", "uploaded"),
            ("cr2", "uploaded"),
            ("psd", "uploaded"),
            ("tif", "failed_file_missing"),
        ])
    );
    assert_eq!(s3.get("photos/20240517120000-one.cr2").await.unwrap(), raw);
    assert!(s3.get("photos/20240517120000-one.tif").await.is_none());

    std::fs::write(&tif_path, &tif).unwrap();
    due_now(&g).await;
    drain(c).await;
    assert_eq!(s3.get("photos/20240517120000-one.tif").await.unwrap(), tif);
    assert_eq!(
        g.scalar_i64(&format!(
            "SELECT COUNT(*) FROM {}",
            g.table("s3upload_queue")
        ))
        .await,
        0
    );
    g.drop_database().await;
}

/// A format's key is judged as a photo's: other bytes there are never
/// overwritten and the format waits for a change (as a photo does), the
/// same bytes there are its copy already.
#[tokio::test]
async fn a_format_on_a_key_held_by_other_bytes_is_never_overwritten() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let c = config(&g, &s3, "");
    drain(c.clone()).await;
    let id = g.add_upload(1, "beach.jpg", &photo_bytes(1, 4000)).await;
    let tif = photo_bytes(2, 8000);
    g.add_format(id, 1, "cr2", &photo_bytes(3, 9000)).await;
    g.add_format(id, 1, "tif", &tif).await;
    s3.put("photos/20240517120000-beach.cr2", b"someone else's")
        .await;
    s3.put("photos/20240517120000-beach.tif", &tif).await;
    drain(c.clone()).await;
    assert_eq!(
        format_statuses(&g).await,
        pairs(&[("cr2", "failed_key_taken"), ("tif", "already_present")])
    );
    assert_eq!(
        s3.get("photos/20240517120000-beach.cr2").await.unwrap(),
        b"someone else's"
    );
    // Not retried on a timer: only a change (of the photo, the settings)
    // or `retry` can help.
    let waits: String = sqlx::query_scalar(&format!(
        "SELECT CAST(next_attempt_at AS CHAR) FROM {} WHERE kind = 'format'",
        g.table("s3upload_queue")
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert!(waits.starts_with("9999-12-31"), "{waits}");
    g.drop_database().await;
}

/// A database migrated by the previous release: its format records stay,
/// and formats waiting or failing there become items of the queue with
/// their status and attempts, then are sent.
#[tokio::test]
async fn an_upgrade_keeps_every_format_record() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let id = g.add_upload(1, "beach.jpg", &photo_bytes(1, 4000)).await;
    g.add_format(id, 1, "cr2", &photo_bytes(2, 9000)).await;
    g.add_format(id, 1, "tif", &photo_bytes(3, 8000)).await;
    g.add_format(id, 1, "psd", &photo_bytes(4, 7000)).await;
    let released = [
        include_str!("../migrations/0001_create_tables.sql"),
        include_str!("../migrations/0002_outcome_counts.sql"),
        include_str!("../migrations/0003_companion.sql"),
        include_str!("../migrations/0004_key_reservations.sql"),
        include_str!("../migrations/0005_formats.sql"),
    ];
    g.exec(&format!(
        "CREATE TABLE {} (version INT UNSIGNED NOT NULL PRIMARY KEY, \
         description VARCHAR(255) NOT NULL, checksum CHAR(32) NOT NULL, \
         applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
        g.table("s3upload_migrations")
    ))
    .await;
    for (n, sql) in released.iter().enumerate() {
        g.exec(&sql.replace("{prefix}", &g.prefix)).await;
        g.exec(&format!(
            "INSERT INTO {} (version, description, checksum) VALUES ({}, 'released', '{}')",
            g.table("s3upload_migrations"),
            n + 1,
            md5_hex(sql.as_bytes())
        ))
        .await;
    }
    g.exec(&format!(
        "INSERT INTO {} (image_id, outcome, bucket, s3_key, size, md5, url) \
         VALUES ({id}, 'uploaded', '{BUCKET}', '{}', 4000, '{}', 'u')",
        g.table("s3upload_uploaded"),
        upload_key("beach.jpg"),
        md5_hex(&photo_bytes(1, 4000))
    ))
    .await;
    let formats = g.table("s3upload_formats");
    g.exec(&format!(
        "INSERT INTO {formats} (format_id, image_id, ext, status, bucket, s3_key, size, md5) \
         VALUES (1, {id}, 'cr2', 'uploaded', '{BUCKET}', 'photos/20240517120000-beach.cr2', 9000, '{}')",
        md5_hex(&photo_bytes(2, 9000))
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {formats} (format_id, image_id, ext, status, attempts, last_error) \
         VALUES (2, {id}, 'tif', 'failed_code_503', 3, 'SlowDown')"
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {formats} (format_id, image_id, ext) VALUES (3, {id}, 'psd')"
    ))
    .await;

    g.migrated().await;
    let recorded: Vec<(u32, String, String)> = sqlx::query_as(&format!(
        "SELECT format_id, ext, status FROM {formats} ORDER BY format_id"
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
    assert_eq!(recorded, vec![(1, "cr2".into(), "uploaded".into())]);
    let items: Vec<(u32, String, String, u32, Option<String>)> = sqlx::query_as(&format!(
        "SELECT kind_id, ext, status, attempts, last_error FROM {} \
         WHERE kind = 'format' ORDER BY kind_id",
        g.table("s3upload_queue")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
    assert_eq!(
        items,
        vec![
            (
                2,
                "tif".into(),
                "failed_code_503".into(),
                3,
                Some("SlowDown".into())
            ),
            (3, "psd".into(), "pending".into(), 0, None),
        ]
    );
    assert_eq!(g.uploaded().await.len(), 1);

    due_now(&g).await;
    drain(config(&g, &s3, "")).await;
    assert_eq!(
        format_statuses(&g).await,
        pairs(&[
            ("cr2", "uploaded"),
            ("psd", "uploaded"),
            ("tif", "uploaded")
        ])
    );
    g.drop_database().await;
}
