//! The daemon end to end against a real MariaDB and a real S3 server.

mod common;

use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::queue::enqueue;
use piwigo_s3upload::queue::selection::Selection;

/// First run sets the watermark; only photos added after it are queued,
/// and what lands in the bucket is byte-identical to the files.
#[tokio::test]
async fn monitoring_uploads_new_photos_and_not_old_ones() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let old = photo_bytes(1, 3000);
    g.add_upload(1, "old.jpg", &old).await;
    let first = drain(config(&g, &s3, "")).await;
    assert_eq!(first.uploaded, 0);

    let a = photo_bytes(2, 200_000);
    let b = photo_bytes(3, 50_000);
    g.add_upload(2, "a.jpg", &a).await;
    g.add_upload(3, "Tom &amp; Jerry.jpg", &b).await;
    let second = drain(config(&g, &s3, "")).await;
    assert_eq!(second.uploaded, 2);

    assert_eq!(s3.get(&upload_key("a.jpg")).await.unwrap(), a);
    assert_eq!(s3.get(&upload_key("Tom & Jerry.jpg")).await.unwrap(), b);
    assert!(s3.get(&upload_key("old.jpg")).await.is_none());
    let up = g.uploaded().await;
    assert_eq!(up.len(), 2);
    assert_eq!(up[0].3, md5_hex(&a));
    assert!(g.queue_statuses().await.is_empty());
    g.drop_database().await;
}

#[tokio::test]
async fn photos_added_while_monitoring_is_disabled_are_never_queued_by_it() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let off = "[monitor]\nenabled = false\n";
    drain(config(&g, &s3, off)).await;
    g.add_upload(1, "while-off.jpg", &photo_bytes(1, 1000))
        .await;
    drain(config(&g, &s3, off)).await;
    let on = drain(config(&g, &s3, "")).await;
    assert_eq!(on.uploaded, 0);
    assert!(g.queue_statuses().await.is_empty());

    g.add_upload(2, "after.jpg", &photo_bytes(2, 1000)).await;
    assert_eq!(drain(config(&g, &s3, "")).await.uploaded, 1);
    assert_eq!(s3.keys().await, vec![upload_key("after.jpg")]);
    g.drop_database().await;
}

#[tokio::test]
async fn tagged_photos_are_queued_and_a_renamed_tag_is_still_followed() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let a = g.add_upload(1, "a.jpg", &photo_bytes(1, 1000)).await;
    let b = g.add_upload(2, "b.jpg", &photo_bytes(2, 1000)).await;
    g.exec(&format!(
        "INSERT INTO {} (id, name, url_name) VALUES (7, 's3upload', 's3upload')",
        g.table("tags")
    ))
    .await;
    let tagged = "[monitor]\ntag = \"s3upload\"\n";
    drain(config(&g, &s3, tagged)).await;
    assert!(s3.keys().await.is_empty());

    g.exec(&format!(
        "INSERT INTO {} (image_id, tag_id) VALUES ({a}, 7)",
        g.table("image_tag")
    ))
    .await;
    assert_eq!(drain(config(&g, &s3, tagged)).await.uploaded, 1);

    g.exec(&format!(
        "UPDATE {} SET name = 'to-s3', url_name = 'to-s3' WHERE id = 7",
        g.table("tags")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, tag_id) VALUES ({b}, 7)",
        g.table("image_tag")
    ))
    .await;
    assert_eq!(drain(config(&g, &s3, tagged)).await.uploaded, 1);
    assert_eq!(
        s3.keys().await,
        vec![upload_key("a.jpg"), upload_key("b.jpg")]
    );
    g.drop_database().await;
}

