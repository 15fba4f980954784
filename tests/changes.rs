//! Piwigo changing under the daemon, and awkward input: each case has a
//! defined outcome, and the bytes in S3 always match the recorded md5.

mod common;

use std::time::Duration;

use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::queue::enqueue;
use piwigo_s3upload::queue::selection::Selection;

async fn enqueue_all(g: &Gallery) {
    let sel = Selection {
        all: true,
        ..Default::default()
    };
    enqueue::selection(&g.pool, &Tables::new(&g.prefix), &sel, true, &mut |_, _| {})
        .await
        .unwrap();
}

/// Every uploaded row's md5 is the md5 of the object's bytes.
async fn assert_recorded_md5_matches_bucket(g: &Gallery, s3: &S3Server) {
    for (id, outcome, key, md5) in g.uploaded().await {
        let body = s3
            .get(&key)
            .await
            .unwrap_or_else(|| panic!("{id}: {key} missing"));
        if outcome != "already_present" {
            assert_eq!(md5_hex(&body), md5, "{id} {key}");
        }
    }
}

#[tokio::test]
async fn a_photo_deleted_from_piwigo_before_upload_is_dropped() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let id = g.add_upload(1, "gone.jpg", &photo_bytes(1, 100)).await;
    g.add_upload(2, "kept.jpg", &photo_bytes(2, 100)).await;
    enqueue_all(&g).await;
    // Piwigo deletes the file first, then the row.
    std::fs::remove_file(
        g.root()
            .join("upload/2024/05/17/20240517120000-00000001.jpg"),
    )
    .unwrap();
    g.exec(&format!(
        "DELETE FROM {} WHERE id = {id}",
        g.table("images")
    ))
    .await;
    let s = drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    assert_eq!((s.uploaded, s.deleted), (1, 1));
    assert!(g.queue_statuses().await.is_empty());
    assert_eq!(s3.keys().await, vec![upload_key("kept.jpg")]);
    g.drop_database().await;
}

/// Piwigo replaces a file in place (same path, new md5): what is uploaded
/// is the file on disk at upload time, and its md5 is what is recorded.
#[tokio::test]
async fn a_file_replaced_between_enqueue_and_upload_uploads_the_new_bytes() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let id = g.add_upload(1, "edited.jpg", &photo_bytes(1, 5000)).await;
    enqueue_all(&g).await;
    let new = photo_bytes(99, 7000);
    std::fs::write(
        g.root()
            .join("upload/2024/05/17/20240517120000-00000001.jpg"),
        &new,
    )
    .unwrap();
    g.exec(&format!(
        "UPDATE {} SET md5sum = '{}' WHERE id = {id}",
        g.table("images"),
        md5_hex(&new)
    ))
    .await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    assert_eq!(s3.get(&upload_key("edited.jpg")).await.unwrap(), new);
    assert_eq!(g.uploaded().await[0].3, md5_hex(&new));
    g.drop_database().await;
}

/// A file still being written while it is sent: whatever lands matches the
/// recorded md5 (a file that only grows is sent as far as it was hashed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_growing_while_read_never_leaves_a_mismatched_object() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let path = g
        .root()
        .join("upload/2024/05/17/20240517120000-00000001.jpg");
    g.add_upload(1, "growing.jpg", &photo_bytes(1, 512 * 1024))
        .await;
    enqueue_all(&g).await;
    let writer_path = path.clone();
    let writer = tokio::spawn(async move {
        use std::io::Write;
        for n in 0..10u32 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&writer_path)
                .unwrap();
            f.write_all(&photo_bytes(100 + n, 64 * 1024)).unwrap();
        }
    });
    // 256 KiB/s: the upload is in flight while the file grows.
    let mut c = config(&g, &s3, "[monitor]\nenabled = false\n");
    c.upload.max_bandwidth = Some(256 * 1024);
    c.upload.retry_backoff_min = Duration::from_millis(200);
    let first = drain(c.clone()).await;
    writer.await.unwrap();
    let what = format!("the queue to empty (first run: {first:?})");
    wait_for(&what, Duration::from_secs(60), || async {
        g.queue_statuses().await.is_empty() || {
            drain(c.clone()).await;
            false
        }
    })
    .await;
    assert_recorded_md5_matches_bucket(&g, &s3).await;
    let final_bytes = std::fs::read(&path).unwrap();
    let stored = s3.get(&upload_key("growing.jpg")).await.unwrap();
    // Either the final file, or a complete earlier state that S3 verified.
    assert!(
        final_bytes.starts_with(&stored),
        "stored bytes are a prefix state of the file"
    );
    g.drop_database().await;
}

