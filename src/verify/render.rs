//! The human-readable verify report.

use std::fmt::Write;

use super::Report;
use crate::words::counted;

/// Lines shown per list; `--json` has them all.
const SHOWN: usize = 50;

pub fn to_text(r: &Report) -> String {
    let mut out = String::new();
    let c = &r.coverage;
    let _ = writeln!(
        out,
        "Photos: {} in Piwigo: {} recorded, {} queued ({} failing), {} not backed up",
        c.photos, c.recorded, c.queued, c.failing, c.not_backed_up
    );
    if c.not_backed_up > 0 {
        let _ = writeln!(out, "  photos neither uploaded nor queued, by album:");
        for a in c.by_album.iter().take(SHOWN) {
            let ids: Vec<String> = a.sample_ids.iter().map(u32::to_string).collect();
            let more = if a.photos > a.sample_ids.len() as u64 {
                ", ..."
            } else {
                ""
            };
            let album = if a.album_id == 0 {
                a.album.clone()
            } else {
                format!("album {} {}", a.album_id, a.album)
            };
            let _ = writeln!(
                out,
                "    {album:<40} {:>8} photos  (ids {}{more})",
                a.photos,
                ids.join(", ")
            );
        }
        more_line(&mut out, c.by_album.len());
    }
    let f = &c.formats;
    if f.total > 0 {
        let _ = writeln!(
            out,
            "Formats: {} attached to photos (pwg_format/): {} recorded, {} queued ({} failing), {} not backed up",
            f.total, f.recorded, f.queued, f.failing, f.not_backed_up
        );
    }
    if c.not_backed_up > 0 || f.not_backed_up > 0 {
        match r.enqueued {
            Some(n) => {
                let _ = writeln!(
                    out,
                    "  queued {} and {} now",
                    counted(n.photos, "photo"),
                    counted(n.formats, "format")
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  queue them with `verify --enqueue` (or `enqueue --ids ...` for some)"
                );
            }
        }
    }
    if c.failing > 0 {
        let _ = writeln!(
            out,
            "  {} queued photos are failing: see `status` for why",
            c.failing
        );
    }

    let b = &r.bucket;
    let _ = writeln!(
        out,
        "\nBucket {} under `{}`: {} records, {} intact, {} unproven, {} with problems \
         ({} objects listed in {}, {}{})",
        r.bucket_name,
        r.prefix,
        b.records,
        b.intact,
        b.unproven.len(),
        b.problems.len(),
        b.objects_listed,
        counted(b.list_requests, "request"),
        counted(b.head_requests, "HEAD request"),
        if b.objects_read > 0 {
            format!(", {} objects read, {} bytes", b.objects_read, b.bytes_read)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  proven intact: {} by their MD5 ETag, {} by the ETag S3 gave our upload (each part checked against its Content-MD5), {} by downloading and hashing them",
        b.proven.etag_md5, b.proven.upload_etag, b.proven.read
    );
    if b.of_deleted_photos + b.removal_pending > 0 {
        let _ = writeln!(
            out,
            "  of these, {} records belong to photos deleted in Piwigo (objects kept under retention.deleted; `retention` lists them); {} objects of deleted photos are being removed",
            b.of_deleted_photos, b.removal_pending
        );
    }
    for p in b.problems.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {:<12} {}  {}  ({})",
            p.problem.as_str().to_uppercase(),
            what(p.image_id, p.format.as_deref()),
            p.key,
            p.detail
        );
    }
    more_line(&mut out, b.problems.len());
    for u in b.unproven.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {:<12} {}  {}  ({})",
            "UNPROVEN",
            what(u.image_id, u.format.as_deref()),
            u.key,
            u.detail
        );
    }
    more_line(&mut out, b.unproven.len());
    if !b.unproven.is_empty() {
        let _ = writeln!(
            out,
            "  unproven objects were checked by size alone: `verify --read-data` downloads and hashes them"
        );
    }
    if !r.changed_waiting.is_empty() {
        let _ = writeln!(
            out,
            "\nChanged: {} recorded photos or formats changed and their new version is not uploaded yet (queued; the bucket holds the earlier bytes)",
            r.changed_waiting.len()
        );
        for (id, kind, kind_id) in r.changed_waiting.iter().take(SHOWN) {
            match kind.as_str() {
                "format" => {
                    let _ = writeln!(out, "  photo {id}, format {kind_id}");
                }
                _ => {
                    let _ = writeln!(out, "  photo {id}");
                }
            }
        }
        more_line(&mut out, r.changed_waiting.len());
    }
    if r.versions_kept > 0 {
        let _ = writeln!(
            out,
            "Versions: {} earlier objects of changed photos kept (see the version history; not orphans)",
            r.versions_kept
        );
    }
    if let Some(orphans) = &b.orphans {
        let _ = writeln!(
            out,
            "\nOrphans: {} objects under `{}` that no record explains (left alone, and not a problem: they leave the exit code as it is)",
            orphans.len(),
            r.prefix
        );
        for o in orphans.iter().take(SHOWN) {
            let _ = writeln!(out, "  {}  ({} bytes)", o.key, o.size);
        }
        more_line(&mut out, orphans.len());
    }
    if let Some(d) = &r.disk {
        let _ = writeln!(
            out,
            "\nDisk: {} files checked, {} as uploaded, {} with problems ({} records of photos deleted from Piwigo)",
            d.checked,
            d.intact,
            d.problems.len(),
            d.deleted_from_piwigo
        );
        for p in d.problems.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "  {:<12} {}  {}  ({})",
                p.problem.as_str().to_uppercase(),
                what(p.image_id, p.format.as_deref()),
                p.path,
                p.detail
            );
        }
        more_line(&mut out, d.problems.len());
    }
    if let Some(re) = &r.resend {
        let _ = writeln!(
            out,
            "\nResent: {} objects sent again from the gallery, {} cannot be",
            re.resent.len(),
            re.cannot.len()
        );
        for s in re.resent.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "  RESENT       {}  {} -> {}",
                whose(&s.image_ids, s.format.as_deref()),
                s.old_key,
                s.new_key
            );
        }
        more_line(&mut out, re.resent.len());
        for n in re.cannot.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "  CANNOT       {}  {}  ({})",
                whose(&n.image_ids, n.format.as_deref()),
                n.key,
                n.reason
            );
        }
        more_line(&mut out, re.cannot.len());
        if !re.resent.is_empty() {
            let _ = writeln!(
                out,
                "  the records now point at the copies; run verify again to see them proven"
            );
        }
    } else if !b.problems.is_empty() {
        let _ = writeln!(
            out,
            "  `verify --resend` sends missing or damaged objects again from files that still hold the backed-up bytes"
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        if r.ok {
            "OK: every photo is backed up and intact"
        } else {
            "PROBLEMS FOUND: see above (exit code 1)"
        }
    );
    out
}

/// `1 request`, `2 requests`.
/// `photo 12`, or `format cr2 of photo 12`.
fn what(image_id: u32, format: Option<&str>) -> String {
    match format {
        Some(ext) => format!("format {ext} of photo {image_id:>8}"),
        None => format!("photo {image_id:>8}"),
    }
}

/// `photo 12`, `photos 12, 14`, or `format cr2 of photo 12`.
fn whose(ids: &[u32], format: Option<&str>) -> String {
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    match (format, list.len()) {
        (Some(ext), _) => format!("format {ext} of photo {}", list.join(", ")),
        (None, 1) => format!("photo {}", list[0]),
        (None, _) => format!("photos {}", list.join(", ")),
    }
}

fn more_line(out: &mut String, total: usize) {
    if total > SHOWN {
        let _ = writeln!(out, "  ... and {} more (--json lists all)", total - SHOWN);
    }
}