#[tokio::test]
async fn every_enqueue_selector() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    // Creates our tables and the watermark (nothing queued: first run).
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let t = Tables::new("piwigo_");
    let mut ids = Vec::new();
    for n in 1..=8 {
        ids.push(
            g.add_upload(n, &format!("p{n}.jpg"), &photo_bytes(n, 500))
                .await,
        );
    }
    // Albums: 1 > 2 > 3, and 4 apart.
    g.exec(&format!(
        "INSERT INTO {} (id, name, id_uppercat, uppercats) VALUES (1,'a',NULL,'1'),(2,'b',1,'1,2'),(3,'c',2,'1,2,3'),(4,'d',NULL,'4')",
        g.table("categories")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, category_id) VALUES ({},2),({},3),({},4)",
        g.table("image_category"),
        ids[0],
        ids[1],
        ids[2]
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (id, name, url_name) VALUES (3,'Holiday 2024','holiday-2024')",
        g.table("tags")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, tag_id) VALUES ({},3)",
        g.table("image_tag"),
        ids[3]
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (user_id, element_id) VALUES (1,{}),(2,{})",
        g.table("caddie"),
        ids[4],
        ids[5]
    ))
    .await;
    g.exec(&format!(
        "UPDATE {} SET date_available = '2020-01-01' WHERE id < {}",
        g.table("images"),
        ids[6]
    ))
    .await;

    let run = |sel: Selection| {
        let pool = g.pool.clone();
        let t = t.clone();
        async move {
            enqueue::selection(&pool, &t, &sel, true, &mut |_, _| {})
                .await
                .unwrap()
        }
    };
    let r = run(Selection {
        album: Some(1),
        ..Default::default()
    })
    .await;
    assert_eq!(
        (r.selected, r.queued),
        (2, 2),
        "album 1 with sub-albums 2 and 3"
    );
    let r = run(Selection {
        tag: Some(3),
        ..Default::default()
    })
    .await;
    assert_eq!((r.selected, r.queued), (1, 1));
    let r = run(Selection {
        caddie: true,
        ..Default::default()
    })
    .await;
    assert_eq!((r.selected, r.queued), (2, 2));
    let r = run(Selection {
        ids: vec![(ids[0], ids[0]), (ids[2], ids[3])],
        ..Default::default()
    })
    .await;
    assert_eq!((r.selected, r.queued, r.already_queued), (3, 1, 2));
    let since = chrono::NaiveDate::from_ymd_opt(2021, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let r = run(Selection {
        since: Some(since),
        ..Default::default()
    })
    .await;
    assert_eq!((r.selected, r.queued), (2, 2));
    let r = run(Selection {
        all: true,
        ..Default::default()
    })
    .await;
    assert_eq!((r.selected, r.queued, r.already_queued), (8, 0, 8));

    assert_eq!(
        drain(config(&g, &s3, "[monitor]\nenabled = false\n"))
            .await
            .uploaded,
        8
    );
    let r = run(Selection {
        all: true,
        ..Default::default()
    })
    .await;
    assert_eq!((r.selected, r.queued, r.already_uploaded), (8, 0, 8));
    g.drop_database().await;
}

