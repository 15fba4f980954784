//! `import-s3upload`: taking over from the old S3Upload plugin.

use std::process::ExitCode;

use crate::config::Config;
use crate::piwigo;
use crate::queue::Queue;

pub(super) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let (pool, t) = super::open_database(config).await?;
    let strategy = Queue::detect_strategy(&pool).await?;
    let queue = Queue::new(pool.clone(), t.clone(), strategy);
    let root = piwigo::GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots).ok();
    let report = crate::companion::import::run(
        &pool,
        &t,
        &queue,
        root.as_ref(),
        &config.s3.bucket,
        config.s3.public_url.as_deref(),
        config.upload.prevent_duplicates_by_md5,
    )
    .await?;
    print!("{}", report.to_text(&t.old_plugin));
    Ok(ExitCode::SUCCESS)
}
