//! Changed photos get a new version: found by the poll (rows Piwigo
//! touched) or the slow pass (files changed on disk alone), sent through
//! the one pipeline to a key of their own, the old object kept and listed
//! in the version history; a file touched without new bytes makes no
//! object.

mod common;

use std::time::Duration;

use common::*;
use piwigo_s3upload::changes;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::piwigo::GalleryRoot;
use piwigo_s3upload::queue::versions;

const PATH: &str = "upload/2024/05/17/20240517120000-00000001.jpg";

/// The poll reads only settled seconds of `lastmodified`: a row touched
/// now is seen once the second is over.
async fn let_the_second_settle() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// Replaces the photo's file and tells Piwigo, as `pwg.images.addFile`
/// does (new file, new `filesize`; the old `md5sum` stays).
async fn replace(g: &Gallery, id: u32, bytes: &[u8]) {
    std::fs::write(g.root().join(PATH), bytes).unwrap();
    g.exec(&format!(
        "UPDATE {} SET filesize = {} WHERE id = {id}",
        g.table("images"),
        bytes.len() / 1024
    ))
    .await;
}

async fn record_of(g: &Gallery, id: u32) -> (String, String, u32) {
    sqlx::query_as(&format!(
        "SELECT s3_key, md5, version FROM {} WHERE image_id = ?",
        g.table("s3upload_uploaded")
    ))
    .bind(id)
    .fetch_one(&g.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_replaced_photo_gets_a_new_version_and_the_old_object_stays() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "");
    drain(cfg.clone()).await;
    let old = photo_bytes(1, 40_000);
    let id = g.add_upload(1, "beach.jpg", &old).await;
    drain(cfg.clone()).await;
    let (old_key, old_md5, v) = record_of(&g, id).await;
    assert_eq!((old_key.as_str(), v), (upload_key("beach.jpg").as_str(), 1));

    let new = photo_bytes(2, 50_000);
    replace(&g, id, &new).await;
    let_the_second_settle().await;
    let summary = drain(cfg.clone()).await;
    assert_eq!(summary.changes_queued, 1, "{summary:?}");
    assert_eq!(summary.uploaded, 1, "{summary:?}");

    let (key, md5, v) = record_of(&g, id).await;
    assert_eq!(v, 2);
    assert_eq!(md5, md5_hex(&new));
    assert_eq!(
        key,
        format!("photos/s3upload-versions/{id}/v2-{md5}/20240517120000-beach.jpg")
    );
    assert_eq!(s3.get(&key).await.unwrap(), new);
    // The first object is untouched.
    assert_eq!(s3.get(&old_key).await.unwrap(), old);
    let history = versions::of_photo(&g.pool, &Tables::new(&g.prefix), id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let h = &history[0];
    assert_eq!(
        (
            h.key.as_str(),
            h.md5.as_str(),
            h.size,
            h.version,
            h.item_kind.as_str()
        ),
        (
            old_key.as_str(),
            old_md5.as_str(),
            old.len() as u64,
            1,
            "photo"
        )
    );
    assert!(h.removed_at.is_none() && h.superseded_at >= h.uploaded_at);

    // Nothing more happens while nothing changes.
    let_the_second_settle().await;
    let again = drain(cfg).await;
    assert_eq!((again.changes_queued, again.uploaded), (0, 0), "{again:?}");
    assert_eq!(s3.keys().await.len(), 2);
}

#[tokio::test]
async fn a_file_touched_without_new_bytes_makes_no_object() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "");
    drain(cfg.clone()).await;
    let bytes = photo_bytes(3, 30_000);
    let id = g.add_upload(1, "same.jpg", &bytes).await;
    drain(cfg.clone()).await;
    let mtime_sql = format!(
        "SELECT file_mtime_ns FROM {} WHERE image_id = {id}",
        g.table("s3upload_uploaded")
    );
    let before = g.scalar_i64(&mtime_sql).await;

    // Rewritten with the same bytes (a metadata tool that changed
    // nothing), and the row touched (a view counts a hit).
    let file = std::fs::File::options()
        .write(true)
        .open(g.root().join(PATH))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    g.exec(&format!(
        "UPDATE {} SET hit = hit + 1 WHERE id = {id}",
        g.table("images")
    ))
    .await;
    let_the_second_settle().await;
    let summary = drain(cfg).await;
    assert_eq!(summary.changes_queued, 1, "{summary:?}");
    assert_eq!(summary.hashed_bytes, bytes.len() as u64, "{summary:?}");
    assert_eq!(summary.uploaded, 0, "{summary:?}");
    let (key, _, v) = record_of(&g, id).await;
    assert_eq!((key, v), (upload_key("same.jpg"), 1));
    assert_ne!(
        g.scalar_i64(&mtime_sql).await,
        before,
        "the record takes the new mtime"
    );
    assert_eq!(s3.keys().await.len(), 1);
    assert!(g.queue_statuses().await.is_empty());
    let history = versions::of_photo(&g.pool, &Tables::new(&g.prefix), id)
        .await
        .unwrap();
    assert!(history.is_empty(), "{history:?}");
}