/// Same bytes twice: one upload, one duplicate, whether Piwigo knew the
/// md5 or not; NULL md5s never match each other.
#[tokio::test]
async fn md5_duplicates_are_not_uploaded_and_null_md5_never_matches() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let same = photo_bytes(9, 4000);
    g.add_upload(1, "first.jpg", &same).await;
    g.add_upload(2, "second.jpg", &same).await;
    // Synchronised photos: md5sum NULL, different bytes, then same bytes.
    g.add_photo(
        "./galleries/trip/x.jpg",
        "x.jpg",
        &photo_bytes(10, 4000),
        None,
    )
    .await;
    g.add_photo(
        "./galleries/trip/y.jpg",
        "y.jpg",
        &photo_bytes(11, 4000),
        None,
    )
    .await;
    g.add_photo("./galleries/trip/z.jpg", "z.jpg", &same, None)
        .await;
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!((s.uploaded, s.duplicates), (3, 2));
    let up = g.uploaded().await;
    let outcomes: Vec<&str> = up.iter().map(|u| u.1.as_str()).collect();
    // The photos with NULL md5sum and their own bytes are sent.
    assert_eq!(&outcomes[2..4], ["uploaded", "uploaded"]);
    // Of the three with the same bytes (first, second, z) exactly one is
    // sent; which one is a race (all three are claimed in one batch), and
    // the other two point at its copy.
    let same_bytes = [0, 1, 4];
    let winners: Vec<usize> = same_bytes
        .into_iter()
        .filter(|&i| outcomes[i] == "uploaded")
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners[0];
    for i in same_bytes.into_iter().filter(|&i| i != winner) {
        assert_eq!(outcomes[i], "duplicate", "{outcomes:?}");
        assert_eq!(up[i].2, up[winner].2, "a duplicate points at the copy");
    }
    let winner_key = match winner {
        0 => upload_key("first.jpg"),
        1 => upload_key("second.jpg"),
        _ => "photos/trip/z.jpg".to_string(),
    };
    let mut expected = vec![
        winner_key,
        "photos/trip/x.jpg".to_string(),
        "photos/trip/y.jpg".to_string(),
    ];
    expected.sort();
    assert_eq!(s3.keys().await, expected);

    // Batch selection skips a photo whose Piwigo md5 is already uploaded.
    let again = g.add_upload(3, "third.jpg", &same).await;
    let t = Tables::new("piwigo_");
    let r = enqueue::selection(
        &g.pool,
        &t,
        &Selection {
            ids: vec![(again, again)],
            ..Default::default()
        },
        true,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!((r.queued, r.duplicates), (0, 1));
    g.drop_database().await;
}

/// An object at the key is never overwritten. Holding the photo's bytes,
/// it is `already_present`; holding other bytes, the photo is NOT backed
/// up and says so (`failed_key_taken`, with the fix), and it is not
/// retried until the settings change: then a `_unique` layout uploads it.
#[tokio::test]
async fn an_existing_object_is_never_overwritten() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let same = photo_bytes(2, 4000);
    s3.put(&upload_key("taken.jpg"), b"someone else's bytes")
        .await;
    s3.put(&upload_key("same.jpg"), &same).await;
    let taken = g.add_upload(1, "taken.jpg", &photo_bytes(1, 3000)).await;
    let present = g.add_upload(2, "same.jpg", &same).await;
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!((s.uploaded, s.already_present, s.failed), (0, 1, 1));
    assert_eq!(
        s3.get(&upload_key("taken.jpg")).await.unwrap(),
        b"someone else's bytes"
    );
    let up = g.uploaded().await;
    assert_eq!(up.len(), 1);
    assert_eq!((up[0].0, up[0].1.as_str()), (present, "already_present"));
    assert_eq!(
        g.queue_statuses().await,
        vec![(taken, "failed_key_taken".to_string())]
    );
    let error: String = sqlx::query_scalar(&format!(
        "SELECT last_error FROM {}",
        g.table("s3upload_queue")
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert!(error.contains("file_unique"), "{error}");

    // Not retried while nothing changes, however long the backoff.
    let again = drain(config(&g, &s3, "")).await;
    assert_eq!((again.uploaded, again.failed), (0, 0));
    // Renamed in Piwigo (which moves `lastmodified` on): tried again, and
    // its new name is free.
    g.exec(&format!(
        "UPDATE {} SET file = 'renamed.jpg', lastmodified = NOW() + INTERVAL 2 SECOND WHERE id = {taken}",
        g.table("images")
    ))
    .await;
    assert_eq!(drain(config(&g, &s3, "")).await.uploaded, 1);
    assert!(g.queue_statuses().await.is_empty());
    g.exec(&format!(
        "DELETE FROM {} WHERE image_id = {taken}",
        g.table("s3upload_uploaded")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, source) VALUES ({taken}, 'test')",
        g.table("s3upload_queue")
    ))
    .await;
    g.exec(&format!(
        "UPDATE {} SET file = 'taken.jpg' WHERE id = {taken}",
        g.table("images")
    ))
    .await;
    assert_eq!(drain(config(&g, &s3, "")).await.failed, 1);

    let unique = config(&g, &s3, "").s3;
    let mut c = config(&g, &s3, "");
    c.s3 = piwigo_s3upload::config::S3Config {
        key_format: piwigo_s3upload::s3::keys::KeyFormat::FileUnique,
        ..unique
    };
    assert_eq!(drain(c).await.uploaded, 1);
    assert!(g.queue_statuses().await.is_empty());
    g.drop_database().await;
}

