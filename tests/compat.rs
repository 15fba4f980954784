//! The compatibility suite: the same scenarios against every S3-compatible
//! server the harness can start (rclone, moto, SeaweedFS, Garage), each
//! with signature checking on. A server whose program is not installed is
//! skipped with a note, unless `TEST_S3_SERVERS` (a comma-separated list,
//! as `scripts/test.sh` sets it) names it: then its absence fails the run.
//! `TEST_S3_SERVERS` also limits the run to the servers it names.

mod common;

use std::time::Duration;

use common::*;
use md5::Digest;
use piwigo_s3upload::config::Checksum;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::digest::PartCheck;
use piwigo_s3upload::restore::{self, Mode};
use piwigo_s3upload::verify::{self, bucket::Problem};

/// The server for one test, or `None` when the test is skipped.
async fn server(kind: ServerKind) -> Option<S3Server> {
    let named = std::env::var("TEST_S3_SERVERS").ok();
    let wanted = named
        .as_deref()
        .map(|list| list.split(',').any(|n| n.trim() == kind.name()));
    match wanted {
        Some(false) => {
            eprintln!("skipped: TEST_S3_SERVERS does not name {}", kind.name());
            None
        }
        Some(true) => {
            assert!(
                kind.present(),
                "{} is named in TEST_S3_SERVERS but {} is not installed (scripts/test.sh --servers installs it)",
                kind.name(),
                kind.binary().display()
            );
            Some(S3Server::start_kind(kind).await)
        }
        None if kind.present() => Some(S3Server::start_kind(kind).await),
        None => {
            eprintln!(
                "skipped: {} is not installed (scripts/test.sh --servers installs it)",
                kind.name()
            );
            None
        }
    }
}

/// Photos in, objects out: every byte arrives, the records hold the md5,
/// a photo whose key holds other bytes is never overwritten, and running
/// again sends nothing.
async fn main_flow(s3: S3Server) {
    let g = Gallery::new().await;
    drain(config(&g, &s3, "")).await;
    let taken = photo_bytes(999, 4000);
    s3.put(&upload_key("taken.jpg"), &taken).await;
    let mut sent = Vec::new();
    for n in 0..6 {
        let bytes = photo_bytes(n, 20_000 + n as usize);
        g.add_upload(n, &format!("m{n}.jpg"), &bytes).await;
        sent.push(bytes);
    }
    let other = g.add_upload(9, "taken.jpg", &photo_bytes(9, 4000)).await;
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!((s.uploaded, s.failed), (6, 1), "{s:?}");
    for (n, bytes) in sent.iter().enumerate() {
        let key = upload_key(&format!("m{n}.jpg"));
        assert_eq!(&s3.get(&key).await.unwrap(), bytes, "{key}");
    }
    let up = g.uploaded().await;
    assert_eq!(up.len(), 6);
    for (_, outcome, key, md5) in &up {
        assert_eq!(outcome, "uploaded");
        let n: usize = key["photos/20240517120000-m".len()..key.len() - 4]
            .parse()
            .unwrap();
        assert_eq!(md5, &md5_hex(&sent[n]));
    }
    assert_eq!(s3.get(&upload_key("taken.jpg")).await.unwrap(), taken);
    assert_eq!(
        g.queue_statuses().await,
        vec![(other, "failed_key_taken".to_string())]
    );
    let again = drain(config(&g, &s3, "")).await;
    assert_eq!(again.uploaded, 0, "{again:?}");
    g.drop_database().await;
}

/// A file above the multipart threshold arrives whole, and the upload
/// leaves no multipart upload open.
async fn multipart(s3: S3Server) {
    let g = Gallery::new().await;
    drain(config(&g, &s3, "")).await;
    let big = photo_bytes(77, 13 * 1024 * 1024 + 12345);
    g.add_upload(1, "video.mp4", &big).await;
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, 1, "{s:?}");
    let got = s3.get(&upload_key("video.mp4")).await.unwrap();
    assert_eq!(got.len(), big.len());
    assert_eq!(md5_hex(&got), md5_hex(&big));
    assert_eq!(g.uploaded().await[0].3, md5_hex(&big));
    let open = s3.open_uploads().await;
    assert!(open.is_empty(), "{open:?}");
    g.drop_database().await;
}