#[tokio::test]
async fn the_slow_pass_finds_a_change_on_disk_alone_and_reads_no_unchanged_file() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "[monitor]\nenabled = false\n");
    drain(cfg.clone()).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            g.add_upload(n, &format!("p{n}.jpg"), &photo_bytes(n, 20_000))
                .await,
        );
    }
    piwigo_s3upload::queue::enqueue::selection(
        &g.pool,
        &Tables::new(&g.prefix),
        &piwigo_s3upload::queue::selection::Selection {
            all: true,
            ..Default::default()
        },
        true,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    drain(cfg.clone()).await;

    let t = Tables::new(&g.prefix);
    let root = GalleryRoot::new(&g.root(), &[]).unwrap();
    let stall = Duration::from_secs(10);
    // The poll moves past the rows added above (recorded unchanged).
    let_the_second_settle().await;
    let polled = changes::poll_once(&g.pool, &t, &root, stall).await.unwrap();
    assert_eq!(polled.queued, 0);

    // Photo 1's file changes on disk; Piwigo's row does not.
    let new = photo_bytes(99, 25_000);
    std::fs::write(g.root().join(PATH), &new).unwrap();
    let polled = changes::poll_once(&g.pool, &t, &root, stall).await.unwrap();
    assert_eq!((polled.files, polled.queued), (0, 0), "no row was touched");
    let (checked, wrapped) = changes::pass_step(&g.pool, &t, &root, stall, 1000)
        .await
        .unwrap();
    assert!(wrapped);
    assert_eq!((checked.files, checked.queued), (5, 1));

    let summary = drain(cfg.clone()).await;
    // Only the changed file was read.
    assert_eq!(summary.hashed_bytes, new.len() as u64, "{summary:?}");
    assert_eq!(summary.uploaded, 1);
    let (key, md5, _) = record_of(&g, ids[0]).await;
    assert_eq!(md5, md5_hex(&new));
    assert_eq!(s3.get(&key).await.unwrap(), new);

    // The cursor was kept: a pass in small steps covers each record once
    // and starts over at the end.
    let mut files = 0;
    for step in 1..=3 {
        let (checked, wrapped) = changes::pass_step(&g.pool, &t, &root, stall, 2)
            .await
            .unwrap();
        files += checked.files;
        assert_eq!(wrapped, step == 3);
        assert_eq!(checked.queued, 0);
    }
    assert_eq!(files, 5);
}

/// `run --until-idle` alone, as from cron: each run takes the slow pass's
/// share of the time since the last one, so a file changed on disk with
/// no change in Piwigo's tables is still found without a running daemon.
#[tokio::test]
async fn cron_runs_take_their_share_of_the_slow_pass() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "");
    drain(cfg.clone()).await;
    let id = g.add_upload(1, "p1.jpg", &photo_bytes(1, 20_000)).await;
    g.add_upload(2, "p2.jpg", &photo_bytes(2, 20_000)).await;
    assert_eq!(drain(cfg.clone()).await.uploaded, 2);
    // The next run's poll moves past the rows just added.
    let_the_second_settle().await;
    let quiet = drain(cfg.clone()).await;
    assert_eq!((quiet.changes_queued, quiet.uploaded), (0, 0), "{quiet:?}");

    // Photo 1's file changes on disk; Piwigo's row does not. Seconds
    // after the last run not one record of the day's pass is due.
    let new = photo_bytes(99, 25_000);
    std::fs::write(g.root().join(PATH), &new).unwrap();
    let soon = drain(cfg.clone()).await;
    assert_eq!((soon.changes_queued, soon.uploaded), (0, 0), "{soon:?}");

    // A day after the last run, the whole pass is due.
    let clock = "name = 'changes_pass_clock_ms'";
    let state = g.table("s3upload_state");
    let read_clock = format!("SELECT CAST(value AS SIGNED) FROM {state} WHERE {clock}");
    let before = g.scalar_i64(&read_clock).await;
    g.exec(&format!(
        "UPDATE {state} SET value = CAST(value - 86400000 AS CHAR) WHERE {clock}"
    ))
    .await;
    let due = drain(cfg.clone()).await;
    assert_eq!((due.changes_queued, due.uploaded), (1, 1), "{due:?}");
    let (key, md5, v) = record_of(&g, id).await;
    assert_eq!((md5.as_str(), v), (md5_hex(&new).as_str(), 2));
    assert_eq!(s3.get(&key).await.unwrap(), new);
    // The clock moved on to this run: the next one owes nothing yet.
    let after = g.scalar_i64(&read_clock).await;
    assert!(after >= before, "{after} < {before}");
    let again = drain(cfg).await;
    assert_eq!((again.changes_queued, again.uploaded), (0, 0), "{again:?}");
}

