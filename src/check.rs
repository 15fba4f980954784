//! `check`: every part of the setup, each with what is wrong and the fix.

use std::fmt::Write;

use crate::config::Config;
use crate::db::{self, DbError, Tables};
use crate::piwigo::{self, GalleryRoot};
use crate::queue::{migrate, schema};
use crate::redact::Redactor;
use crate::s3::Target;
use crate::s3::probe::Verdict;
use aws_sdk_s3::types::ChecksumAlgorithm;
use sqlx::MySqlPool;

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub ok: bool,
    pub what: &'static str,
    pub detail: String,
}

/// Runs every check (the config itself was loaded by the caller) and
/// returns the findings; none of them stops the others.
pub async fn run(config: &Config) -> Vec<Finding> {
    let redact = Redactor::new(config.secrets());
    let mut out = Vec::new();
    let mut push = |ok: bool, what: &'static str, detail: String| {
        out.push(Finding {
            ok,
            what,
            detail: redact.scrub(&detail),
        })
    };

    for origin in &config.origins {
        push(
            true,
            "setting",
            format!("{} from {}", origin.setting, origin.from),
        );
    }

    match db::connect(config.database_url(), 2).await {
        Err(e) => push(false, "database", e.to_string()),
        Ok(pool) => {
            push(
                true,
                "database",
                format!("connected to {}", db::describe_url(config.database_url())),
            );
            let t = Tables::new(&config.piwigo.table_prefix);
            match crate::grants::require(&pool, &t, crate::grants::Uses::of(config)).await {
                Ok(n) => push(
                    true,
                    "privileges",
                    format!(
                        "the database user holds the {n} privileges this version needs (`piwigo-s3upload grants` lists them)"
                    ),
                ),
                Err(e) => push(false, "privileges", e.to_string()),
            }
            match piwigo::missing_tables(&pool, &t.prefix).await {
                Ok(missing) if missing.is_empty() => push(
                    true,
                    "piwigo tables",
                    format!(
                        "{}images and the album, tag and caddie tables exist",
                        t.prefix
                    ),
                ),
                Ok(missing) => push(
                    false,
                    "piwigo tables",
                    format!(
                        "missing {}; check the database name in piwigo.database_url and piwigo.table_prefix ($prefixeTable in local/config/database.inc.php)",
                        missing.join(", ")
                    ),
                ),
                Err(e) => push(false, "piwigo tables", e.to_string()),
            }
            daemon_tables(&pool, &t, &mut push).await;
            // A hold waits for the admin: nothing is deleted until then.
            match crate::queue::deleted::hold(&pool, &t).await {
                Ok(Some((reason, since))) => push(
                    false,
                    "deletions",
                    format!(
                        "held since {since}: {reason}; look with `piwigo-s3upload retention`, then `retention --release` if those photos were deleted on purpose"
                    ),
                ),
                Ok(None) => push(true, "deletions", deletions_policy(config)),
                // Before the daemon's first start: nothing to hold yet.
                Err(DbError::Query { source, .. }) if db::is_missing_table(&source) => {
                    push(true, "deletions", deletions_policy(config));
                }
                Err(e) => push(false, "deletions", e.to_string()),
            }
            for (ok, detail) in crate::snapshot::grants::findings(config, &pool, &t).await {
                push(ok, "snapshots", detail);
            }
            pool.close().await;
        }
    }

    match GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots) {
        Ok(root) => {
            let upload = root.root().join("upload");
            let galleries = root.root().join("galleries");
            if upload.is_dir() || galleries.is_dir() {
                push(
                    true,
                    "gallery root",
                    format!("{} holds upload/ or galleries/", root.root().display()),
                );
            } else {
                push(
                    false,
                    "gallery root",
                    format!(
                        "{} has neither upload/ nor galleries/; set piwigo.root to Piwigo's install directory",
                        root.root().display()
                    ),
                );
            }
        }
        Err(e) => push(
            false,
            "gallery root",
            format!(
                "{}: {e}; set piwigo.root to Piwigo's install directory and let the daemon's user read it",
                config.piwigo.root.display()
            ),
        ),
    }

    let target = Target::new(&config.s3, &config.upload).await;
    match target.check_bucket().await {
        Ok(()) => {
            push(
                true,
                "s3 bucket",
                format!(
                    "bucket {} is reachable with these credentials",
                    config.s3.bucket
                ),
            );
            let settled = target
                .settle_if_none_match(config.s3.honours_if_none_match)
                .await;
            push(
                true,
                "s3 overwrites",
                format!(
                    "{}: {}",
                    if settled.honoured {
                        "the server's 412 to If-None-Match: * guards existing objects (no HEAD before each upload)"
                    } else {
                        "a HEAD before each upload guards existing objects"
                    },
                    settled.why
                ),
            );
            integrity(&target, config.s3.checksum, &mut push).await;
        }
        Err(e) => push(false, "s3 bucket", e.to_string()),
    }
    out
}