/// Different photos meeting at one key at once (`key_format = "none"`):
/// one of each pair is sent, the other never replaces it.
async fn same_key(s3: S3Server) {
    const PAIRS: u32 = 6;
    let g = Gallery::new().await;
    let text = config_text(&g, &s3, &s3.secret_key, "")
        .replace("key_format = \"file\"", "key_format = \"none\"")
        .replace(
            "workers = 4",
            "workers = 8\nprevent_duplicates_by_md5 = false",
        );
    let load =
        || piwigo_s3upload::config::Config::from_toml(&text, std::path::Path::new("t"), None);
    drain(load().unwrap()).await;
    let mut pairs = Vec::new();
    for n in 0..PAIRS {
        let name = format!("IMG_{n:04}.JPG");
        let a = photo_bytes(100 + n, 30_000 + n as usize);
        let b = photo_bytes(500 + n, 30_000 + n as usize);
        let ida = g
            .add_photo(
                &format!("./upload/2024/05/17/20240517120000-{:08x}.jpg", 2 * n),
                &name,
                &a,
                None,
            )
            .await;
        let idb = g
            .add_photo(
                &format!("./upload/2024/05/18/20240518090000-{:08x}.jpg", 2 * n + 1),
                &name,
                &b,
                None,
            )
            .await;
        pairs.push([(ida, a), (idb, b)]);
    }
    let s = tokio::time::timeout(Duration::from_secs(180), drain(load().unwrap()))
        .await
        .unwrap();
    assert_eq!((s.uploaded, s.failed), (6, 6), "{s:?}");
    let uploaded = g.uploaded().await;
    let queued = g.queue_statuses().await;
    for (n, [(ida, a), (idb, b)]) in pairs.iter().enumerate() {
        let key = format!("photos/IMG_{n:04}.JPG");
        let object = s3.get(&key).await.expect("one of the pair is stored");
        let (winner, loser) = if object == *a {
            (*ida, *idb)
        } else {
            assert_eq!(object, *b, "{key} holds one of the two photos");
            (*idb, *ida)
        };
        assert!(
            uploaded.iter().any(|u| u.0 == winner && u.1 == "uploaded"),
            "{key}"
        );
        assert!(
            queued.contains(&(loser, "failed_key_taken".to_string())),
            "{key}: {queued:?}"
        );
    }
    g.drop_database().await;
}

/// A wrong secret is refused with 403 (the signature is checked); once it
/// is fixed the photo goes at once.
async fn wrong_secret(s3: S3Server) {
    let g = Gallery::new().await;
    drain(config(&g, &s3, "")).await;
    let bytes = photo_bytes(5, 10_000);
    g.add_upload(1, "k.jpg", &bytes).await;
    let mut bad = config_with_secret(&g, &s3, "wrong-secret-value", "");
    bad.upload.retry_backoff_min = Duration::from_secs(3600);
    bad.upload.retry_backoff_max = Duration::from_secs(3600);
    let s = drain(bad).await;
    assert_eq!(s.failed, 1);
    assert_eq!(g.queue_statuses().await[0].1, "failed_code_403");
    assert!(s3.get(&upload_key("k.jpg")).await.is_none());
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, 1);
    assert_eq!(s3.get(&upload_key("k.jpg")).await.unwrap(), bytes);
    g.drop_database().await;
}

/// Photos uploaded, one of them multipart: their files by image id.
async fn backed_up(g: &Gallery, s3: &S3Server) -> Vec<(u32, std::path::PathBuf, Vec<u8>)> {
    drain(config(g, s3, "")).await;
    let mut files = Vec::new();
    for i in 1..=4u32 {
        let len = if i == 1 {
            7 * 1024 * 1024
        } else {
            3000 + i as usize
        };
        let bytes = photo_bytes(i, len);
        let id = g.add_upload(i, &format!("p{i}.jpg"), &bytes).await;
        let path = g
            .root()
            .join(format!("upload/2024/05/17/20240517120000-{i:08x}.jpg"));
        files.push((id, path, bytes));
    }
    let s = drain(config(g, s3, "")).await;
    assert_eq!(s.uploaded, 4, "{s:?}");
    files
}