/// A file rewritten in place (same size, other bytes) or cut short while
/// it is sent: S3 refuses it (Content-MD5, or a body that ends early) and
/// the photo is `failed_file_changed`, the file's failure and not S3's
/// (`failed_code_0`); once due again, the file as it is now is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_while_sent_is_failed_file_changed_then_sent_again() {
    for (n, shrink) in [(1u32, false), (2, true)] {
        let g = Gallery::new().await;
        let s3 = S3Server::start().await;
        let off = "[monitor]\nenabled = false\n";
        drain(config(&g, &s3, off)).await;
        let name = format!("changing{n}.jpg");
        let id = g.add_upload(n, &name, &photo_bytes(n, 1024 * 1024)).await;
        enqueue_all(&g).await;
        let path = g
            .root()
            .join(format!("upload/2024/05/17/20240517120000-{n:08x}.jpg"));
        // 1 MiB at 256 KiB/s: four seconds in flight.
        let mut c = config(&g, &s3, off);
        c.upload.max_bandwidth = Some(256 * 1024);
        let run = tokio::spawn(drain(c.clone()));
        // Hashed, key reserved: the bytes are being sent.
        let queue = g.table("s3upload_queue");
        let sending = format!("SELECT COUNT(*) FROM {queue} WHERE key_md5 IS NOT NULL");
        wait_for("the bytes to be sent", Duration::from_secs(30), || async {
            g.scalar_i64(&sending).await > 0
        })
        .await;
        if shrink {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(300 * 1024).unwrap();
        } else {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.write_all(&photo_bytes(90 + n, 1024 * 1024)).unwrap();
        }
        let first = run.await.unwrap();
        assert_eq!((first.uploaded, first.failed), (0, 1), "shrink={shrink}");
        assert_eq!(
            g.queue_statuses().await,
            vec![(id, "failed_file_changed".to_string())],
            "shrink={shrink}"
        );
        assert!(s3.get(&upload_key(&name)).await.is_none());
        g.exec(&format!("UPDATE {queue} SET next_attempt_at = NOW(3)"))
            .await;
        assert_eq!(drain(config(&g, &s3, off)).await.uploaded, 1);
        assert_eq!(
            s3.get(&upload_key(&name)).await.unwrap(),
            std::fs::read(&path).unwrap()
        );
        assert_recorded_md5_matches_bucket(&g, &s3).await;
        g.drop_database().await;
    }
}

#[tokio::test]
async fn awkward_but_valid_files_upload() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    // The longest names Piwigo can hold: 255 characters in images.file, and
    // a path of 254 for a synchronised file.
    let name255 = format!("{}.jpg", "n".repeat(251));
    g.add_upload(3, &name255, &photo_bytes(3, 100)).await;
    let long = format!("{}.jpg", "n".repeat(236));
    g.add_photo(
        &format!("./galleries/a/{long}"),
        &long,
        &photo_bytes(1, 100),
        None,
    )
    .await;
    g.add_photo("./galleries/a/empty.jpg", "empty.jpg", b"", None)
        .await;
    g.add_photo(
        "./galleries/été/ça va #1 + 100%.jpg",
        "x",
        &photo_bytes(2, 100),
        None,
    )
    .await;
    enqueue_all(&g).await;
    // key_format none: the test server stores keys as file names, which
    // allow 255 bytes per segment (S3 itself takes 1024-byte keys).
    let mut c = config(&g, &s3, "[monitor]\nenabled = false\n");
    c.s3.key_format = piwigo_s3upload::s3::keys::KeyFormat::None;
    let s = drain(c).await;
    assert_eq!(s.uploaded, 4, "{:?}", g.queue_statuses().await);
    assert_eq!(
        s3.get(&format!("photos/{name255}")).await.unwrap().len(),
        100
    );
    assert_eq!(
        s3.get(&format!("photos/a/{long}")).await.unwrap().len(),
        100
    );
    assert_eq!(s3.get("photos/a/empty.jpg").await.unwrap().len(), 0);
    assert!(s3.get("photos/été/ça va #1 + 100%.jpg").await.is_some());
    assert_recorded_md5_matches_bucket(&g, &s3).await;
    g.drop_database().await;
}

/// Paths that can never be read get their status, stay visible, and never
/// stop the other photos.
#[tokio::test]
async fn broken_paths_get_their_statuses() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let nul = g.add_row("./upload/a\0b.jpg", "ab.jpg", None, 1).await;
    let too_long = g
        .add_row(
            &format!("./upload/{}.jpg", "x".repeat(240)),
            "x.jpg",
            None,
            1,
        )
        .await;
    // Bytes that are not UTF-8 cannot be stored in Piwigo's utf8 columns;
    // the server replaces them, so no file on disk matches.
    g.exec("SET SESSION sql_mode = ''").await;
    let latin1 = g
        .add_row("./upload/caf\u{e9}-\u{fffd}.jpg", "cafe.jpg", None, 1)
        .await;
    let remote = g
        .add_row("https://example.org/photo.jpg", "photo.jpg", None, 1)
        .await;
    let good = g.add_upload(9, "good.jpg", &photo_bytes(9, 100)).await;
    enqueue_all(&g).await;
    let s = drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    assert_eq!(s.uploaded, 1);
    let statuses: std::collections::HashMap<u32, String> =
        g.queue_statuses().await.into_iter().collect();
    assert_eq!(statuses[&nul], "failed_path_outside_root");
    assert_eq!(statuses[&too_long], "failed_file_missing");
    assert_eq!(statuses[&latin1], "failed_file_missing");
    assert!(
        !statuses.contains_key(&remote),
        "remote paths are never queued"
    );
    assert!(!statuses.contains_key(&good));
    g.drop_database().await;
}

/// A bucket in another region answers 301 PermanentRedirect: the photo
/// fails with failed_code_301 and the message says to set s3.region.
#[tokio::test]
async fn a_bucket_in_another_region_fails_301_with_the_fix() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let proxy = common::faults::HttpFaultProxy::start(s3.port()).await;
    proxy.set_redirect(true);
    g.add_upload(1, "far.jpg", &photo_bytes(1, 100)).await;
    enqueue_all(&g).await;
    let mut c = config(&g, &s3, "[monitor]\nenabled = false\n");
    c.s3.endpoint = Some(proxy.endpoint());
    drain(c).await;
    assert_eq!(g.queue_statuses().await[0].1, "failed_code_301");
    let err: String = sqlx::query_scalar(&format!(
        "SELECT last_error FROM {}",
        g.table("s3upload_queue")
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert!(err.contains("s3.region"), "{err}");
    g.drop_database().await;
}