/// How uploads are kept intact: Content-MD5 on every upload, which the
/// server must check (a probe sends a wrong one); what each part of a
/// multipart upload is checked against (`s3.checksum`, settled as the
/// daemon settles it); and what the server does with trailing checksums.
async fn integrity(
    target: &Target,
    checksum: crate::config::Checksum,
    push: &mut impl FnMut(bool, &'static str, String),
) {
    let settled = target.settle_checksum(checksum).await;
    push(
        true,
        "s3 parts",
        format!(
            "each part of a multipart upload is checked by the server against its {}: {}",
            match settled.check {
                crate::digest::PartCheck::Crc32c =>
                    "CRC32C (one md5 per file, no second one per part)",
                crate::digest::PartCheck::ContentMd5 =>
                    "Content-MD5 (a second md5 of each part's bytes)",
            },
            settled.why
        ),
    );
    match target.probe_content_md5().await {
        Ok(true) => push(
            true,
            "s3 integrity",
            "every upload carries Content-MD5, and the server refused a body that did not match it".into(),
        ),
        Ok(false) => push(
            false,
            "s3 integrity",
            "the server stored a body that did not match its Content-MD5: bytes altered on the way would be kept unnoticed; use a server that checks Content-MD5".into(),
        ),
        Err(e) => push(
            false,
            "s3 integrity",
            format!("could not probe Content-MD5 checking: {e}"),
        ),
    }
    let mut answers = Vec::new();
    for algorithm in [ChecksumAlgorithm::Crc64Nvme, ChecksumAlgorithm::Crc32C] {
        let answer = match target.probe_trailer(algorithm.clone()).await {
            Ok(Verdict::Checked) => "taken and checked".to_string(),
            Ok(Verdict::Unchecked) => "taken but NOT checked".to_string(),
            Ok(Verdict::Refused(why)) => format!("refused ({why})"),
            Err(e) => format!("probe failed ({e})"),
        };
        answers.push(format!("{}: {answer}", algorithm.as_str()));
    }
    push(
        true,
        "s3 checksums",
        format!(
            "trailing checksums (aws-chunked) are not used for uploads; this server: {}",
            answers.join("; ")
        ),
    );
}

/// The daemon's own tables against what the applied migrations created.
async fn daemon_tables(
    pool: &MySqlPool,
    t: &Tables,
    push: &mut impl FnMut(bool, &'static str, String),
) {
    let what = "daemon tables";
    let expected = match migrate::expected_schema(pool, t).await {
        Ok(e) => e,
        Err(e) => return push(false, what, e.to_string()),
    };
    if expected.is_empty() {
        return push(
            true,
            what,
            "not created yet; `run` creates them at its first start".into(),
        );
    }
    match migrate::pending(pool, t).await {
        Ok(pending) if pending.is_empty() => {}
        Ok(pending) => {
            let list: Vec<String> = pending
                .iter()
                .map(|m| format!("{} ({})", m.version, m.description))
                .collect();
            push(
                true,
                "migrations",
                format!(
                    "{} pending: {}; `run` applies them at its next start",
                    pending.len(),
                    list.join(", ")
                ),
            );
        }
        Err(e) => push(false, "migrations", e.to_string()),
    }
    match schema::damage(pool, t, &expected).await {
        Ok(damage) if damage.is_empty() => push(
            true,
            what,
            format!(
                "{} tables with every column the migrations created",
                expected.len()
            ),
        ),
        Ok(damage) => push(false, what, schema::describe(&damage)),
        Err(e) => push(false, what, e.to_string()),
    }
}

pub fn render(findings: &[Finding]) -> String {
    let mut text = String::new();
    for f in findings {
        let _ = writeln!(
            text,
            "{:<5} {:<14} {}",
            if f.ok { "ok" } else { "FAIL" },
            f.what,
            f.detail
        );
    }
    text
}

/// What happens to deleted photos' objects under this config.
fn deletions_policy(config: &Config) -> String {
    match config.retention.deleted {
        crate::config::Retain::Keep => {
            "none held; deleted photos keep their objects ([retention] deleted = \"keep\")".into()
        }
        crate::config::Retain::For(after) => format!(
            "none held; deleted photos' objects are removed {} after the deletion",
            humantime::format_duration(after)
        ),
    }
}
