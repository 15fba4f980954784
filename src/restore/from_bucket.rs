//! `restore --from-bucket`: no upload record needed. Each object's
//! metadata names its Piwigo path and md5; objects uploaded before objects
//! carried metadata are placed from their key where the key layout keeps
//! the path, flagged, and reported otherwise. Where Piwigo's images table
//! is still there, it tells deleted photos (left out unless asked) and md5
//! duplicates (which never had an object of their own).

use std::collections::HashSet;

use futures_util::StreamExt;
use sqlx::MySqlPool;

use super::{Options, RestoreError, Summary, fetch::Job};
use crate::config::{Config, ServerSideEncryption};
use crate::db::Tables;
use crate::piwigo::gallery_rows;
use crate::queue::records::bare_etag;
use crate::s3::Target;
use crate::s3::keys::KeyFormat;
use crate::s3::read::Listed;

pub async fn run(
    config: &Config,
    opts: &Options,
    gallery: Option<(&MySqlPool, &Tables)>,
) -> Result<Summary, RestoreError> {
    let root = super::destination_root(config, opts.to.as_ref())?;
    let target = Target::new(&config.s3, &config.upload).await;
    let prefix = config.s3.prefix.as_str();
    let mut listed = Vec::new();
    target
        .list_prefix(prefix, |obj| {
            // Snapshots are restored by `restore --gallery`, not as files.
            if !obj.key.is_empty()
                && !obj.key.ends_with('/')
                && !crate::snapshot::keys::is_snapshot_key(prefix, &obj.key)
            {
                listed.push(obj);
            }
        })
        .await?;
    let mut summary = Summary::default();
    let etag_is_md5 = !config
        .s3
        .server_side_encryption
        .is_some_and(ServerSideEncryption::uses_kms);
    let wanted = |id: Option<u32>| {
        opts.filter.ids.is_empty()
            || id.is_some_and(|id| {
                opts.filter
                    .ids
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&id))
            })
    };
    // HEADs read each object's metadata, a few at a time.
    let mut heads = futures_util::stream::iter(listed.into_iter().map(|obj: Listed| {
        let target = &target;
        async move {
            let meta = target.head_meta(&target.bucket, &obj.key).await;
            (obj, meta)
        }
    }))
    .buffer_unordered(opts.jobs.max(1));
    let mut found = Vec::new();
    while let Some((obj, meta)) = heads.next().await {
        let meta = match meta {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return Err(e.into()),
        };
        let listed_md5 =
            obj.etag.as_deref().map(bare_etag).filter(|e| {
                etag_is_md5 && e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit())
            });
        let rel = match &meta.path {
            Some(p) => Some(p.clone()),
            None => path_from_key(prefix, config.s3.key_format, &obj.key),
        };
        let Some(rel) = rel else {
            summary.unplaceable.push(obj.key);
            continue;
        };
        if !wanted(meta.image_id) {
            continue;
        }
        if meta.path.is_none() {
            summary.no_metadata.push(obj.key.clone());
        }
        found.push(Job {
            image_id: meta.image_id,
            bucket: target.bucket.clone(),
            key: obj.key,
            size: obj.size,
            md5: meta.md5.or(listed_md5),
            rel,
        });
    }
    drop(heads);
    let mut jobs = newest_versions(prefix, found);
    if let Some((pool, t)) = gallery {
        jobs = with_gallery_rows(pool, t, jobs, opts, &wanted, &mut summary).await?;
    }
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    summary.selected = jobs.len() as u64 + summary.unplaceable.len() as u64;
    super::run_jobs(&target, &root, jobs, opts, &mut summary).await;
    Ok(summary)
}

/// Of the objects of one photo's file (its first upload and the versions
/// a changed file got), the newest: the one its record would name.
fn newest_versions(prefix: &str, jobs: Vec<Job>) -> Vec<Job> {
    let mut newest: std::collections::HashMap<(Option<u32>, String), (u32, Job)> =
        std::collections::HashMap::new();
    for job in jobs {
        let version = crate::s3::keys::ObjectKey::version_of(prefix, &job.key);
        let slot = (job.image_id, job.rel.clone());
        match newest.get(&slot) {
            Some((held, _)) if *held >= version => {}
            _ => {
                newest.insert(slot, (version, job));
            }
        }
    }
    newest.into_values().map(|(_, job)| job).collect()
}

