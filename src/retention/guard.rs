//! The guard: decides, from one look at Piwigo's images table and the
//! recorded photos found gone, whether every deletion must wait for an
//! admin. Pure: the look is gathered by `retention::look`.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::RetentionConfig;
use crate::piwigo::GallerySignal;

/// What a look found.
#[derive(Debug, Clone)]
pub struct Look<'a> {
    /// The previous look, `None` on the first one.
    pub before: Option<&'a GallerySignal>,
    pub now: &'a GallerySignal,
    /// Recorded photos found gone by this look.
    pub gone: u64,
    /// Rows the images table lost since the previous look, recorded or
    /// not (its count against the previous count and the rows added).
    pub vanished: u64,
    /// For each album a gone photo was last seen in: how many of them, and
    /// how many photos the album holds now.
    pub albums: BTreeMap<u32, (u64, u64)>,
}

/// Why deletions are held.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The images table is not in the database.
    TableMissing,
    /// Recorded photos are gone and the images table is empty.
    TableEmpty {
        gone: u64,
    },
    /// Photos are gone on the first look (nothing to compare with).
    FirstLook {
        gone: u64,
    },
    /// The database answering is not the one looked at before.
    OtherDatabase {
        was: String,
        now: String,
        gone: u64,
    },
    /// The images table was made again (a restore, a dump loaded).
    Recreated {
        gone: u64,
    },
    /// The id the next photo gets went down.
    IdsBackwards {
        was: u64,
        now: u64,
        gone: u64,
    },
    GalleryShare {
        gone: u64,
        of: u64,
        share: String,
    },
    AlbumShare {
        album: u32,
        gone: u64,
        of: u64,
        share: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TableMissing => write!(
                f,
                "Piwigo's images table is missing (dropped, a restore in progress, or the wrong database?)"
            ),
            Self::TableEmpty { gone } => write!(
                f,
                "{gone} recorded photos gone and Piwigo's images table is empty (a restore in progress, or the wrong database?)"
            ),
            Self::FirstLook { gone } => write!(
                f,
                "{gone} recorded photos not in Piwigo at the first look (deleted before this version, or the wrong database?)"
            ),
            Self::OtherDatabase { was, now, gone } => write!(
                f,
                "{gone} recorded photos gone and the database is `{now}`, not `{was}` as before (piwigo.database_url changed?)"
            ),
            Self::Recreated { gone } => write!(
                f,
                "{gone} recorded photos gone and Piwigo's images table was created anew (a restore, or a dump loaded?)"
            ),
            Self::IdsBackwards { was, now, gone } => write!(
                f,
                "{gone} recorded photos gone and the next photo id went from {was} down to {now} (an older copy of the gallery?)"
            ),
            Self::GalleryShare { gone, of, share } => write!(
                f,
                "{gone} of {of} photos gone at once, more than retention.guard_gallery_share ({share})"
            ),
            Self::AlbumShare {
                album,
                gone,
                of,
                share,
            } => write!(
                f,
                "{gone} of {of} photos of album {album} gone at once, more than retention.guard_album_share ({share})"
            ),
        }
    }
}