/// A wrong secret gives failed_code_403; fixing the config and starting
/// again uploads the failed photos at once, without waiting the backoff.
#[tokio::test]
async fn wrong_key_fails_403_then_succeeds_once_fixed() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let slow_retry = "\n[monitor]\nenabled = true\n";
    drain(config(&g, &s3, slow_retry)).await;
    let bytes = photo_bytes(5, 10_000);
    g.add_upload(1, "k.jpg", &bytes).await;
    let mut bad = config_with_secret(&g, &s3, "wrong-secret-value", slow_retry);
    bad.upload.retry_backoff_min = std::time::Duration::from_secs(3600);
    bad.upload.retry_backoff_max = std::time::Duration::from_secs(3600);
    let s = drain(bad).await;
    assert_eq!(s.failed, 1);
    assert_eq!(g.queue_statuses().await[0].1, "failed_code_403");
    let err: String = sqlx::query_scalar(&format!(
        "SELECT last_error FROM {}",
        g.table("s3upload_queue")
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("wrong-secret-value"), "{err}");

    let s = drain(config(&g, &s3, slow_retry)).await;
    assert_eq!(s.uploaded, 1);
    assert_eq!(s3.get(&upload_key("k.jpg")).await.unwrap(), bytes);
    assert!(g.queue_statuses().await.is_empty());
    g.drop_database().await;
}

#[tokio::test]
async fn missing_bucket_fails_404() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    g.add_upload(1, "b.jpg", &photo_bytes(1, 1000)).await;
    let mut c = config(&g, &s3, "");
    c.s3.bucket = "no-such-bucket".into();
    drain(c).await;
    assert_eq!(g.queue_statuses().await[0].1, "failed_code_404");
    g.drop_database().await;
}

#[tokio::test]
async fn local_problems_get_their_own_statuses_and_stay_queued() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    std::fs::write(g.dir.path().join("secret.txt"), b"not a photo").unwrap();
    let outside = g.add_row("../secret.txt", "secret.txt", None, 11).await;
    let absolute = g.add_row("/etc/passwd", "passwd", None, 1).await;
    let missing = g
        .add_row(
            "./upload/2024/01/01/20240101000000-deadbeef.jpg",
            "gone.jpg",
            None,
            1,
        )
        .await;
    std::fs::create_dir_all(g.root().join("upload/dir.jpg")).unwrap();
    let directory = g.add_row("./upload/dir.jpg", "dir.jpg", None, 1).await;
    std::os::unix::fs::symlink(
        g.dir.path().join("secret.txt"),
        g.root().join("upload/link.jpg"),
    )
    .unwrap();
    let symlink = g.add_row("./upload/link.jpg", "link.jpg", None, 1).await;
    let good = g.add_upload(9, "fine.jpg", &photo_bytes(9, 100)).await;
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, 1);
    let statuses: std::collections::HashMap<u32, String> =
        g.queue_statuses().await.into_iter().collect();
    assert_eq!(statuses[&outside], "failed_path_outside_root");
    assert_eq!(statuses[&absolute], "failed_path_outside_root");
    assert_eq!(statuses[&symlink], "failed_path_outside_root");
    assert_eq!(statuses[&missing], "failed_file_missing");
    assert_eq!(statuses[&directory], "failed_file_unreadable");
    assert!(!statuses.contains_key(&good));
    assert_eq!(s3.keys().await, vec![upload_key("fine.jpg")]);
    g.drop_database().await;
}