/// `verify` finds a clean backup clean (reading every object back) and
/// an object replaced by other bytes of the same size.
async fn verify_finds_damage(s3: S3Server) {
    let g = Gallery::new().await;
    let files = backed_up(&g, &s3).await;
    let c = config(&g, &s3, "");
    let t = Tables::new(&g.prefix);
    let read_all = || verify::Options {
        read_data: Some(100.0),
        ..verify::Options::default()
    };
    let r = verify::run(&c, &g.pool, &t, read_all()).await.unwrap();
    assert!(r.ok, "{}", verify::to_text(&r));
    assert_eq!(r.bucket.intact, 4, "{}", verify::to_text(&r));
    let up = g.uploaded().await;
    let damaged = files[2].0;
    let key = &up.iter().find(|u| u.0 == damaged).unwrap().2;
    s3.put(key, &photo_bytes(99, files[2].2.len())).await;
    let r = verify::run(&c, &g.pool, &t, read_all()).await.unwrap();
    let found: Vec<(u32, Problem)> = r
        .bucket
        .problems
        .iter()
        .map(|p| (p.image_id, p.problem))
        .collect();
    assert_eq!(
        found,
        vec![(damaged, Problem::OtherBytes)],
        "{}",
        verify::to_text(&r)
    );
    g.drop_database().await;
}

/// `restore` brings every file back byte-identical, the multipart one too.
async fn restore_everything(s3: S3Server) {
    let g = Gallery::new().await;
    let files = backed_up(&g, &s3).await;
    let c = config(&g, &s3, "");
    std::fs::remove_dir_all(g.root().join("upload")).unwrap();
    let opts = restore::Options {
        mode: Mode::default(),
        jobs: 4,
        ..restore::Options::default()
    };
    let s = restore::from_records(&c, &g.pool, &Tables::new(&g.prefix), &opts)
        .await
        .unwrap();
    assert!(s.ok(), "{}", s.to_text());
    assert_eq!(s.restored, 4, "{}", s.to_text());
    for (_, path, bytes) in &files {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }
    g.drop_database().await;
}

