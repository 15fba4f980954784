//! The change check's figures (README, "Performance"): the time of polls
//! with nothing touched, and of one whole slow pass, against a database
//! and gallery made by `bench/changes_gallery.sh`.
//!
//!     cargo run --release --example changes_figures -- DATABASE_URL ROOT [POLLS]

use std::time::{Duration, Instant};

use piwigo_s3upload::changes;
use piwigo_s3upload::db::{self, Tables};
use piwigo_s3upload::piwigo::GalleryRoot;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(root)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: changes_figures DATABASE_URL ROOT [POLLS]");
    };
    let polls: u32 = args.next().map_or(Ok(1000), |n| n.parse())?;
    let pool = db::connect(&url, 4).await?;
    let t = Tables::new("piwigo_");
    let root = GalleryRoot::new(std::path::Path::new(&root), &[])?;
    let stall = Duration::from_secs(60);

    // The first poll sets the watermark; the rest find nothing touched.
    changes::poll_once(&pool, &t, &root, stall).await?;
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..polls {
        let one = Instant::now();
        let done = changes::poll_once(&pool, &t, &root, stall).await?;
        anyhow::ensure!(done.files == 0, "a row was touched during the figures");
        worst = worst.max(one.elapsed());
    }
    let mean = started.elapsed() / polls;
    println!("poll, nothing touched: mean {mean:?}, worst {worst:?} over {polls} polls");

    let started = Instant::now();
    let (done, wrapped) = changes::pass_step(&pool, &t, &root, stall, u64::MAX).await?;
    println!(
        "slow pass: {} files stat()ed, {} queued, whole pass {:?} (ended: {wrapped})",
        done.files,
        done.queued,
        started.elapsed()
    );
    Ok(())
}
