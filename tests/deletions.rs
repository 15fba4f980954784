//! Photos deleted in Piwigo: marked (objects kept), unmarked when they come
//! back, removed under `[retention] deleted` only, and never while the
//! guard holds deletions (much gone at once, an emptied, dropped or
//! replaced images table, another database).

mod common;

use std::path::Path;

use common::*;
use piwigo_s3upload::config::Config;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::queue::enqueue;
use piwigo_s3upload::queue::selection::Selection;
use piwigo_s3upload::retention::{self, Sweep};

const NO_MONITOR: &str = "[monitor]\nenabled = false\n";

fn with_policy(policy: &str) -> String {
    format!("{NO_MONITOR}[retention]\ndeleted = \"{policy}\"\n")
}

async fn enqueue_all(g: &Gallery) {
    let sel = Selection {
        all: true,
        ..Default::default()
    };
    enqueue::selection(&g.pool, &Tables::new(&g.prefix), &sel, true, &mut |_, _| {})
        .await
        .unwrap();
}

/// `n` photos uploaded and recorded, in album 1 (the first `in_album`) or
/// album 2 (the rest); two runs, so the second notes where they are.
async fn gallery_of(g: &Gallery, s3: &S3Server, n: u32, in_album: u32) -> Vec<u32> {
    g.exec(&format!(
        "INSERT INTO {} (id, name) VALUES (1, 'one'), (2, 'two')",
        g.table("categories")
    ))
    .await;
    drain(config(g, s3, NO_MONITOR)).await;
    let mut ids = Vec::new();
    for i in 1..=n {
        let id = g
            .add_upload(i, &format!("p{i}.jpg"), &photo_bytes(i, 2000))
            .await;
        let album = if i <= in_album { 1 } else { 2 };
        g.exec(&format!(
            "INSERT INTO {} (image_id, category_id) VALUES ({id}, {album})",
            g.table("image_category")
        ))
        .await;
        ids.push(id);
    }
    enqueue_all(g).await;
    drain(config(g, s3, NO_MONITOR)).await;
    drain(config(g, s3, NO_MONITOR)).await;
    assert_eq!(g.uploaded().await.len(), n as usize);
    ids
}

/// Piwigo's deletion: files first, then the rows.
async fn piwigo_delete(g: &Gallery, ids: &[u32]) {
    for id in ids {
        let path: String = sqlx::query_scalar(&format!(
            "SELECT path FROM {} WHERE id = ?",
            g.table("images")
        ))
        .bind(id)
        .fetch_one(&g.pool)
        .await
        .unwrap();
        std::fs::remove_file(g.root().join(path.trim_start_matches("./"))).unwrap();
        for (table, column) in [("image_category", "image_id"), ("images", "id")] {
            g.exec(&format!(
                "DELETE FROM {} WHERE {column} = {id}",
                g.table(table)
            ))
            .await;
        }
    }
}

async fn marks(g: &Gallery) -> Vec<(u32, Option<String>, Option<String>, bool)> {
    sqlx::query_as(&format!(
        "SELECT image_id, path, albums, removed_at IS NOT NULL FROM {} ORDER BY image_id",
        g.table("s3upload_deleted")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap()
}

/// As if the photos were deleted two days ago.
async fn backdate(g: &Gallery) {
    g.exec(&format!(
        "UPDATE {} SET deleted_at = NOW(3) - INTERVAL 2 DAY",
        g.table("s3upload_deleted")
    ))
    .await;
}

async fn hold(g: &Gallery) -> Option<String> {
    sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE name = 'deletions_hold'",
        g.table("s3upload_state")
    ))
    .fetch_optional(&g.pool)
    .await
    .unwrap()
}

fn keys_of(files: &[u32]) -> Vec<String> {
    let mut keys: Vec<String> = files
        .iter()
        .map(|i| upload_key(&format!("p{i}.jpg")))
        .collect();
    keys.sort();
    keys
}