/// The plugin's download link: a presigned GET gives the photo's bytes;
/// the same link with its signature altered is refused.
async fn presigned_links(s3: S3Server) {
    let g = Gallery::new().await;
    drain(config(&g, &s3, "")).await;
    let bytes = photo_bytes(3, 50_000);
    let id = g.add_upload(3, "link.jpg", &bytes).await;
    assert_eq!(drain(config(&g, &s3, "")).await.uploaded, 1);
    let c = config(&g, &s3, "");
    let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
    let answer = piwigo_s3upload::companion::presign::answer(
        &g.pool,
        &Tables::new(&g.prefix),
        &target,
        &piwigo_s3upload::redact::Redactor::default(),
        Duration::from_secs(300),
        &id.to_string(),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = url::Url::parse(json["url"].as_str().unwrap()).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap());
    let (status, got) = common::servers::http(s3.port(), "GET", &target, &[], b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
    assert_eq!(got, bytes);
    let forged = target.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let (status, _) = common::servers::http(s3.port(), "GET", &forged, &[], b"").await;
    assert_eq!(status, 403);
    g.drop_database().await;
}

/// What each server answered to the start-up probe, as measured (the
/// README's table says the same).
fn honours_if_none_match(kind: ServerKind) -> bool {
    match kind {
        ServerKind::Rclone | ServerKind::Garage => false,
        ServerKind::Moto | ServerKind::Seaweedfs => true,
    }
}

/// `s3.honours_if_none_match = "auto"`: the probe finds what the server
/// does, twice in a row (the second start meets no leftover), and leaves
/// no object behind.
async fn probe(s3: S3Server) {
    let g = Gallery::new().await;
    let c = config(&g, &s3, "");
    let want = honours_if_none_match(s3.kind);
    for _ in 0..2 {
        let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
        // The daemon uploads while its probes run, through clones of the
        // target: the HEAD stays until the answer, which every clone takes.
        let uploading = target.clone();
        assert!(!uploading.honours_if_none_match());
        let settled = target
            .settle_if_none_match(piwigo_s3upload::config::IfNoneMatch::Auto)
            .await;
        assert_eq!(settled.honoured, want, "{}", settled.why);
        assert_eq!(target.honours_if_none_match(), want);
        assert_eq!(uploading.honours_if_none_match(), want);
        assert!(s3.keys().await.is_empty(), "{:?}", s3.keys().await);
    }
    // Daemons starting together (two on one bucket by mistake, or a cron
    // run beside the service) probe the same key at once. An answer
    // muddled by the other's writes may only ever keep the HEAD, and the
    // probe object is gone after. (rclone's listing can go on showing it
    // after such a race while GET answers 404: it is read, not listed.)
    let starts = (0..8).map(|_| async {
        let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
        target
            .settle_if_none_match(piwigo_s3upload::config::IfNoneMatch::Auto)
            .await
    });
    for settled in futures_util::future::join_all(starts).await {
        assert!(!settled.honoured || want, "{}", settled.why);
    }
    assert_eq!(s3.get("photos/s3upload-probe/if-none-match").await, None);
    let left = s3.keys().await;
    assert!(
        left.iter()
            .all(|k| k == "photos/s3upload-probe/if-none-match"),
        "{left:?}"
    );
    // `s3.checksum`: CRC32C exactly where the server refuses a wrong one,
    // whether asked for by `auto` or by `crc32c`; never an open upload left.
    let crc_checked = expected(s3.kind).part_crc32c == "checked";
    for setting in [Checksum::Auto, Checksum::Crc32c, Checksum::ContentMd5] {
        let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
        let uploading = target.clone();
        assert_eq!(uploading.part_check(), PartCheck::ContentMd5);
        let settled = target.settle_checksum(setting).await;
        let want = match setting {
            Checksum::ContentMd5 => PartCheck::ContentMd5,
            _ if crc_checked => PartCheck::Crc32c,
            _ => PartCheck::ContentMd5,
        };
        assert_eq!(settled.check, want, "{setting:?}: {}", settled.why);
        assert_eq!(uploading.part_check(), want);
        assert_eq!(s3.open_uploads().await, Vec::<String>::new(), "{setting:?}");
    }
    g.drop_database().await;
}

/// What a server did in each probe of the README's table.
#[derive(Debug, PartialEq, Eq)]
struct Measured {
    /// A wrong Content-MD5 is refused.
    content_md5_checked: bool,
    /// A part sent with a wrong `x-amz-checksum-crc32c` header.
    part_crc32c: &'static str,
    crc32c: &'static str,
    crc64nvme: &'static str,
    /// "md5-of-parts" (AWS's `<md5 of the part md5s>-N`), "md5" (of the
    /// whole object) or "other".
    multipart_etag: &'static str,
    /// An open multipart upload is listed.
    lists_multipart_uploads: bool,
}

fn verdict(
    answer: Result<piwigo_s3upload::s3::probe::Verdict, piwigo_s3upload::s3::S3Error>,
) -> &'static str {
    use piwigo_s3upload::s3::probe::Verdict;
    match answer {
        Ok(Verdict::Checked) => "checked",
        Ok(Verdict::Unchecked) => "unchecked",
        Ok(Verdict::Refused(why)) => {
            eprintln!("refused: {why}");
            "refused"
        }
        Err(e) => {
            eprintln!("failed: {e}");
            "failed"
        }
    }
}

/// The measured answers, one server at a time, over plain HTTP (where the
/// SDK signs each aws-chunked chunk as well as sending the trailer).
fn expected(kind: ServerKind) -> Measured {
    let (content_md5_checked, part_crc32c, trailers) = match kind {
        ServerKind::Rclone => (true, "unchecked", "unchecked"),
        // moto stores a body whatever its Content-MD5 says.
        ServerKind::Moto => (false, "unchecked", "unchecked"),
        // SeaweedFS 4.48 answers 500 to a signed aws-chunked trailer, but
        // checks a CRC32C sent as a header.
        ServerKind::Seaweedfs => (true, "checked", "failed"),
        // Garage 2.5.0 answers 400 "Invalid payload signature".
        ServerKind::Garage => (true, "checked", "refused"),
    };
    Measured {
        content_md5_checked,
        part_crc32c,
        crc32c: trailers,
        crc64nvme: trailers,
        multipart_etag: "md5-of-parts",
        lists_multipart_uploads: true,
    }
}