#[tokio::test]
async fn two_daemons_never_send_one_change_twice() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "");
    drain(cfg.clone()).await;
    let id = g.add_upload(1, "twice.jpg", &photo_bytes(5, 30_000)).await;
    drain(cfg.clone()).await;
    let new = photo_bytes(6, 3_000_000);
    replace(&g, id, &new).await;
    let_the_second_settle().await;
    // Both see the change at their poll and both work the queue.
    let (a, b) = tokio::join!(drain(cfg.clone()), drain(cfg.clone()));
    assert_eq!(a.uploaded + b.uploaded, 1, "{a:?} {b:?}");
    // Two starts probe the server's If-None-Match at once; after such a
    // race rclone's listing can go on showing the deleted probe object
    // (see compat's probe test). It is no photo: only photos are counted.
    let keys: Vec<_> = s3
        .keys()
        .await
        .into_iter()
        .filter(|k| !piwigo_s3upload::s3::probe::is_probe_key("photos/", k))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let history = versions::of_photo(&g.pool, &Tables::new(&g.prefix), id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(record_of(&g, id).await.2, 2);
}

#[tokio::test]
async fn restore_gives_the_current_version_or_the_one_current_at_a_time_and_verify_knows_them() {
    use piwigo_s3upload::restore::{self, Mode, Options};
    use piwigo_s3upload::verify;
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "");
    drain(cfg.clone()).await;
    let old = photo_bytes(7, 30_000);
    let id = g.add_upload(1, "when.jpg", &old).await;
    drain(cfg.clone()).await;
    let between: chrono::NaiveDateTime = sqlx::query_scalar("SELECT NOW(3)")
        .fetch_one(&g.pool)
        .await
        .unwrap();
    let new = photo_bytes(8, 35_000);
    replace(&g, id, &new).await;
    let_the_second_settle().await;
    let t = Tables::new(&g.prefix);
    let root = GalleryRoot::new(&g.root(), &[]).unwrap();
    changes::poll_once(&g.pool, &t, &root, Duration::from_secs(10))
        .await
        .unwrap();

    // Queued, not sent yet: verify lists it; the old object is no orphan.
    let opts = verify::Options {
        orphans: true,
        ..verify::Options::default()
    };
    let r = verify::run(&cfg, &g.pool, &t, opts).await.unwrap();
    assert_eq!(r.changed_waiting, vec![(id, "photo".to_owned(), 0)]);
    assert!(verify::to_text(&r).contains("Changed: 1 recorded photos"));
    drain(cfg.clone()).await;
    let r = verify::run(&cfg, &g.pool, &t, opts).await.unwrap();
    assert!(r.changed_waiting.is_empty());
    assert_eq!(r.versions_kept, 1);
    assert_eq!(
        r.bucket.orphans.as_deref().map(<[_]>::len),
        Some(0),
        "{:?}",
        r.bucket.orphans
    );

    let restore_to = |at| Options {
        mode: Mode::default(),
        jobs: 2,
        at,
        ..Options::default()
    };
    std::fs::remove_file(g.root().join(PATH)).unwrap();
    restore::from_records(&cfg, &g.pool, &t, &restore_to(None))
        .await
        .unwrap();
    assert_eq!(std::fs::read(g.root().join(PATH)).unwrap(), new);
    std::fs::remove_file(g.root().join(PATH)).unwrap();
    restore::from_records(&cfg, &g.pool, &t, &restore_to(Some(between)))
        .await
        .unwrap();
    assert_eq!(std::fs::read(g.root().join(PATH)).unwrap(), old);
    // Without the database, the newest of the photo's objects comes back.
    std::fs::remove_file(g.root().join(PATH)).unwrap();
    let s = restore::from_bucket::run(&cfg, &restore_to(None), None)
        .await
        .unwrap();
    assert_eq!(s.selected, 1, "{s:?}");
    assert_eq!(std::fs::read(g.root().join(PATH)).unwrap(), new);
    // Before its first upload, the photo was not backed up.
    let before = between - chrono::Duration::days(1);
    let s = restore::from_records(&cfg, &g.pool, &t, &restore_to(Some(before)))
        .await
        .unwrap();
    assert_eq!(s.selected, 0);
}

