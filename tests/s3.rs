//! The upload primitives against the real S3 server.

mod common;

use std::time::Duration;

use common::faults::{Fault, HttpFaultProxy};
use common::*;
use piwigo_s3upload::digest::digest;
use piwigo_s3upload::piwigo::FileError;
use piwigo_s3upload::s3::Target;
use piwigo_s3upload::s3::upload::PutError;

async fn target(s3: &S3Server) -> (tempfile::TempDir, Target) {
    target_at(&s3.endpoint, &s3.access_key).await
}

/// A target for the server at `endpoint` (the server itself, or a proxy
/// in front of it).
async fn target_at(endpoint: &str, access_key: &str) -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[piwigo]\ndatabase_url = \"mysql://u@127.0.0.1/x\"\nroot = \"/tmp\"\n\
         [s3]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\nforce_path_style = true\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{SECRET_KEY}\"\n\
         [upload]\nmultipart_threshold = \"5MiB\"\npart_size = \"5MiB\"\n",
        endpoint, access_key
    );
    let c =
        piwigo_s3upload::config::Config::from_toml(&text, std::path::Path::new("t"), None).unwrap();
    (dir, Target::new(&c.s3, &c.upload).await)
}

const STALL: Duration = Duration::from_secs(30);

/// S3 checks the bytes against Content-MD5: a file that changed after it
/// was hashed is refused, for single and multipart uploads alike, and the
/// failure is the file's, not S3's.
#[tokio::test]
async fn bytes_that_do_not_match_the_hash_are_refused() {
    let s3 = S3Server::start().await;
    let (dir, t) = target(&s3).await;
    for (name, len) in [("small.jpg", 100_000usize), ("large.mp4", 11 * 1024 * 1024)] {
        let path = dir.path().join(name);
        std::fs::write(&path, photo_bytes(1, len)).unwrap();
        let digest = digest(path.clone(), t.split_for(len as u64), STALL)
            .await
            .unwrap();
        std::fs::write(&path, photo_bytes(2, len)).unwrap();
        let key = t.key_for(&format!("./galleries/a/{name}"), name).unwrap();
        let err = t.put(&key, &path, &digest).await.unwrap_err();
        assert!(
            matches!(err, PutError::Local(FileError::Changed { .. })),
            "{name}: {err}"
        );
        assert!(s3.get(&key.key).await.is_none(), "{name}: nothing stored");
    }
}

/// Parts fail together, and the first answer is not always the cause: a
/// part answered `NoSuchUpload` before the others were refused for their
/// bytes still reports the file as changed.
#[tokio::test]
async fn a_changed_file_is_named_whichever_part_answers_first() {
    let s3 = S3Server::start().await;
    let proxy = HttpFaultProxy::for_endpoint(&s3.endpoint).await;
    let (dir, t) = target_at(&proxy.endpoint(), &s3.access_key).await;
    let len = 11 * 1024 * 1024;
    let path = dir.path().join("large.mp4");
    std::fs::write(&path, photo_bytes(1, len)).unwrap();
    let digest = digest(path.clone(), t.split_for(len as u64), STALL)
        .await
        .unwrap();
    std::fs::write(&path, photo_bytes(2, len)).unwrap();
    let key = t.key_for("./galleries/a/large.mp4", "large.mp4").unwrap();
    proxy.fail_next("PUT", Fault::NoSuchUpload);
    let err = t.put(&key, &path, &digest).await.unwrap_err();
    assert!(
        matches!(err, PutError::Local(FileError::Changed { .. })),
        "{err}"
    );
    assert_eq!(proxy.injected("nosuchupload"), 1);
    assert!(s3.get(&key.key).await.is_none(), "nothing stored");
    proxy.shutdown().await;
}

/// A file that shrank or vanished after it was hashed fails as the file's
/// problem (`failed_file_changed`, `failed_file_missing`), never as an S3
/// failure with no answer.
#[tokio::test]
async fn a_file_that_shrank_or_vanished_is_a_local_failure() {
    let s3 = S3Server::start().await;
    let (dir, t) = target(&s3).await;
    for (name, len) in [("small.jpg", 300_000usize), ("large.mp4", 11 * 1024 * 1024)] {
        let path = dir.path().join(name);
        std::fs::write(&path, photo_bytes(1, len)).unwrap();
        let digest = digest(path.clone(), t.split_for(len as u64), STALL)
            .await
            .unwrap();
        std::fs::write(&path, photo_bytes(1, len / 2)).unwrap();
        let key = t.key_for(&format!("./galleries/a/{name}"), name).unwrap();
        let err = t.put(&key, &path, &digest).await.unwrap_err();
        let PutError::Local(local) = &err else {
            panic!("{name}: {err}");
        };
        assert_eq!(
            local.failure().status.as_str(),
            "failed_file_changed",
            "{name}: {err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = t.put(&key, &path, &digest).await.unwrap_err();
        assert!(
            matches!(err, PutError::Local(FileError::Missing(_))),
            "{name}: {err}"
        );
        assert!(s3.get(&key.key).await.is_none(), "{name}: nothing stored");
    }
}

#[tokio::test]
async fn head_tells_absent_from_present_and_bucket_checks_work() {
    let s3 = S3Server::start().await;
    let (_dir, t) = target(&s3).await;
    assert!(t.head("nothing/here.jpg").await.unwrap().is_none());
    s3.put("some/thing.jpg", b"abc").await;
    let present = t.head("some/thing.jpg").await.unwrap().unwrap();
    assert_eq!(present.size, 3);
    t.check_bucket().await.unwrap();
}
