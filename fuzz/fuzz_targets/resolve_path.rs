//! `GalleryRoot::resolve` on a small gallery tree built once per process:
//!
//! ```text
//! <tmp>/piwigo/upload/a.jpg
//! <tmp>/piwigo/upload/inner.jpg  -> a.jpg
//! <tmp>/piwigo/upload/link.jpg   -> ../../outside/secret.txt
//! <tmp>/piwigo/upload/out        -> ../../outside
//! <tmp>/piwigo/galleries/x/y.jpg
//! <tmp>/outside/secret.txt
//! ```
//!
//! Input: the UTF-8 `images.path` to resolve.
//!
//! Invariants: no panic; on `Ok(p)`, `p` is canonical, a regular file, and
//! inside the canonical root; `secret.txt` is never returned.

#![no_main]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use piwigo_s3upload::piwigo::GalleryRoot;

struct Tree {
    gallery: GalleryRoot,
    root: PathBuf,
    secret: PathBuf,
}

fn build(base: &Path) -> std::io::Result<Tree> {
    let _ = std::fs::remove_dir_all(base);
    let root = base.join("piwigo");
    std::fs::create_dir_all(root.join("upload"))?;
    std::fs::create_dir_all(root.join("galleries/x"))?;
    std::fs::create_dir_all(base.join("outside"))?;
    std::fs::write(root.join("upload/a.jpg"), b"jpeg")?;
    std::fs::write(root.join("galleries/x/y.jpg"), b"jpeg")?;
    std::fs::write(base.join("outside/secret.txt"), b"secret")?;
    symlink("../../outside/secret.txt", root.join("upload/link.jpg"))?;
    symlink("a.jpg", root.join("upload/inner.jpg"))?;
    symlink("../../outside", root.join("upload/out"))?;
    let gallery = GalleryRoot::new(&root, &[])?;
    Ok(Tree {
        gallery,
        root: root.canonicalize()?,
        secret: base.join("outside/secret.txt").canonicalize()?,
    })
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!(
            "piwigo-s3upload-fuzz-resolve-{}",
            std::process::id()
        ));
        build(&base).expect("building the gallery tree")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(rel) = std::str::from_utf8(data) else {
        return;
    };
    let t = tree();
    let Ok(p) = t.gallery.resolve(rel) else {
        return;
    };
    assert!(p.starts_with(&t.root), "{rel:?} resolved outside: {p:?}");
    assert!(p != t.secret, "{rel:?} resolved to the secret: {p:?}");
    assert!(
        p.file_name().is_none_or(|n| n != "secret.txt"),
        "{rel:?} resolved to a secret.txt: {p:?}"
    );
    let meta = std::fs::symlink_metadata(&p).expect("resolved path exists");
    assert!(meta.is_file(), "{rel:?} resolved to a non-file: {p:?}");
    assert_eq!(
        p.canonicalize().ok().as_deref(),
        Some(p.as_path()),
        "{rel:?} resolved to a non-canonical path"
    );
});
