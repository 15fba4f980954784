//! Piwigo's formats (RAW, TIFF... in `pwg_format/`) against a real MariaDB
//! and a real S3 server: sent next to their photo, never over an existing
//! object, verified and restored like the photo.

mod common;

use std::path::PathBuf;

use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::restore::{self, Mode, Options};
use piwigo_s3upload::verify::{self, bucket::Problem};

/// Piwigo 13+'s table, as its installer makes it.
async fn formats_table(g: &Gallery) {
    g.exec(&format!(
        "CREATE TABLE {} (format_id int(11) unsigned NOT NULL auto_increment, \
         image_id mediumint(8) unsigned NOT NULL DEFAULT '0', ext varchar(255) NOT NULL, \
         filesize mediumint(9) unsigned DEFAULT NULL, PRIMARY KEY (format_id)) ENGINE=MyISAM",
        g.table("image_format")
    ))
    .await;
}

/// Adds a format the way Piwigo does: file in place first, then the row.
async fn add_format(g: &Gallery, image_id: u32, n: u32, ext: &str, bytes: &[u8]) -> PathBuf {
    let path = g.root().join(format!(
        "upload/2024/05/17/pwg_format/20240517120000-{n:08x}.{ext}"
    ));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    g.exec(&format!(
        "INSERT INTO {} (image_id, ext, filesize) VALUES ({image_id}, '{ext}', {})",
        g.table("image_format"),
        bytes.len() / 1024
    ))
    .await;
    path
}

#[tokio::test]
async fn formats_are_sent_verified_and_restored_like_photos() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    formats_table(&g).await;
    let c = config(&g, &s3, "");
    drain(c.clone()).await;
    let photo = photo_bytes(1, 4000);
    let id = g.add_upload(1, "beach.jpg", &photo).await;
    // A RAW with the photo, and a TIFF above the multipart threshold.
    let raw = photo_bytes(2, 9000);
    let raw_path = add_format(&g, id, 1, "cr2", &raw).await;
    let tif = photo_bytes(3, 7 * 1024 * 1024);
    let tif_path = add_format(&g, id, 1, "tif", &tif).await;
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
    add_format(&g, id, 1, "psd", &psd).await;
    drain(c.clone()).await;
    assert_eq!(
        s3.get("photos/20240517120000-beach.psd").await.unwrap(),
        b"someone else's"
    );
    let statuses: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT ext, status FROM {} ORDER BY ext",
        g.table("s3upload_formats")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
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
