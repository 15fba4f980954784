//! What operators see: counts per status and the plugin's two tables (ten
//! most recent pending or failed, ten most recent successes).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{MySqlPool, Row};

use crate::db::{DbError, Tables};
use crate::status::Status;

#[derive(Debug, Clone, Serialize)]
pub struct PendingRow {
    pub image_id: u32,
    pub status: String,
    pub attempts: u32,
    pub updated_at: String,
    pub path: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadedRow {
    pub image_id: u32,
    pub outcome: String,
    pub bucket: String,
    pub key: String,
    pub url: String,
    pub size: u64,
    pub uploaded_at: String,
}

/// A daemon as its heartbeat shows it, as the plugin's status tab does.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonRow {
    pub daemon: String,
    pub host: String,
    pub version: String,
    pub last_seen: String,
    /// `running`, `stopped` or `not seen for N min`.
    pub state: String,
    /// Uploads it allowed at once at its last heartbeat (`upload.workers`,
    /// or the figure found under "auto"); `None` from older versions.
    pub uploads_at_once: Option<u16>,
}

/// A heartbeat this recent means running: the daemon beats every 10 s, and
/// the plugin uses the same limit.
const ALIVE_SECONDS: i64 = 60;

/// What a heartbeat says: the same words as the plugin's status tab.
fn daemon_state(stopped: bool, age_seconds: i64) -> String {
    if stopped {
        "stopped".into()
    } else if age_seconds <= ALIVE_SECONDS {
        "running".into()
    } else {
        format!("not seen for {} min", ((age_seconds + 30) / 60).max(1))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Daemons that reported in during the last week, latest first.
    pub daemons: Vec<DaemonRow>,
    pub counts: BTreeMap<String, u64>,
    pub pending: Vec<PendingRow>,
    pub uploaded: Vec<UploadedRow>,
    /// The last database snapshot; `None` until one was attempted.
    pub last_snapshot: Option<super::last_snapshot::LastSnapshot>,
    pub deletions: Deletions,
    pub versions: VersionCounts,
}

/// Photos deleted in Piwigo: what they keep, what was removed, and the
/// guard's hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deletions {
    #[serde(flatten)]
    pub counts: super::removal::Counts,
    /// Why every deletion is held, when it is.
    pub held: Option<String>,
    pub held_since: Option<String>,
}

impl Deletions {
    pub async fn load(pool: &MySqlPool, t: &Tables) -> Result<Self, DbError> {
        let counts = super::removal::counts(pool, t).await?;
        let hold = super::deleted::hold(pool, t).await?;
        Ok(Self {
            counts,
            held_since: hold.as_ref().map(|h| h.1.clone()),
            held: hold.map(|h| h.0),
        })
    }

    /// The figures `/metrics` shows.
    pub fn figures(&self) -> [(&'static str, i64); 4] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("retained", n(self.counts.retained)),
            ("objects_removed", n(self.counts.objects_removed)),
            ("removals_failing", n(self.counts.failing)),
            ("held", i64::from(self.held.is_some())),
        ]
    }