/// Runs a command with the policy's config: (exit code, what it said).
fn command(g: &Gallery, s3: &S3Server, policy: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text(g, s3, SECRET_KEY, &with_policy(policy))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
        .args(["--config", path.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn release(g: &Gallery, s3: &S3Server, policy: &str) -> String {
    let (code, text) = command(g, s3, policy, &["retention", "--release"]);
    assert_eq!(code, Some(0), "{text}");
    text
}

#[tokio::test]
async fn a_deleted_photo_is_marked_with_its_place_and_keeps_its_objects() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 4, 2).await;
    piwigo_delete(&g, &ids[..1]).await;
    drain(config(&g, &s3, NO_MONITOR)).await;

    let m = marks(&g).await;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].0, ids[0]);
    assert_eq!(
        m[0].1.as_deref(),
        Some("./upload/2024/05/17/20240517120000-00000001.jpg")
    );
    assert_eq!(m[0].2.as_deref(), Some("1"));
    assert!(!m[0].3);
    assert_eq!(s3.keys().await, keys_of(&[1, 2, 3, 4]));
    assert_eq!(g.uploaded().await.len(), 4, "the record stays");
    // `restore --include-deleted` brings it back where it was last seen.
    let file = g
        .root()
        .join("upload/2024/05/17/20240517120000-00000001.jpg");
    assert!(!file.exists());
    let cfg = config(&g, &s3, NO_MONITOR);
    let mut opts = piwigo_s3upload::restore::Options {
        jobs: 2,
        ..Default::default()
    };
    let t = Tables::new(&g.prefix);
    let skipped = piwigo_s3upload::restore::from_records(&cfg, &g.pool, &t, &opts)
        .await
        .unwrap();
    assert_eq!((skipped.deleted_from_piwigo, skipped.restored), (1, 0));
    opts.include_deleted = true;
    let back = piwigo_s3upload::restore::from_records(&cfg, &g.pool, &t, &opts)
        .await
        .unwrap();
    assert_eq!(back.restored, 1, "{}", back.to_text());
    assert_eq!(std::fs::read(&file).unwrap(), photo_bytes(1, 2000));
    // Kept, not due: nothing deleted even long after, with "keep".
    backdate(&g).await;
    drain(config(&g, &s3, NO_MONITOR)).await;
    assert_eq!(s3.keys().await, keys_of(&[1, 2, 3, 4]));
    g.drop_database().await;
}