async fn behaviours(s3: S3Server) {
    use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
    let g = Gallery::new().await;
    let c = config(&g, &s3, "");
    let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
    let client = s3.client();
    let content_md5_checked = target.probe_content_md5().await.unwrap();
    let part_crc32c = verdict(target.probe_part_crc32c().await);
    let crc32c = verdict(target.probe_trailer(ChecksumAlgorithm::Crc32C).await);
    let crc64nvme = verdict(target.probe_trailer(ChecksumAlgorithm::Crc64Nvme).await);
    let parts = [photo_bytes(1, 5 * 1024 * 1024), photo_bytes(2, 1000)];
    let id = match client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mp.bin")
        .send()
        .await
    {
        Ok(out) => out.upload_id.unwrap(),
        // rclone answers with a root element the SDK refuses; the daemon
        // reads the id from the body (s3::upload), as this does.
        Err(aws_sdk_s3::error::SdkError::ServiceError(se)) if se.raw().status().is_success() => {
            let body = String::from_utf8_lossy(se.raw().body().bytes().unwrap()).into_owned();
            let start = body.find("<UploadId>").unwrap() + "<UploadId>".len();
            body[start..body.find("</UploadId>").unwrap()].to_owned()
        }
        Err(e) => panic!("{e:?}"),
    };
    let listed = client
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .map(|o| o.uploads().iter().any(|u| u.key() == Some("mp.bin")))
        .unwrap_or(false);
    let mut done = Vec::new();
    let mut part_md5s = md5::Md5::new();
    for (n, bytes) in parts.iter().enumerate() {
        let out = client
            .upload_part()
            .bucket(BUCKET)
            .key("mp.bin")
            .upload_id(&id)
            .part_number(n as i32 + 1)
            .body(bytes.clone().into())
            .send()
            .await
            .unwrap();
        part_md5s.update(md5::Md5::digest(bytes));
        done.push(
            CompletedPart::builder()
                .part_number(n as i32 + 1)
                .set_e_tag(out.e_tag)
                .build(),
        );
    }
    let etag = client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .e_tag
        .unwrap_or_default();
    let etag = etag.trim_matches('"');
    let whole = md5_hex(&parts.concat());
    let of_parts = format!("{}-2", piwigo_s3upload::digest::hex(&part_md5s.finalize()));
    let measured = Measured {
        content_md5_checked,
        part_crc32c,
        crc32c,
        crc64nvme,
        multipart_etag: if etag == of_parts {
            "md5-of-parts"
        } else if etag == whole {
            "md5"
        } else {
            "other"
        },
        lists_multipart_uploads: listed,
    };
    eprintln!("{}: {measured:?} (multipart ETag {etag})", s3.kind.name());
    assert_eq!(measured, expected(s3.kind));
    g.drop_database().await;
}

/// `check` says how existing objects are guarded and how uploads are kept
/// intact on this server, as measured.
async fn check_reports_the_modes(s3: S3Server) {
    let g = Gallery::new().await;
    let c = config(&g, &s3, "");
    let findings = piwigo_s3upload::check::run(&c).await;
    let text = piwigo_s3upload::check::render(&findings);
    let line = |what: &str| {
        findings
            .iter()
            .find(|f| f.what == what)
            .unwrap_or_else(|| panic!("no {what} line:\n{text}"))
            .clone()
    };
    let overwrites = line("s3 overwrites");
    assert!(overwrites.ok, "{text}");
    let skips_head = overwrites.detail.contains("(no HEAD before each upload)");
    assert_eq!(skips_head, honours_if_none_match(s3.kind), "{text}");
    assert_eq!(
        line("s3 integrity").ok,
        expected(s3.kind).content_md5_checked,
        "{text}"
    );
    assert!(
        line("s3 checksums").detail.contains("CRC64NVME: "),
        "{text}"
    );
    let parts = line("s3 parts");
    assert_eq!(
        parts.detail.contains("against its CRC32C"),
        expected(s3.kind).part_crc32c == "checked",
        "{text}"
    );
    assert!(s3.keys().await.is_empty(), "{:?}", s3.keys().await);
    g.drop_database().await;
}