/// Leaves out photos Piwigo deleted (unless `--include-deleted`), and adds
/// a job for each md5 duplicate Piwigo lists beside an object's photo.
async fn with_gallery_rows(
    pool: &MySqlPool,
    t: &Tables,
    jobs: Vec<Job>,
    opts: &Options,
    wanted: &impl Fn(Option<u32>) -> bool,
    summary: &mut Summary,
) -> Result<Vec<Job>, RestoreError> {
    let ids: Vec<u32> = jobs.iter().filter_map(|j| j.image_id).collect();
    let Some(existing) = gallery_rows::existing(pool, t, &ids).await? else {
        return Ok(jobs);
    };
    let mut kept = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job.image_id {
            Some(id) if !existing.contains(&id) && !opts.include_deleted => {
                summary.deleted_from_piwigo += 1;
            }
            _ => kept.push(job),
        }
    }
    let md5s: Vec<&str> = kept.iter().filter_map(|j| j.md5.as_deref()).collect();
    let rows = gallery_rows::by_md5(pool, t, &md5s).await?;
    let mut placed: HashSet<(Option<u32>, String)> =
        kept.iter().map(|j| (j.image_id, j.rel.clone())).collect();
    let mut added = Vec::new();
    for job in &kept {
        let Some(dups) = job.md5.as_deref().and_then(|m| rows.get(m)) else {
            continue;
        };
        for row in dups {
            if Some(row.id) == job.image_id
                || !wanted(Some(row.id))
                || !placed.insert((Some(row.id), row.path.clone()))
            {
                continue;
            }
            summary.duplicates += 1;
            added.push(Job {
                image_id: Some(row.id),
                rel: row.path.clone(),
                ..job.clone()
            });
        }
    }
    // A duplicate whose own object is in the bucket too came back by it.
    kept.extend(added);
    Ok(kept)
}

/// Piwigo's path from a key without metadata, where the layout keeps it:
/// synchronised photos keep their album folders under `galleries/` in
/// every layout; web uploads keep their disk name only in
/// `path_and_file_unique` (`upload/Y/M/D/<stamp>-<unique>-<name>.<ext>`).
pub fn path_from_key(prefix: &str, format: KeyFormat, key: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty()
        || rest
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    let is_upload = rest.starts_with("upload/");
    let path_layout = matches!(
        format,
        KeyFormat::Path | KeyFormat::PathAndFile | KeyFormat::PathAndFileUnique
    );
    if path_layout && !is_upload || !path_layout && rest.contains('/') {
        return Some(format!("./galleries/{rest}"));
    }
    if format != KeyFormat::PathAndFileUnique || !is_upload {
        return None;
    }
    let (dir, name) = rest.rsplit_once('/')?;
    let (stamp, rest_name) = name.split_once('-')?;
    let (unique, original) = rest_name.split_once('-')?;
    let ok = stamp.len() == 14
        && stamp.bytes().all(|b| b.is_ascii_digit())
        && !unique.is_empty()
        && unique.bytes().all(|b| b.is_ascii_alphanumeric());
    let ext = original.rsplit_once('.')?.1.to_ascii_lowercase();
    // Piwigo names JPEG files `.jpg` whatever the original said.
    let ext = if ext == "jpeg" { "jpg".to_owned() } else { ext };
    ok.then(|| format!("./{dir}/{stamp}-{unique}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_back_only_where_the_layout_keeps_them() {
        use KeyFormat::{File, Path, PathAndFileUnique};
        let p = "photos/";
        assert_eq!(
            path_from_key(
                p,
                PathAndFileUnique,
                "photos/upload/2013/03/31/20130331013511-5d467604-Beach.JPEG"
            )
            .as_deref(),
            Some("./upload/2013/03/31/20130331013511-5d467604.jpg")
        );
        assert_eq!(
            path_from_key(p, PathAndFileUnique, "photos/trips/rome/a.jpg").as_deref(),
            Some("./galleries/trips/rome/a.jpg")
        );
        assert_eq!(
            path_from_key(p, File, "photos/trips/a.jpg").as_deref(),
            Some("./galleries/trips/a.jpg")
        );
        assert_eq!(
            path_from_key(p, File, "photos/20130331013511-beach.jpg"),
            None
        );
        assert_eq!(
            path_from_key(p, Path, "photos/upload/2013/03/31/beach.jpg"),
            None
        );
        assert_eq!(path_from_key(p, File, "other/x.jpg"), None);
        assert_eq!(path_from_key(p, File, "photos/a/../../x.jpg"), None);
    }
}