/// Whether this look holds deletions. Nothing gone holds nothing: a
/// table made again with every recorded photo in it is a finished restore.
pub fn judge(look: &Look<'_>, cfg: &RetentionConfig) -> Option<Reason> {
    let gone = look.gone;
    if gone == 0 {
        return None;
    }
    let now = look.now;
    if now.count == 0 {
        return Some(Reason::TableEmpty { gone });
    }
    let Some(before) = look.before else {
        return Some(Reason::FirstLook { gone });
    };
    if before.database != now.database {
        return Some(Reason::OtherDatabase {
            was: before.database.clone(),
            now: now.database.clone(),
            gone,
        });
    }
    if before.created != now.created {
        return Some(Reason::Recreated { gone });
    }
    if let (Some(was), Some(next)) = (before.next_id, now.next_id)
        && next < was
    {
        return Some(Reason::IdsBackwards {
            was,
            now: next,
            gone,
        });
    }
    // The gallery's share counts every photo gone, backed up or not.
    let gone_in_all = gone.max(look.vanished);
    if gone_in_all < u64::from(cfg.guard_min_photos) {
        return None;
    }
    let of = now.count + gone_in_all;
    if cfg.guard_gallery_share.exceeded_by(gone_in_all, of) {
        return Some(Reason::GalleryShare {
            gone: gone_in_all,
            of,
            share: cfg.guard_gallery_share.to_string(),
        });
    }
    if gone < u64::from(cfg.guard_min_photos) {
        return None;
    }
    look.albums
        .iter()
        .filter(|(_, (gone_here, _))| *gone_here >= u64::from(cfg.guard_min_photos))
        .find(|(_, (gone_here, left))| {
            cfg.guard_album_share
                .exceeded_by(*gone_here, *gone_here + *left)
        })
        .map(|(album, (gone_here, left))| Reason::AlbumShare {
            album: *album,
            gone: *gone_here,
            of: *gone_here + *left,
            share: cfg.guard_album_share.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(count: u64, max_id: u32) -> GallerySignal {
        GallerySignal {
            database: "piwigo".into(),
            created: Some("2026-01-01 00:00:00".into()),
            next_id: Some(u64::from(max_id) + 1),
            count,
            max_id,
        }
    }

    fn look<'a>(before: Option<&'a GallerySignal>, now: &'a GallerySignal, gone: u64) -> Look<'a> {
        Look {
            before,
            now,
            gone,
            vanished: gone,
            albums: BTreeMap::new(),
        }
    }

    #[test]
    fn nothing_gone_holds_nothing_whatever_the_table() {
        let before = signal(100, 100);
        let mut now = signal(0, 0);
        now.created = Some("2026-02-02 00:00:00".into());
        assert_eq!(
            judge(&look(Some(&before), &now, 0), &RetentionConfig::default()),
            None
        );
    }

    #[test]
    fn one_photo_of_a_large_gallery_passes_even_the_newest() {
        let before = signal(1000, 1000);
        let mut now = signal(999, 999);
        now.next_id = before.next_id;
        assert_eq!(
            judge(&look(Some(&before), &now, 1), &RetentionConfig::default()),
            None
        );
    }

    #[test]
    fn more_than_the_gallery_share_holds() {
        let cfg = RetentionConfig::default();
        let before = signal(100, 100);
        assert_eq!(judge(&look(Some(&before), &signal(95, 100), 5), &cfg), None);
        let held = judge(&look(Some(&before), &signal(94, 100), 6), &cfg);
        assert!(
            matches!(
                held,
                Some(Reason::GalleryShare {
                    gone: 6,
                    of: 100,
                    ..
                })
            ),
            "{held:?}"
        );
    }

    #[test]
    fn below_the_minimum_count_the_shares_do_not_apply() {
        let before = signal(10, 10);
        assert_eq!(
            judge(
                &look(Some(&before), &signal(9, 10), 1),
                &RetentionConfig::default()
            ),
            None
        );
        let held = judge(
            &look(Some(&before), &signal(8, 10), 2),
            &RetentionConfig::default(),
        );
        assert!(
            matches!(held, Some(Reason::GalleryShare { .. })),
            "{held:?}"
        );
    }

    #[test]
    fn photos_not_backed_up_count_in_the_gallery_share() {
        let before = signal(100, 100);
        let now = signal(80, 100);
        let mut l = look(Some(&before), &now, 1);
        l.vanished = 20;
        let held = judge(&l, &RetentionConfig::default());
        assert!(
            matches!(
                held,
                Some(Reason::GalleryShare {
                    gone: 20,
                    of: 100,
                    ..
                })
            ),
            "{held:?}"
        );
    }

    #[test]
    fn half_an_album_holds() {
        let cfg = RetentionConfig::default();
        let before = signal(1000, 1000);
        let now = signal(994, 1000);
        let mut l = look(Some(&before), &now, 6);
        l.albums.insert(3, (6, 5));
        l.albums.insert(4, (1, 100));
        let held = judge(&l, &cfg);
        assert!(
            matches!(
                held,
                Some(Reason::AlbumShare {
                    album: 3,
                    gone: 6,
                    of: 11,
                    ..
                })
            ),
            "{held:?}"
        );
        l.albums.insert(3, (6, 7));
        assert_eq!(judge(&l, &cfg), None);
    }

    #[test]
    fn an_empty_or_replaced_table_holds_any_loss() {
        let cfg = RetentionConfig::default();
        let before = signal(1000, 1000);
        let empty = signal(0, 0);
        assert!(matches!(
            judge(&look(Some(&before), &empty, 1), &cfg),
            Some(Reason::TableEmpty { gone: 1 })
        ));
        let mut other = signal(999, 1000);
        other.database = "piwigo_test".into();
        assert!(matches!(
            judge(&look(Some(&before), &other, 1), &cfg),
            Some(Reason::OtherDatabase { .. })
        ));
        let mut recreated = signal(999, 1000);
        recreated.created = Some("2026-03-03 00:00:00".into());
        assert!(matches!(
            judge(&look(Some(&before), &recreated, 1), &cfg),
            Some(Reason::Recreated { gone: 1 })
        ));
        assert!(matches!(
            judge(&look(Some(&before), &signal(999, 990), 1), &cfg),
            Some(Reason::IdsBackwards {
                was: 1001,
                now: 991,
                gone: 1
            })
        ));
        assert!(matches!(
            judge(&look(None, &signal(999, 1000), 1), &cfg),
            Some(Reason::FirstLook { gone: 1 })
        ));
    }

    #[test]
    fn reasons_say_what_and_how_many() {
        let r = Reason::AlbumShare {
            album: 7,
            gone: 3,
            of: 6,
            share: "50%".into(),
        };
        assert_eq!(
            r.to_string(),
            "3 of 6 photos of album 7 gone at once, more than retention.guard_album_share (50%)"
        );
    }
}