    fn to_text(&self) -> Option<String> {
        let c = &self.counts;
        let mut out = String::new();
        if let Some(reason) = &self.held {
            out.push_str(&format!(
                "DELETIONS HELD since {}: {reason}\n  {} deleted photos keep their objects until `piwigo-s3upload retention --release`\n",
                self.held_since.as_deref().unwrap_or("?"),
                c.retained
            ));
        }
        if c.retained + c.objects_removed + c.failing > 0 {
            out.push_str(&format!(
                "Deleted in Piwigo: {} photos keep their objects, {} objects removed",
                c.retained, c.objects_removed
            ));
            if c.failing > 0 {
                out.push_str(&format!(
                    ", {} removals failing (see `retention`)",
                    c.failing
                ));
            }
            out.push('\n');
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Changed photos and their versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VersionCounts {
    /// New versions of changed photos and formats waiting in the queue.
    pub changed_queued: u64,
    /// Earlier objects of changed photos and formats kept in the bucket.
    pub versions_kept: u64,
}

impl VersionCounts {
    /// As `/metrics` shows them.
    pub fn figures(&self) -> [(&'static str, i64); 2] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("changed_queued", n(self.changed_queued)),
            ("versions_kept", n(self.versions_kept)),
        ]
    }
}

/// How many new versions wait and how many earlier objects are kept.
pub async fn version_counts(pool: &MySqlPool, t: &Tables) -> Result<VersionCounts, DbError> {
    let (queued, kept): (i64, i64) = sqlx::query_as(&format!(
        "SELECT (SELECT COUNT(*) FROM {} WHERE kind IN ('photo_version', 'format_version')), \
         (SELECT COUNT(*) FROM {} WHERE removed_at IS NULL)",
        t.queue, t.versions
    ))
    .fetch_one(pool)
    .await
    .map_err(DbError::query("status: count versions"))?;
    Ok(VersionCounts {
        changed_queued: queued.max(0) as u64,
        versions_kept: kept.max(0) as u64,
    })
}

fn time_text(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Photos per status: queue statuses (`uploading` for live claims) and
/// recorded outcomes. Formats are counted by `verify`.
pub async fn counts(pool: &MySqlPool, t: &Tables) -> Result<BTreeMap<String, u64>, DbError> {
    let err = DbError::query;
    let mut counts = BTreeMap::new();
    let queue = format!(
        "SELECT {} AS s, COUNT(*) AS n FROM {} WHERE kind = 'photo' GROUP BY s",
        Status::shown_sql(""),
        t.queue
    );
    let uploaded = format!(
        "SELECT outcome AS s, CAST(n AS SIGNED) AS n FROM {}",
        t.counts
    );
    for sql in [queue, uploaded] {
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .map_err(err("status: count"))?;
        for r in rows {
            let s: String = r.try_get("s").map_err(err("status: count"))?;
            let n: i64 = r.try_get("n").map_err(err("status: count"))?;
            counts.insert(s, n.max(0) as u64);
        }
    }
    Ok(counts)
}

pub async fn report(pool: &MySqlPool, t: &Tables, limit: u32) -> Result<Report, DbError> {
    let err = DbError::query;
    let counts = counts(pool, t).await?;
    let pending = sqlx::query(&format!(
        "SELECT q.image_id, {} AS status, q.attempts, q.updated_at, i.path, q.last_error \
         FROM {} q LEFT JOIN {} i ON i.id = q.image_id WHERE q.kind = 'photo' \
         ORDER BY q.updated_at DESC, q.id DESC LIMIT ?",
        Status::shown_sql("q."),
        t.queue,
        t.images
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(err("status: recent pending"))?
    .into_iter()
    .map(|r| -> Result<PendingRow, sqlx::Error> {
        Ok(PendingRow {
            image_id: r.try_get("image_id")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            updated_at: time_text(r.try_get("updated_at")?),
            path: crate::piwigo::optional_text_column(&r, "path")?,
            last_error: r.try_get("last_error")?,
        })
    })
    .collect::<Result<Vec<_>, _>>()
    .map_err(err("status: recent pending"))?;

    let uploaded = sqlx::query(&format!(
        "SELECT image_id, outcome, bucket, s3_key, url, size, uploaded_at FROM {} \
         ORDER BY uploaded_at DESC, id DESC LIMIT ?",
        t.uploaded
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(err("status: recent uploads"))?
    .into_iter()
    .map(|r| -> Result<UploadedRow, sqlx::Error> {
        Ok(UploadedRow {
            image_id: r.try_get("image_id")?,
            outcome: r.try_get("outcome")?,
            bucket: r.try_get("bucket")?,
            key: r.try_get("s3_key")?,
            url: r.try_get("url")?,
            size: r.try_get("size")?,
            uploaded_at: time_text(r.try_get("uploaded_at")?),
        })
    })
    .collect::<Result<Vec<_>, _>>()
    .map_err(err("status: recent uploads"))?;

    let daemons = sqlx::query(&format!(
        "SELECT daemon, host, version, last_seen, uploads_at_once, \
         stopped_at IS NOT NULL AS stopped, \
         CAST(TIMESTAMPDIFF(SECOND, last_seen, NOW(3)) AS SIGNED) AS age \
         FROM {} ORDER BY last_seen DESC LIMIT ?",
        t.heartbeat
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(err("status: daemons"))?
    .into_iter()
    .map(|r| -> Result<DaemonRow, sqlx::Error> {
        let stopped: i64 = r.try_get("stopped")?;
        let age: i64 = r.try_get("age")?;
        Ok(DaemonRow {
            daemon: r.try_get("daemon")?,
            host: r.try_get("host")?,
            version: r.try_get("version")?,
            last_seen: time_text(r.try_get("last_seen")?),
            state: daemon_state(stopped != 0, age),
            uploads_at_once: r.try_get("uploads_at_once")?,
        })
    })
    .collect::<Result<Vec<_>, _>>()
    .map_err(err("status: daemons"))?;

    let last_snapshot = super::last_snapshot::LastSnapshot::load(pool, t).await?;
    let versions = version_counts(pool, t).await?;
    Ok(Report {
        versions,
        daemons,
        counts,
        pending,
        uploaded,
        last_snapshot,
        deletions: Deletions::load(pool, t).await?,
    })
}

/// Text from Piwigo's tables made safe for a terminal: control characters
/// (a newline that would break the table, an ESC that would reach the
/// terminal, a bidirectional override that would reorder it) are shown
/// escaped; everything else, accents included, as is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    fn disruptive(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(disruptive) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if disruptive(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

impl Report {
    /// The plugin's two tables as plain text for a terminal.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        match self.daemons.first() {
            None => {
                let _ = writeln!(out, "Daemon: none has run on this database yet");
            }
            Some(d) => {
                // The figure is the running daemon's; a stopped one's last
                // figure says nothing about the next run.
                let at_once = d
                    .uploads_at_once
                    .filter(|_| d.state == "running")
                    .map(|n| format!(", {n} uploads at once"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "Daemon: {} ({} on {}, version {}, last seen {}{at_once})",
                    d.state, d.daemon, d.host, d.version, d.last_seen
                );
                let others = self.daemons.iter().skip(1).filter(|d| d.state == "running");
                for d in others {
                    let _ = writeln!(out, "        also running: {} on {}", d.daemon, d.host);
                }
            }
        }
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "Counts: {}",
            if counts.is_empty() {
                "nothing queued or uploaded yet".to_string()
            } else {
                counts.join(", ")
            }
        );
        if self.versions != VersionCounts::default() {
            let _ = writeln!(
                out,
                "Versions: {} changed photos or formats queued, {} earlier versions kept",
                self.versions.changed_queued, self.versions.versions_kept
            );
        }
        if let Some(last) = &self.last_snapshot {
            let _ = writeln!(out, "{}", last.to_text());
        }
        if let Some(text) = self.deletions.to_text() {
            out.push_str(&text);
        }
        let _ = writeln!(out, "\n10 most recent pending uploads to S3");
        if self.pending.is_empty() {
            let _ = writeln!(out, "  (none)");
        } else {
            let _ = writeln!(
                out,
                "  {:>8}  {:<28} {:>8}  {:<24}  path",
                "image", "status", "attempts", "updated"
            );
            for p in &self.pending {
                let _ = writeln!(
                    out,
                    "  {:>8}  {:<28} {:>8}  {:<24}  {}",
                    p.image_id,
                    p.status,
                    p.attempts,
                    p.updated_at,
                    p.path
                        .as_deref()
                        .map_or("(deleted from Piwigo)".into(), printable)
                );
                if let Some(e) = &p.last_error {
                    let _ = writeln!(out, "            {}", printable(e));
                }
            }
        }
        let _ = writeln!(out, "\n10 most recent successful uploads to S3");
        if self.uploaded.is_empty() {
            let _ = writeln!(out, "  (none)");
        } else {
            let _ = writeln!(
                out,
                "  {:>8}  {:<16} {:<24}  url",
                "image", "outcome", "uploaded"
            );
            for u in &self.uploaded {
                let _ = writeln!(
                    out,
                    "  {:>8}  {:<16} {:<24}  {}",
                    u.image_id,
                    u.outcome,
                    u.uploaded_at,
                    printable(&u.url)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_reads_as_the_plugin_reads_it() {
        assert_eq!(daemon_state(false, 5), "running");
        assert_eq!(daemon_state(false, 60), "running");
        assert_eq!(daemon_state(false, 61), "not seen for 1 min");
        assert_eq!(daemon_state(false, 12 * 60 + 10), "not seen for 12 min");
        assert_eq!(daemon_state(true, 5), "stopped");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("./upload/été 1.jpg"), "./upload/été 1.jpg");
        assert_eq!(printable("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(printable("x\u{1b}[31mred"), "x\\u{1b}[31mred");
        assert_eq!(printable("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(printable("gpj.\u{202e}exe"), "gpj.\\u{202e}exe");
    }

    #[test]
    fn a_hostile_path_stays_on_its_line() {
        let report = Report {
            daemons: vec![],
            last_snapshot: None,
            versions: VersionCounts {
                changed_queued: 2,
                versions_kept: 5,
            },
            counts: BTreeMap::new(),
            pending: vec![PendingRow {
                image_id: 7,
                status: "failed_file_missing".into(),
                attempts: 1,
                updated_at: "2024-01-01T00:00:00.000Z".into(),
                path: Some("./upload/a\n  999  uploaded\u{1b}[2J.jpg".into()),
                last_error: Some("file ./upload/a\n.jpg is missing".into()),
            }],
            uploaded: vec![],
            deletions: Deletions::default(),
        };
        let text = report.to_text();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            text.contains("Versions: 2 changed photos or formats queued, 5 earlier versions kept"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        let row = lines
            .iter()
            .position(|l| l.contains("failed_file_missing"))
            .unwrap();
        assert!(
            lines[row].contains("\\n  999  uploaded\\u{1b}[2J.jpg"),
            "{text}"
        );
        assert!(lines[row + 1].contains("a\\n.jpg is missing"), "{text}");
    }

    #[test]
    fn deletions_show_only_when_there_are_some_and_a_hold_says_why() {
        assert_eq!(Deletions::default().to_text(), None);
        let d = Deletions {
            counts: crate::queue::removal::Counts {
                retained: 3,
                objects_removed: 2,
                failing: 1,
            },
            held: Some("3 of 10 photos gone at once".into()),
            held_since: Some("2026-12-04 10:00:00.000".into()),
        };
        let text = d.to_text().unwrap();
        assert!(
            text.starts_with(
                "DELETIONS HELD since 2026-12-04 10:00:00.000: 3 of 10 photos gone at once"
            ),
            "{text}"
        );
        assert!(text.contains("retention --release"), "{text}");
        assert!(
            text.contains("3 photos keep their objects, 2 objects removed, 1 removals failing"),
            "{text}"
        );
        assert_eq!(d.figures()[3], ("held", 1));
    }
}
