//! The request protocol the Piwigo plugin uses, on a real MariaDB: the
//! daemon carries requests out through `enqueue`'s code, writes the counts
//! back, handles any size of selection, and takes each request once.

mod common;

use common::*;
use piwigo_s3upload::companion::requests;

async fn request_row(g: &Gallery, id: u64) -> (String, Option<u64>, Option<u64>, Option<u64>) {
    sqlx::query_as(&format!(
        "SELECT status, selected, queued, already_uploaded FROM {} WHERE id = ?",
        g.table("s3upload_requests")
    ))
    .bind(id)
    .fetch_one(&g.pool)
    .await
    .unwrap()
}

/// A Batch Manager selection of 120,000 photos: filed in chunks, carried
/// out in one drain, already uploaded and queued photos skipped, the ids
/// removed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_selection_is_queued_with_the_enqueue_rules() {
    let g = Gallery::new().await;
    let t = g.migrated().await;
    g.exec(&format!(
        "INSERT INTO {} (file, path, filesize, date_available) \
         SELECT CONCAT('p', seq, '.jpg'), CONCAT('./upload/2024/01/01/', seq, '.jpg'), 1, NOW() \
         FROM seq_1_to_120000",
        g.table("images")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, outcome, bucket, s3_key, size, md5, url) \
         VALUES (7, 'uploaded', 'b', 'k7', 1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'u')",
        g.table("s3upload_uploaded")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, source) VALUES (8, 'monitor')",
        g.table("s3upload_queue")
    ))
    .await;
    let ids: Vec<u32> = (1..=120_000).collect();
    let id = piwigo_s3upload::queue::requests::file(&g.pool, &t, &ids, None)
        .await
        .unwrap();
    assert_eq!(
        piwigo_s3upload::queue::requests::photos(&g.pool, &t, id)
            .await
            .unwrap(),
        120_000
    );

    let queued = requests::drain(&g.pool, &t, &g.queue().await, true)
        .await
        .unwrap();
    assert_eq!(queued, 119_998);
    assert_eq!(
        request_row(&g, id).await,
        ("done".into(), Some(120_000), Some(119_998), Some(1))
    );
    let left = g
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM {}",
            g.table("s3upload_request_images")
        ))
        .await;
    assert_eq!(left, 0, "served ids are removed");
    g.drop_database().await;
}

/// Drafts (the plugin still writing ids) wait; an unknown kind fails with
/// its reason; a retry request puts failures back; two daemons take each
/// request once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_taken_once_and_answered() {
    let g = Gallery::new().await;
    let t = g.migrated().await;
    let photo = g.add_upload(1, "a.jpg", &photo_bytes(1, 100)).await;
    let requests_table = g.table("s3upload_requests");
    g.exec(&format!(
        "INSERT INTO {requests_table} (kind, status) VALUES ('enqueue', 'draft'), ('purge', 'new')"
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, source, status) VALUES ({photo}, 'monitor', 'failed_code_403')",
        g.table("s3upload_queue")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {requests_table} (kind, status) VALUES ('retry', 'new')"
    ))
    .await;

    let (a, b) = (g.queue().await, g.queue().await);
    let (ra, rb) = tokio::join!(
        requests::drain(&g.pool, &t, &a, true),
        requests::drain(&g.pool, &t, &b, true)
    );
    assert_eq!(ra.unwrap() + rb.unwrap(), 1, "the retry counted once");
    assert_eq!(g.queue_statuses().await, vec![(photo, "pending".into())]);

    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT kind, status, error FROM {requests_table} ORDER BY id"
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
    assert_eq!(rows[0], ("enqueue".into(), "draft".into(), None));
    assert_eq!(rows[1].1, "failed");
    assert!(
        rows[1]
            .2
            .as_deref()
            .unwrap()
            .contains("unknown request kind `purge`"),
        "{rows:?}"
    );
    assert_eq!(rows[2], ("retry".into(), "done".into(), None));

    // A draft abandoned a day ago (the plugin's process died) is removed.
    g.exec(&format!(
        "UPDATE {requests_table} SET created_at = NOW(3) - INTERVAL 2 DAY WHERE status = 'draft'"
    ))
    .await;
    requests::drain(&g.pool, &t, &a, true).await.unwrap();
    let drafts = g
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM {requests_table} WHERE status = 'draft'"
        ))
        .await;
    assert_eq!(drafts, 0);
    g.drop_database().await;
}

/// A retry request that names photos (the photo tab's button) puts back
/// those alone; the other failures keep waiting out their backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_naming_photos_retries_those_alone() {
    let g = Gallery::new().await;
    let t = g.migrated().await;
    let named = g.add_upload(1, "a.jpg", &photo_bytes(1, 100)).await;
    let other = g.add_upload(2, "b.jpg", &photo_bytes(2, 100)).await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, source, status) VALUES ({named}, 'monitor', 'failed_code_403'), \
         ({other}, 'monitor', 'failed_file_missing')",
        g.table("s3upload_queue")
    ))
    .await;
    let requests_table = g.table("s3upload_requests");
    g.exec(&format!(
        "INSERT INTO {requests_table} (id, kind, photos, status) VALUES (7, 'retry', 1, 'draft')"
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (request_id, image_id) VALUES (7, {named})",
        g.table("s3upload_request_images")
    ))
    .await;
    g.exec(&format!(
        "UPDATE {requests_table} SET status = 'new' WHERE id = 7"
    ))
    .await;

    let queued = requests::drain(&g.pool, &t, &g.queue().await, true)
        .await
        .unwrap();
    assert_eq!(queued, 1);
    assert_eq!(
        g.queue_statuses().await,
        vec![
            (named, "pending".into()),
            (other, "failed_file_missing".into())
        ]
    );
    assert_eq!(request_row(&g, 7).await.0, "done");
    g.drop_database().await;
}
