//! Which snapshots to keep, in restic's `forget --keep-*` model: the last
//! N, and the newest of each of the last N days, ISO weeks and months
//! that have one. Runs only after the snapshot just taken is verified in
//! the bucket, and never deletes it nor anything newer.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};

use super::SnapshotError;
use super::catalog::{self, Listed};
use super::keys::SnapshotName;
use crate::config::SnapshotsConfig;
use crate::s3::Target;

/// Incomplete snapshots younger than this may still be being written
/// (by another daemon): left alone.
const INCOMPLETE_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The names to delete among `snapshots`, given the one just verified.
pub fn plan(
    snapshots: &[(DateTime<Utc>, String, bool)],
    policy: &SnapshotsConfig,
    verified: &SnapshotName,
) -> Vec<String> {
    // Newest first; only complete ones count towards what is kept.
    let mut complete: Vec<&(DateTime<Utc>, String, bool)> =
        snapshots.iter().filter(|s| s.2).collect();
    complete.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut keep: HashSet<&str> = HashSet::new();
    keep.extend(
        complete
            .iter()
            .take(policy.keep_last as usize)
            .map(|s| s.1.as_str()),
    );
    let mut by_period = |count: u32, period: &dyn Fn(&DateTime<Utc>) -> (i32, u32)| {
        let mut seen = HashSet::new();
        for s in &complete {
            if seen.len() >= count as usize {
                break;
            }
            if seen.insert(period(&s.0)) {
                keep.insert(s.1.as_str());
            }
        }
    };
    by_period(policy.keep_daily, &|t| (t.year(), t.ordinal()));
    by_period(policy.keep_weekly, &|t| {
        let w = t.iso_week();
        (w.year(), w.week())
    });
    by_period(policy.keep_monthly, &|t| (t.year(), t.month()));
    snapshots
        .iter()
        .filter(|(at, name, is_complete)| {
            // Nothing at or after the verified snapshot is touched.
            *at < verified.taken_at
                && !keep.contains(name.as_str())
                && (*is_complete || verified.taken_at - *at > INCOMPLETE_GRACE)
        })
        .map(|s| s.1.clone())
        .collect()
}

/// Lists, plans and deletes; returns the names deleted.
pub async fn apply(
    target: &Target,
    prefix: &str,
    policy: &SnapshotsConfig,
    verified: &SnapshotName,
) -> Result<Vec<String>, SnapshotError> {
    let listed = catalog::list(target, prefix).await?;
    let brief: Vec<(DateTime<Utc>, String, bool)> = listed
        .iter()
        .map(|s| (s.name.taken_at, s.name.as_string(), s.complete()))
        .collect();
    let doomed = plan(&brief, policy, verified);
    for name in &doomed {
        let Some(s) = listed.iter().find(|s| &s.name.as_string() == name) else {
            continue;
        };
        delete(target, s).await?;
        tracing::info!(snapshot.name = %name, "snapshot deleted by the retention policy");
    }
    Ok(doomed)
}

/// The manifest goes first: a snapshot half deleted reads as incomplete.
async fn delete(target: &Target, s: &Listed) -> Result<(), SnapshotError> {
    let (manifests, rest): (Vec<String>, Vec<String>) = s
        .keys
        .iter()
        .cloned()
        .partition(|k| k.ends_with("/manifest.json"));
    target.delete_keys(&manifests).await?;
    target.delete_keys(&rest).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn policy(last: u32, daily: u32, weekly: u32, monthly: u32) -> SnapshotsConfig {
        SnapshotsConfig {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            ..SnapshotsConfig::default()
        }
    }

    fn snaps(times: &[DateTime<Utc>]) -> Vec<(DateTime<Utc>, String, bool)> {
        times
            .iter()
            .map(|t| (*t, SnapshotName::new(*t, "16.4.0").as_string(), true))
            .collect()
    }

    #[test]
    fn keeps_the_last_and_one_per_day_week_and_month() {
        // Four a day for 70 days (Jan 1 2026 is a Thursday).
        let mut times = Vec::new();
        for day in 0..70 {
            for h in [0, 6, 12, 18] {
                times.push(at(2026, 1, 1, h) + chrono::TimeDelta::days(day));
            }
        }
        let all = snaps(&times);
        let newest = SnapshotName::new(*times.last().unwrap(), "16.4.0");
        let deleted = plan(&all, &policy(3, 7, 4, 3), &newest);
        let kept: Vec<&String> = all
            .iter()
            .map(|s| &s.1)
            .filter(|n| !deleted.contains(n))
            .collect();
        // 3 last (same day) + 6 more days + weeks and months beyond them.
        assert!(kept.contains(&&newest.as_string()));
        let days: HashSet<String> = kept.iter().map(|n| n[..8].to_owned()).collect();
        assert!(days.len() >= 7, "{kept:?}");
        // Every month (Jan, Feb, Mar) keeps one.
        for month in ["202601", "202602", "202603"] {
            assert!(
                kept.iter().any(|n| n.starts_with(month)),
                "{month}: {kept:?}"
            );
        }
        assert!(kept.len() <= 3 + 6 + 4 + 3, "{}", kept.len());
        assert_eq!(kept.len() + deleted.len(), all.len());
    }

    #[test]
    fn nothing_newer_than_the_verified_one_nor_a_young_incomplete_one() {
        let times = [at(2026, 1, 1, 0), at(2026, 1, 2, 0), at(2026, 1, 3, 0)];
        let mut all = snaps(&times);
        all.push((
            at(2026, 1, 2, 12),
            SnapshotName::new(at(2026, 1, 2, 12), "16").as_string(),
            false,
        ));
        let verified = SnapshotName::new(times[1], "16.4.0");
        let deleted = plan(&all, &policy(1, 0, 0, 0), &verified);
        // The newest (after the verified one) is kept although keep_last
        // is 1; the oldest goes; the incomplete one after it is spared.
        assert_eq!(deleted, vec![all[0].1.clone()]);
        let later = SnapshotName::new(at(2026, 1, 5, 0), "16.4.0");
        let deleted = plan(&all, &policy(1, 0, 0, 0), &later);
        assert!(deleted.contains(&all[3].1), "{deleted:?}");
    }
}
