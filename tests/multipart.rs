//! Multipart uploads a killed daemon left unfinished are aborted at start,
//! even by a run with nothing to upload; live uploads and uploads outside
//! the prefix are left alone.

mod common;

use std::time::Duration;

use common::faults::HttpFaultProxy;
use common::*;

async fn start_upload(s3: &S3Server, key: &str) -> String {
    let client = s3.client();
    let created = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await;
    // `rclone serve s3` answers with a root element the SDK rejects; the
    // daemon reads the id from the body the same way.
    let id = match created {
        Ok(out) => out.upload_id.unwrap(),
        Err(aws_sdk_s3::error::SdkError::ServiceError(se)) => {
            let body = String::from_utf8_lossy(se.raw().body().bytes().unwrap()).into_owned();
            let start = body.find("<UploadId>").unwrap() + "<UploadId>".len();
            let end = body.find("</UploadId>").unwrap();
            body[start..end].to_owned()
        }
        Err(e) => panic!("{e:?}"),
    };
    client
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(photo_bytes(7, 100_000).into())
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn uploads_left_by_a_killed_daemon_are_aborted_at_start() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let mut c = config(&g, &s3, "");
    c.upload.claim_lease = Duration::from_secs(3);
    c.monitor.enabled = false;
    let live = g.add_upload(1, "live.jpg", &photo_bytes(1, 2000)).await;
    start_upload(&s3, "photos/20240517120000-left-behind.jpg").await;
    start_upload(&s3, &upload_key("live.jpg")).await;
    start_upload(&s3, "another-program/video.mp4").await;
    assert_eq!(s3.open_uploads().await.len(), 3);

    // Younger than the lease: maybe a daemon that is still running.
    drain(c.clone()).await;
    assert_eq!(s3.open_uploads().await.len(), 3);

    tokio::time::sleep(Duration::from_secs(4)).await;
    // A photo another daemon is uploading right now, for longer than the
    // lease: its claim is alive, so its upload is too. (The claim runs out
    // a few seconds later and this run uploads the photo itself.)
    g.exec(&format!(
        "INSERT INTO {} (image_id, source, claimed_by, claimed_until) \
         VALUES ({live}, 'batch', 'other-daemon', NOW(3) + INTERVAL 6 SECOND)",
        g.table("s3upload_queue")
    ))
    .await;
    drain(c).await;
    assert_eq!(
        s3.open_uploads().await,
        [
            "another-program/video.mp4".to_string(),
            upload_key("live.jpg")
        ]
    );
    g.drop_database().await;
}

/// A run with nothing to upload has nothing to wait for, and still sweeps:
/// it waits for the sweep it started beside its uploads, here slowed by a
/// link of 400 ms per request so that the run's own end comes first.
#[tokio::test]
async fn a_run_with_nothing_to_upload_still_sweeps() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let proxy = HttpFaultProxy::start(s3.port()).await;
    proxy.set_latency(Duration::from_millis(400));
    let mut c = config(&g, &s3, "");
    c.s3.endpoint = Some(proxy.endpoint());
    c.upload.claim_lease = Duration::from_secs(1);
    c.monitor.enabled = false;
    start_upload(&s3, "photos/20240517120000-left-behind.jpg").await;
    start_upload(&s3, "another-program/video.mp4").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let summary = drain(c).await;
    assert_eq!(summary.uploaded, 0);
    assert_eq!(
        s3.open_uploads().await,
        ["another-program/video.mp4".to_string()]
    );
    g.drop_database().await;
}