#[tokio::test]
async fn large_files_go_multipart_and_arrive_intact() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let big = photo_bytes(77, 13 * 1024 * 1024 + 12345);
    g.add_upload(1, "video.mp4", &big).await;
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, 1);
    let got = s3.get(&upload_key("video.mp4")).await.unwrap();
    assert_eq!(got.len(), big.len());
    assert_eq!(md5_hex(&got), md5_hex(&big));
    assert_eq!(g.uploaded().await[0].3, md5_hex(&big));
    g.drop_database().await;
}

/// Two daemons draining one queue together upload every photo once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_share_one_queue() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let mut expected = Vec::new();
    for n in 0..60 {
        let bytes = photo_bytes(1000 + n, 20_000 + n as usize);
        g.add_upload(n, &format!("p{n:03}.jpg"), &bytes).await;
        expected.push((upload_key(&format!("p{n:03}.jpg")), bytes));
    }
    let (a, b) = tokio::join!(drain(config(&g, &s3, "")), drain(config(&g, &s3, "")));
    assert_eq!(a.uploaded + b.uploaded, 60, "a={a:?} b={b:?}");
    assert_eq!(
        a.already_present + b.already_present,
        0,
        "no photo was sent twice"
    );
    assert_eq!(g.uploaded().await.len(), 60);
    for (key, bytes) in expected {
        assert_eq!(s3.get(&key).await.unwrap(), bytes, "{key}");
    }
    g.drop_database().await;
}

/// A selection whose ids span several chunks is queued whole, and the
/// progress callback sees every chunk.
#[tokio::test]
async fn enqueue_works_across_id_chunks() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    for n in 1..=3 {
        g.add_upload(n, &format!("c{n}.jpg"), &photo_bytes(n, 100))
            .await;
    }
    g.exec(&format!(
        "INSERT INTO {} (id, file, path, date_available) VALUES (250000, 'far.jpg', './upload/far.jpg', NOW())",
        g.table("images")
    ))
    .await;
    let t = Tables::new("piwigo_");
    let mut calls = Vec::new();
    let sel = Selection {
        all: true,
        ..Default::default()
    };
    let r = enqueue::selection(&g.pool, &t, &sel, true, &mut |done, total| {
        calls.push((done, total))
    })
    .await
    .unwrap();
    assert_eq!((r.selected, r.queued), (4, 4));
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls.last(), Some(&(250000, 250000)));
    g.drop_database().await;
}

/// Thirty photos with identical bytes, queued together: one is sent, and
/// the others become its duplicates as soon as it is recorded. The lease
/// (which is also how long a waiting photo sleeps if nobody wakes it) is an
/// hour here, so the run only ends in time if the first record wakes them.
#[tokio::test]
async fn identical_photos_settle_as_soon_as_the_original_is_recorded() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let hour = "claim_lease = \"1h\"";
    let c = |g: &Gallery| {
        piwigo_s3upload::config::Config::from_toml(
            &config_text(g, &s3, SECRET_KEY, "").replace("claim_lease = \"10s\"", hour),
            std::path::Path::new("t"),
            None,
        )
        .unwrap()
    };
    drain(c(&g)).await;
    let bytes = photo_bytes(77, 40_000);
    for n in 0..30 {
        g.add_upload(n, &format!("same{n:02}.jpg"), &bytes).await;
    }
    let s = tokio::time::timeout(std::time::Duration::from_secs(120), drain(c(&g)))
        .await
        .expect("waiting photos are woken by the first record, not by the lease");
    assert_eq!((s.uploaded, s.duplicates), (1, 29), "{s:?}");
    assert!(g.queue_statuses().await.is_empty());
    g.drop_database().await;
}