/// A proxy flips one bit of a request body on its way to the server: of a
/// single PUT, then of one part of a multipart upload. The photo is never
/// recorded with bytes other than its file's: the server refuses them
/// (Content-MD5), or the ETag it gives betrays them (moto stores whatever
/// arrives). Where the server refused them, the next attempt sends the
/// photo whole.
async fn altered_on_the_way(s3: S3Server) {
    for checksum in [Checksum::ContentMd5, Checksum::Crc32c] {
        altered_with(&s3, checksum).await;
    }
}

async fn altered_with(s3: &S3Server, checksum: Checksum) {
    use common::faults::{Fault, HttpFaultProxy};
    let g = Gallery::new().await;
    let proxy = HttpFaultProxy::start(s3.port()).await;
    // Set as the probe finds it, so that the probe's own PUTs do not take
    // the scripted fault.
    let text = config_text(&g, s3, &s3.secret_key, "")
        .replace(&s3.endpoint, &proxy.endpoint())
        .replace(
            "key_format = \"file\"\n",
            &format!(
                "key_format = \"file\"\nhonours_if_none_match = {}\nchecksum = \"{}\"\n",
                honours_if_none_match(s3.kind),
                checksum.as_str()
            ),
        );
    let load =
        || piwigo_s3upload::config::Config::from_toml(&text, std::path::Path::new("t"), None);
    drain(load().unwrap()).await;
    let mode = checksum.as_str();
    let photos = [
        (1, format!("{mode}-single.jpg"), photo_bytes(1, 20_000)),
        // Above the tests' 6 MiB threshold: two parts of 5 MiB and 2 MiB.
        (
            2,
            format!("{mode}-parts.mp4"),
            photo_bytes(2, 7 * 1024 * 1024),
        ),
    ];
    for (n, name, bytes) in &photos {
        let name = name.as_str();
        let id = g.add_upload(*n, name, bytes).await;
        proxy.fail_next("PUT", Fault::FlipBodyByte);
        drain(load().unwrap()).await;
        assert_eq!(proxy.injected("flip"), *n as usize, "{name}");
        let recorded = g.uploaded().await.into_iter().find(|u| u.0 == id);
        assert!(
            recorded.is_none(),
            "{name} recorded after its bytes were altered: {recorded:?}"
        );
        // Due again now, without the fault.
        g.exec(&format!(
            "UPDATE {} SET next_attempt_at = NOW(3)",
            g.table("s3upload_queue")
        ))
        .await;
        drain(load().unwrap()).await;
        let key = upload_key(name);
        match g.uploaded().await.into_iter().find(|u| u.0 == id) {
            Some((_, outcome, k, md5)) => {
                assert_eq!((outcome.as_str(), k.as_str()), ("uploaded", key.as_str()));
                assert_eq!(md5, md5_hex(bytes), "{name}");
                assert_eq!(&s3.get(&key).await.unwrap(), bytes, "{name}");
            }
            None => {
                // Only a server that stored the altered bytes of a single
                // PUT leaves the photo out: its key holds those bytes, so
                // it is never overwritten, and waits as key_taken.
                assert!(
                    !expected(s3.kind).content_md5_checked && *n == 1,
                    "{name} not uploaded"
                );
                let status: Vec<String> = g
                    .queue_statuses()
                    .await
                    .into_iter()
                    .filter(|q| q.0 == id)
                    .map(|q| q.1)
                    .collect();
                assert_eq!(status, ["failed_key_taken"], "{name}");
                assert_ne!(&s3.get(&key).await.unwrap(), bytes);
            }
        }
    }
    g.drop_database().await;
}

