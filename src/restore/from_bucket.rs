//! `restore --from-bucket`: no database record needed. Each object's
//! metadata names its Piwigo path and md5; objects uploaded before objects
//! carried metadata are placed from their key where the key layout keeps
//! the path, and reported otherwise.

use futures_util::StreamExt;

use super::{Options, RestoreError, Summary, fetch::Job};
use crate::config::{Config, ServerSideEncryption};
use crate::s3::keys::KeyFormat;
use crate::s3::{S3Error, Target};
use crate::verify::records::bare_etag;

/// An object as listed.
struct Listed {
    key: String,
    size: u64,
    etag: Option<String>,
}

pub async fn run(config: &Config, opts: &Options) -> Result<Summary, RestoreError> {
    let root = super::destination_root(config, opts.to.as_ref())?;
    let target = Target::new(&config.s3, &config.upload).await;
    let prefix = config.s3.prefix.as_str();
    let listed = list(&target, prefix).await?;
    let mut summary = Summary::default();
    let etag_is_md5 = !config
        .s3
        .server_side_encryption
        .is_some_and(ServerSideEncryption::uses_kms);
    // HEADs read each object's metadata, a few at a time.
    let mut heads = futures_util::stream::iter(listed.into_iter().map(|obj| {
        let target = &target;
        async move {
            let meta = target.head_meta(&target.bucket, &obj.key).await;
            (obj, meta)
        }
    }))
    .buffer_unordered(opts.jobs.max(1));
    let mut jobs = Vec::new();
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
        let rel = meta
            .path
            .clone()
            .or_else(|| path_from_key(prefix, config.s3.key_format, &obj.key));
        let Some(rel) = rel else {
            summary.unplaceable.push(obj.key);
            continue;
        };
        if !opts.filter.ids.is_empty()
            && !meta.image_id.is_some_and(|id| {
                opts.filter
                    .ids
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&id))
            })
        {
            continue;
        }
        jobs.push(Job {
            image_id: meta.image_id,
            bucket: target.bucket.clone(),
            key: obj.key,
            size: obj.size,
            md5: meta.md5.or(listed_md5),
            rel,
        });
    }
    drop(heads);
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    summary.selected = jobs.len() as u64 + summary.unplaceable.len() as u64;
    super::run_jobs(&target, &root, jobs, opts, &mut summary).await;
    Ok(summary)
}

async fn list(target: &Target, prefix: &str) -> Result<Vec<Listed>, S3Error> {
    let mut out = Vec::new();
    let mut pages = target
        .client
        .list_objects_v2()
        .bucket(&target.bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| S3Error::from_sdk("list objects", prefix, e))?;
        for obj in page.contents.unwrap_or_default() {
            let key = obj.key.unwrap_or_default();
            // Snapshots are restored by `restore --gallery`, not as files.
            if key.is_empty()
                || key.ends_with('/')
                || crate::snapshot::keys::is_snapshot_key(prefix, &key)
            {
                continue;
            }
            out.push(Listed {
                key,
                size: obj.size.unwrap_or(0).max(0) as u64,
                etag: obj.e_tag,
            });
        }
    }
    Ok(out)
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