#[tokio::test]
async fn a_photo_that_comes_back_is_unmarked() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 3, 3).await;
    let row: (String, String) = sqlx::query_as(&format!(
        "SELECT CAST(file AS CHAR), path FROM {} WHERE id = {}",
        g.table("images"),
        ids[1]
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    piwigo_delete(&g, &ids[1..2]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(marks(&g).await.len(), 1);

    // A database restore brings the row back, same id.
    g.exec(&format!(
        "INSERT INTO {} (id, file, path, date_available) VALUES ({}, '{}', '{}', NOW())",
        g.table("images"),
        ids[1],
        row.0,
        row.1
    ))
    .await;
    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert!(marks(&g).await.is_empty());
    assert_eq!(s3.keys().await, keys_of(&[1, 2, 3]));
    assert_eq!(g.uploaded().await.len(), 3);
    g.drop_database().await;
}

#[tokio::test]
async fn the_policy_removes_objects_and_formats_only_after_the_duration() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    g.create_formats_table().await;
    let ids = gallery_of(&g, &s3, 6, 6).await;
    g.add_format(ids[0], 1, "tif", &photo_bytes(100, 3000))
        .await;
    drain(config(&g, &s3, NO_MONITOR)).await;
    let with_format = s3.keys().await;
    assert_eq!(with_format.len(), 7, "{with_format:?}");

    piwigo_delete(&g, &ids[..1]).await;
    g.exec(&format!("DELETE FROM {}", g.table("image_format")))
        .await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await, with_format, "deleted today: kept a day");

    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await, keys_of(&[2, 3, 4, 5, 6]));
    let m = marks(&g).await;
    assert_eq!(m.len(), 1);
    assert!(m[0].3, "the removal is recorded");
    let removed: Vec<(String, String, bool)> = sqlx::query_as(&format!(
        "SELECT kind, s3_key, removed_at IS NOT NULL FROM {} ORDER BY kind",
        g.table("s3upload_removed")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(removed[0].0, "format");
    assert_eq!(
        (removed[1].0.as_str(), removed[1].1.clone()),
        ("photo", upload_key("p1.jpg"))
    );
    assert!(removed.iter().all(|r| r.2));
    assert_eq!(
        g.uploaded().await.len(),
        5,
        "the record left with the object"
    );
    let counted = g
        .scalar_i64(&format!(
            "SELECT CAST(SUM(n) AS SIGNED) FROM {}",
            g.table("s3upload_counts")
        ))
        .await;
    assert_eq!(counted, 5);
    g.drop_database().await;
}

#[tokio::test]
async fn an_object_another_photo_still_uses_stays() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 5, 5).await;
    // The same bytes again: recorded as a duplicate of photo 1's object.
    let copy = g
        .add_photo(
            "./upload/2024/05/17/copy.jpg",
            "copy.jpg",
            &photo_bytes(1, 2000),
            None,
        )
        .await;
    enqueue_all(&g).await;
    drain(config(&g, &s3, NO_MONITOR)).await;
    let up = g.uploaded().await;
    assert!(
        up.iter().any(|r| r.0 == copy && r.1 == "duplicate"),
        "{up:?}"
    );

    piwigo_delete(&g, &ids[..1]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(
        s3.keys().await,
        keys_of(&[1, 2, 3, 4, 5]),
        "photo {copy} needs it"
    );
    let kept: Option<u32> = sqlx::query_scalar(&format!(
        "SELECT kept_for FROM {} WHERE image_id = {}",
        g.table("s3upload_removed"),
        ids[0]
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert_eq!(kept, Some(copy));
    g.drop_database().await;
}

#[tokio::test]
async fn much_of_the_gallery_gone_at_once_is_held_until_released() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 10, 5).await;
    piwigo_delete(&g, &ids[5..8]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    let reason = hold(&g).await.expect("held");
    assert!(reason.contains("3 of 10 photos gone at once"), "{reason}");
    assert_eq!(s3.keys().await.len(), 10, "nothing removed while held");
    assert_eq!(marks(&g).await.len(), 3);
    let status = piwigo_s3upload::queue::report::report(&g.pool, &Tables::new(&g.prefix), 10)
        .await
        .unwrap()
        .to_text();
    assert!(
        status.contains("DELETIONS HELD") && status.contains("3 deleted photos keep their objects"),
        "{status}"
    );
    // `check` fails on a hold, saying how to release it.
    let (code, said) = command(&g, &s3, "1d", &["check"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("FAIL  deletions      held since"), "{said}");
    assert!(said.contains("retention --release"), "{said}");

    let out = release(&g, &s3, "1d");
    let (code, said) = command(&g, &s3, "1d", &["check"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(
            "ok    deletions      none held; deleted photos' objects are removed 1day after"
        ),
        "{said}"
    );
    assert!(
        out.contains("released the hold") && out.contains("3 of 10"),
        "{out}"
    );
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await, keys_of(&[1, 2, 3, 4, 5, 9, 10]));
    assert!(hold(&g).await.is_none());
    let d = piwigo_s3upload::queue::report::Deletions::load(&g.pool, &Tables::new(&g.prefix))
        .await
        .unwrap();
    assert_eq!((d.counts.retained, d.counts.objects_removed), (0, 3));
    g.drop_database().await;
}

#[tokio::test]
async fn most_of_one_album_gone_is_held() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    // 4 photos in album 1 among 60: 3 of them are 5% of the gallery, but
    // 75% of the album.
    let ids = gallery_of(&g, &s3, 60, 4).await;
    piwigo_delete(&g, &ids[..3]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    let reason = hold(&g).await.expect("held");
    assert!(reason.contains("3 of 4 photos of album 1"), "{reason}");
    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await.len(), 60);
    g.drop_database().await;
}

/// What a look with the default guard makes of the gallery as it is.
async fn look(g: &Gallery) -> retention::Looked {
    retention::look(
        &g.pool,
        &Tables::new(&g.prefix),
        &Default::default(),
        &mut Sweep::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_dropped_images_table_holds_deletions() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 30, 30).await;
    piwigo_delete(&g, &ids[..1]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    backdate(&g).await;
    assert!(hold(&g).await.is_none(), "one photo of 30 is no alarm");

    let images = g.table("images");
    let aside = g.table("images_aside");
    g.exec(&format!("RENAME TABLE {images} TO {aside}")).await;
    let looked = look(&g).await;
    assert!(looked.held.unwrap().contains("images table is missing"));
    g.exec(&format!("RENAME TABLE {aside} TO {images}")).await;

    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(
        s3.keys().await.len(),
        30,
        "the due removal waits for release"
    );
    release(&g, &s3, "1d");
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await.len(), 29);
    g.drop_database().await;
}

#[tokio::test]
async fn a_restore_in_progress_removes_nothing() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    gallery_of(&g, &s3, 30, 30).await;
    let images = g.table("images");
    let saved = g.table("images_saved");
    // A dump being loaded: the table is made again, empty, then filled.
    g.exec(&format!("CREATE TABLE {saved} AS SELECT * FROM {images}"))
        .await;
    g.exec(&format!("DROP TABLE {images}")).await;
    g.exec(&format!("CREATE TABLE {images} LIKE {saved}")).await;
    g.exec(&format!("ALTER TABLE {images} ADD PRIMARY KEY (id)"))
        .await;
    let looked = look(&g).await;
    assert_eq!(looked.marked, 30);
    assert!(looked.held.unwrap().contains("images table is empty"));
    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await.len(), 30);

    g.exec(&format!("INSERT INTO {images} SELECT * FROM {saved}"))
        .await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert!(marks(&g).await.is_empty(), "every photo came back");
    assert_eq!(s3.keys().await.len(), 30);
    assert_eq!(g.uploaded().await.len(), 30);
    g.drop_database().await;
}