/// A file rewritten (same size, other bytes) after it was hashed, as a
/// writer busy with it while it streams out: the upload fails as the
/// file's (`failed_file_changed`), single and multipart alike, and no
/// record holds a wrong md5. Servers that check Content-MD5 store nothing;
/// moto stores the single PUT, and its ETag tells.
async fn changed_after_hashing(s3: S3Server) {
    use piwigo_s3upload::piwigo::FileError;
    use piwigo_s3upload::s3::upload::PutError;
    let g = Gallery::new().await;
    let c = config(&g, &s3, "");
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (PartCheck::ContentMd5, "small.jpg", 100_000usize),
        (PartCheck::ContentMd5, "large.mp4", 7 * 1024 * 1024),
        (PartCheck::Crc32c, "crc-large.mp4", 7 * 1024 * 1024),
    ];
    for (check, name, len) in files {
        let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
        // CRC32C parts go only to a server shown to check them.
        if check == PartCheck::Crc32c && target.settle_checksum(Checksum::Auto).await.check != check
        {
            continue;
        }
        let path = dir.path().join(name);
        std::fs::write(&path, photo_bytes(1, len)).unwrap();
        let digest = piwigo_s3upload::digest::digest(
            path.clone(),
            target.split_for(len as u64),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        std::fs::write(&path, photo_bytes(2, len)).unwrap();
        let key = target
            .key_for(&format!("./galleries/a/{name}"), name)
            .unwrap();
        let err = target.put(&key, &path, &digest).await.unwrap_err();
        assert!(
            matches!(err, PutError::Local(FileError::Changed { .. })),
            "{name}: {err}"
        );
        let stored = s3.get(&key.key).await;
        if expected(s3.kind).content_md5_checked || len > 6 * 1024 * 1024 {
            assert!(stored.is_none(), "{name}: nothing stored");
        }
    }
    g.drop_database().await;
}

/// moto checks a signature only in the Authorization header: with its
/// signature checking on, every presigned GET fails with a 500 (it looks
/// for that header), so links can be tried only on the others.
fn presign_checked(kind: ServerKind) -> bool {
    kind != ServerKind::Moto
}

macro_rules! suite {
    ($($server:ident => $kind:expr;)*) => {$(
        mod $server {
            use super::*;

            #[tokio::test]
            async fn main_flow() {
                if let Some(s3) = server($kind).await {
                    super::main_flow(s3).await;
                }
            }

            #[tokio::test]
            async fn probe() {
                if let Some(s3) = server($kind).await {
                    super::probe(s3).await;
                }
            }

            #[tokio::test]
            async fn behaviours() {
                if let Some(s3) = server($kind).await {
                    super::behaviours(s3).await;
                }
            }

            #[tokio::test]
            async fn check_reports_the_modes() {
                if let Some(s3) = server($kind).await {
                    super::check_reports_the_modes(s3).await;
                }
            }

            #[tokio::test]
            async fn altered_on_the_way() {
                if let Some(s3) = server($kind).await {
                    super::altered_on_the_way(s3).await;
                }
            }

            #[tokio::test]
            async fn changed_after_hashing() {
                if let Some(s3) = server($kind).await {
                    super::changed_after_hashing(s3).await;
                }
            }

            #[tokio::test]
            async fn multipart() {
                if let Some(s3) = server($kind).await {
                    super::multipart(s3).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn same_key() {
                if let Some(s3) = server($kind).await {
                    super::same_key(s3).await;
                }
            }

            #[tokio::test]
            async fn wrong_secret() {
                if let Some(s3) = server($kind).await {
                    super::wrong_secret(s3).await;
                }
            }

            #[tokio::test]
            async fn verify_finds_damage() {
                if let Some(s3) = server($kind).await {
                    super::verify_finds_damage(s3).await;
                }
            }

            #[tokio::test]
            async fn restore_everything() {
                if let Some(s3) = server($kind).await {
                    super::restore_everything(s3).await;
                }
            }

            #[tokio::test]
            async fn presigned_links() {
                if !presign_checked($kind) {
                    eprintln!("skipped: {} cannot check a presigned link's signature", $kind.name());
                    return;
                }
                if let Some(s3) = server($kind).await {
                    super::presigned_links(s3).await;
                }
            }
        }
    )*};
}

suite! {
    rclone => ServerKind::Rclone;
    moto => ServerKind::Moto;
    seaweedfs => ServerKind::Seaweedfs;
    garage => ServerKind::Garage;
}