#[tokio::test]
async fn a_changed_format_gets_a_new_version_beside_its_photo() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let cfg = config(&g, &s3, "");
    drain(cfg.clone()).await;
    let id = g.add_upload(1, "raw.jpg", &photo_bytes(11, 20_000)).await;
    let old = photo_bytes(12, 40_000);
    let raw = g.add_format(id, 1, "cr2", &old).await;
    drain(cfg.clone()).await;
    let t = Tables::new(&g.prefix);
    let (old_key, format_id): (String, u32) = sqlx::query_as(&format!(
        "SELECT s3_key, format_id FROM {}",
        g.table("s3upload_formats")
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();

    // Rewritten on disk; Piwigo's tables say nothing.
    let new = photo_bytes(13, 45_000);
    std::fs::write(&raw, &new).unwrap();
    let root = GalleryRoot::new(&g.root(), &[]).unwrap();
    let (checked, _) = changes::pass_step(&g.pool, &t, &root, Duration::from_secs(10), 100)
        .await
        .unwrap();
    assert_eq!((checked.files, checked.queued), (2, 1));
    let summary = drain(cfg).await;
    assert_eq!(summary.hashed_bytes, new.len() as u64, "{summary:?}");

    let (key, md5, version): (String, String, u32) = sqlx::query_as(&format!(
        "SELECT s3_key, md5, version FROM {}",
        g.table("s3upload_formats")
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert_eq!((md5.as_str(), version), (md5_hex(&new).as_str(), 2));
    assert_eq!(
        key,
        format!("photos/s3upload-versions/{id}/f{format_id}-v2-{md5}/20240517120000-raw.cr2")
    );
    assert_eq!(s3.get(&key).await.unwrap(), new);
    assert_eq!(s3.get(&old_key).await.unwrap(), old);
    let history = versions::of_photo(&g.pool, &t, id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].item_kind.as_str(),
            history[0].kind_id,
            history[0].key.as_str()
        ),
        ("format", format_id, old_key.as_str())
    );
    // The photo's record did not move.
    assert_eq!(record_of(&g, id).await.2, 1);
}

/// `[retention] versions = "1s"`: an earlier version superseded longer ago
/// leaves the bucket, the current one stays.
#[tokio::test]
async fn an_earlier_version_leaves_after_retention_versions() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "[retention]\nversions = \"1s\"\n");
    drain(cfg.clone()).await;
    let old = photo_bytes(11, 30_000);
    let id = g.add_upload(1, "pier.jpg", &old).await;
    drain(cfg.clone()).await;
    let (old_key, _, _) = record_of(&g, id).await;
    let new = photo_bytes(12, 31_000);
    replace(&g, id, &new).await;
    let_the_second_settle().await;
    drain(cfg.clone()).await;
    let (key, _, v) = record_of(&g, id).await;
    assert_eq!(v, 2);
    assert_eq!(
        s3.get(&old_key).await.unwrap(),
        old,
        "kept until the policy says"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drain(cfg.clone()).await;
    assert!(s3.get(&old_key).await.is_none(), "the earlier version went");
    assert!(s3.get(&key).await == Some(new), "the current one stays");
    let left = g
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM {} WHERE removed_at IS NULL",
            g.table("s3upload_versions")
        ))
        .await;
    assert_eq!(left, 0);
    g.drop_database().await;
}

/// A deleted photo's earlier versions go with it under `[retention]
/// deleted`, and `keep` for versions does not keep them past that.
#[tokio::test]
async fn a_deleted_photos_earlier_versions_go_with_it() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let cfg = config(&g, &s3, "[retention]\ndeleted = \"1s\"\n");
    drain(cfg.clone()).await;
    let old = photo_bytes(21, 30_000);
    let id = g.add_upload(1, "dune.jpg", &old).await;
    // Others stay: an images table left empty would hold every deletion.
    g.add_upload(2, "stays.jpg", &photo_bytes(23, 20_000)).await;
    g.add_upload(3, "stays-too.jpg", &photo_bytes(24, 20_000))
        .await;
    drain(cfg.clone()).await;
    let (old_key, _, _) = record_of(&g, id).await;
    let new = photo_bytes(22, 31_000);
    replace(&g, id, &new).await;
    let_the_second_settle().await;
    drain(cfg.clone()).await;
    let (key, _, _) = record_of(&g, id).await;
    assert!(s3.get(&old_key).await.is_some() && s3.get(&key).await.is_some());
    // Piwigo deletes the photo: file, then rows.
    std::fs::remove_file(g.root().join(PATH)).unwrap();
    g.exec(&format!(
        "DELETE FROM {} WHERE id = {id}",
        g.table("images")
    ))
    .await;
    drain(cfg.clone()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drain(cfg.clone()).await;
    assert!(s3.get(&key).await.is_none());
    assert!(s3.get(&old_key).await.is_none());
    let removed: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT CAST(kind AS CHAR) FROM {} WHERE image_id = {id} AND removed_at IS NOT NULL ORDER BY kind",
        g.table("s3upload_removed")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
    assert_eq!(removed, ["photo", "version"]);
    g.drop_database().await;
}