#[tokio::test]
async fn another_database_with_a_copy_of_our_tables_removes_nothing() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    gallery_of(&g, &s3, 30, 30).await;
    // A staging copy: the daemon's tables copied, Piwigo's photos not.
    let other = Gallery::new().await;
    other
        .add_upload(1, "else.jpg", &photo_bytes(500, 2000))
        .await;
    let ours: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE 'piwigo\\_s3upload%'",
    )
    .fetch_all(&g.pool)
    .await
    .unwrap();
    for table in ours {
        other
            .exec(&format!(
                "CREATE TABLE `{table}` LIKE `{}`.`{table}`",
                g.name
            ))
            .await;
        other
            .exec(&format!(
                "INSERT INTO `{table}` SELECT * FROM `{}`.`{table}`",
                g.name
            ))
            .await;
    }
    let cfg = config(&other, &s3, &with_policy("1s"));
    drain(cfg.clone()).await;
    let reason = hold(&other).await.expect("held");
    assert!(reason.contains("not `"), "{reason}");
    other
        .exec(&format!(
            "UPDATE {} SET deleted_at = NOW(3) - INTERVAL 2 DAY",
            other.table("s3upload_deleted")
        ))
        .await;
    drain(cfg).await;
    // Nothing removed. (The other database's photo 1 may be taken for a
    // change of this gallery's photo 1 and sent as a new version beside
    // it: an object more, never one less.)
    let keys = s3.keys().await;
    let photos: Vec<&String> = keys
        .iter()
        .filter(|k| !k.contains("/s3upload-versions/"))
        .collect();
    assert_eq!(photos.len(), 30, "{keys:?}");
    other.drop_database().await;
    g.drop_database().await;
}

#[tokio::test]
async fn a_failed_removal_is_kept_and_tried_again() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 6, 6).await;
    piwigo_delete(&g, &ids[..1]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    backdate(&g).await;

    let down = Unreachable::new();
    let text = config_text(&g, &s3, &s3.secret_key, &with_policy("1d"))
        .replace(&s3.endpoint, &down.endpoint);
    drain(Config::from_toml(&text, Path::new("test.toml"), None).unwrap()).await;
    let (attempts, error): (u32, Option<String>) = sqlx::query_as(&format!(
        "SELECT attempts, last_error FROM {} WHERE image_id = {}",
        g.table("s3upload_deleted"),
        ids[0]
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("delete objects"));
    assert!(!marks(&g).await[0].3, "not removed");
    let pending: i64 = g
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM {} WHERE removed_at IS NULL",
            g.table("s3upload_removed")
        ))
        .await;
    assert_eq!(pending, 1, "the object stays listed until S3 confirms");

    g.exec(&format!(
        "UPDATE {} SET next_attempt_at = NOW(3)",
        g.table("s3upload_deleted")
    ))
    .await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert!(marks(&g).await[0].3);
    assert_eq!(s3.keys().await, keys_of(&[2, 3, 4, 5, 6]));
    g.drop_database().await;
}

#[tokio::test]
async fn a_photo_back_after_its_objects_went_is_sent_again() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 5, 5).await;
    let row: (String, String) = sqlx::query_as(&format!(
        "SELECT CAST(file AS CHAR), path FROM {} WHERE id = {}",
        g.table("images"),
        ids[0]
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    piwigo_delete(&g, &ids[..1]).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    backdate(&g).await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await, keys_of(&[2, 3, 4, 5]));

    // Restored by hand: the file and the row, same id.
    std::fs::write(
        g.root().join(row.1.trim_start_matches("./")),
        photo_bytes(1, 2000),
    )
    .unwrap();
    g.exec(&format!(
        "INSERT INTO {} (id, file, path, date_available) VALUES ({}, '{}', '{}', NOW())",
        g.table("images"),
        ids[0],
        row.0,
        row.1
    ))
    .await;
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert!(marks(&g).await.is_empty());
    // Queued by the look that unmarks it, then sent like any photo.
    drain(config(&g, &s3, &with_policy("1d"))).await;
    assert_eq!(s3.keys().await, keys_of(&[1, 2, 3, 4, 5]));
    assert_eq!(
        s3.get(&upload_key("p1.jpg")).await.unwrap(),
        photo_bytes(1, 2000)
    );
    g.drop_database().await;
}

/// One photo deleted while another comes back: the count is as before, so
/// only the slow sweep sees either.
#[tokio::test]
async fn the_sweep_finds_what_the_count_cannot() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let ids = gallery_of(&g, &s3, 6, 6).await;
    let row: (String, String) = sqlx::query_as(&format!(
        "SELECT CAST(file AS CHAR), path FROM {} WHERE id = {}",
        g.table("images"),
        ids[1]
    ))
    .fetch_one(&g.pool)
    .await
    .unwrap();
    piwigo_delete(&g, &ids[1..2]).await;
    drain(config(&g, &s3, NO_MONITOR)).await;
    assert_eq!(marks(&g).await.len(), 1);

    piwigo_delete(&g, &ids[2..3]).await;
    g.exec(&format!(
        "INSERT INTO {} (id, file, path, date_available) VALUES ({}, '{}', '{}', NOW())",
        g.table("images"),
        ids[1],
        row.0,
        row.1
    ))
    .await;
    let t = Tables::new(&g.prefix);
    let cfg = Default::default();
    let quiet = retention::look(&g.pool, &t, &cfg, &mut Sweep::default())
        .await
        .unwrap();
    assert_eq!(
        (quiet.marked, quiet.returned),
        (0, 0),
        "the count saw nothing"
    );
    let swept = retention::look(&g.pool, &t, &cfg, &mut Sweep::due_now())
        .await
        .unwrap();
    assert_eq!((swept.marked, swept.returned), (1, 1));
    let m = marks(&g).await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, ids[2]);
    g.drop_database().await;
}
