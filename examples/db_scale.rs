//! The database side at scale: a Piwigo with 1,000,000 photos. Measures a
//! monitoring poll with nothing new (and shows its EXPLAIN), `enqueue --all`
//! of every photo, `status` with 1,000,000 uploaded rows, and the deleted
//! photos' look: with nothing deleted, and the full comparison a deletion
//! sets off.
//!
//! cargo run --release --example db_scale -- [ROWS]
//! (TEST_DATABASE_URL=mysql://user:pass@127.0.0.1:3306, as for the tests)

use std::time::{Duration, Instant};

use piwigo_s3upload::config::MonitorConfig;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::queue::selection::Selection;
use piwigo_s3upload::queue::{enqueue, migrate, report};
use sqlx::{Executor, MySqlPool, Row};

const SCHEMA: &str = include_str!("../tests/common/piwigo_schema.sql");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let server =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let admin = MySqlPool::connect(&server).await?;
    // A name of its own: two runs on one server never share a database.
    let name = format!("s3u_scale_{}", std::process::id());
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await?;
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    admin.close().await;
    let pool = MySqlPool::connect(&format!("{}/{name}", server.trim_end_matches('/'))).await?;
    for stmt in SCHEMA.replace("{prefix}", "piwigo_").split(";\n") {
        if !stmt.trim().is_empty() {
            pool.execute(stmt).await?;
        }
    }
    let t = Tables::new("piwigo_");
    migrate::run(&pool, &t).await?;

    let started = Instant::now();
    pool.execute(
        "INSERT INTO piwigo_images (file, path, md5sum, date_available) \
         VALUES ('seed.jpg', './upload/2024/01/01/20240101000000-00000000.jpg', NULL, NOW())",
    )
    .await?;
    let mut have = 1u64;
    while have < rows {
        let take = have.min(rows - have);
        pool.execute(
            format!(
                "INSERT INTO piwigo_images (file, path, md5sum, date_available) \
                 SELECT CONCAT('photo', id + {have}, '.jpg'), \
                 CONCAT('./upload/2024/01/01/20240101000000-', LPAD(HEX(id + {have}), 8, '0'), '.jpg'), \
                 MD5(id + {have}), NOW() FROM piwigo_images ORDER BY id LIMIT {take}"
            )
            .as_str(),
        )
        .await?;
        have += take;
    }
    println!(
        "filled piwigo_images with {have} rows in {:?}",
        started.elapsed()
    );

    eprintln!("polling");
    let monitor = MonitorConfig::default();
    piwigo_s3upload::monitor::poll_once(&pool, &t, &monitor).await?;
    let mut polls = Vec::new();
    for _ in 0..50 {
        let s = Instant::now();
        piwigo_s3upload::monitor::poll_once(&pool, &t, &monitor).await?;
        polls.push(s.elapsed());
    }
    polls.sort();
    let explain = pool
        .fetch_all(
            "EXPLAIN SELECT i.id FROM piwigo_images i WHERE i.id > 999990 AND i.id <= 1000000 \
             AND i.path NOT LIKE 'http://%'",
        )
        .await?;
    let max = pool
        .fetch_all("EXPLAIN SELECT MAX(id) FROM piwigo_images")
        .await?;

    eprintln!("enqueue --all");
    let s = Instant::now();
    let sel = Selection {
        all: true,
        ..Default::default()
    };
    let r = enqueue::selection(&pool, &t, &sel, true, &mut |_, _| {}).await?;
    let enqueue_time = s.elapsed();

    eprintln!("status");
    // Everything uploaded: what `status` reads after a big backlog.
    pool.execute(
        "INSERT INTO piwigo_s3upload_uploaded (image_id, outcome, bucket, s3_key, size, md5, url) \
         SELECT i.id, 'uploaded', 'b', CONCAT('photos/', i.file), 1000, MD5(i.id), 'http://x' \
         FROM piwigo_images i",
    )
    .await?;
    // The daemon keeps these counts as it records; fill them the same way.
    pool.execute(
        "INSERT INTO piwigo_s3upload_counts (outcome, n) \
         SELECT outcome, COUNT(*) FROM piwigo_s3upload_uploaded GROUP BY outcome",
    )
    .await?;
    pool.execute("DELETE FROM piwigo_s3upload_queue").await?;
    // Let InnoDB purge the million deleted queue rows, as it does in the
    // minutes after a real backlog drains one row at a time.
    tokio::time::sleep(Duration::from_secs(20)).await;
    report::report(&pool, &t, 10).await?;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let s = Instant::now();
        report::report(&pool, &t, 10).await?;
        statuses.push(s.elapsed());
    }
    statuses.sort();

    eprintln!("deletions");
    let retention = piwigo_s3upload::config::RetentionConfig::default();
    let mut sweep = piwigo_s3upload::retention::Sweep::default();
    // The first looks note where every recorded photo is, 20,000 a look,
    // as a daemon does after the upgrade.
    let s = Instant::now();
    let mut first_looks = 0;
    loop {
        piwigo_s3upload::retention::look(&pool, &t, &retention, &mut sweep).await?;
        first_looks += 1;
        let noted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM piwigo_s3upload_places")
            .fetch_one(&pool)
            .await?;
        if noted as u64 >= have {
            break;
        }
    }
    let catch_up = s.elapsed();
    let mut looks = Vec::new();
    for _ in 0..50 {
        let s = Instant::now();
        piwigo_s3upload::retention::look(&pool, &t, &retention, &mut sweep).await?;
        looks.push(s.elapsed());
    }
    looks.sort();
    pool.execute("DELETE FROM piwigo_images WHERE id = 500000")
        .await?;
    let s = Instant::now();
    let found = piwigo_s3upload::retention::look(&pool, &t, &retention, &mut sweep).await?;
    let full = s.elapsed();
    assert_eq!(found.marked, 1);

    println!();
    println!("| measure ({have} photos) | value |");
    println!("|---|---|");
    println!(
        "| monitoring poll, nothing new (median / max of 50) | {} / {} |",
        ms(polls[polls.len() / 2]),
        ms(polls[polls.len() - 1])
    );
    println!(
        "| `enqueue --all` ({} queued) | {} |",
        r.queued,
        ms(enqueue_time)
    );
    println!(
        "| `status` with {have} uploaded rows (median of 10) | {} |",
        ms(statuses[statuses.len() / 2])
    );
    println!(
        "| deletions look, nothing deleted (median / max of 50) | {} / {} |",
        ms(looks[looks.len() / 2]),
        ms(looks[looks.len() - 1])
    );
    println!(
        "| deletions look after one photo deleted (full comparison) | {} |",
        ms(full)
    );
    println!(
        "| first looks noting where {have} recorded photos are ({first_looks} looks) | {} |",
        ms(catch_up)
    );
    println!();
    println!("EXPLAIN of the poll's range read:");
    print_explain(&explain);
    println!("EXPLAIN of the newest-id read:");
    print_explain(&max);
    if std::env::var_os("KEEP").is_none() {
        pool.execute(format!("DROP DATABASE {name}").as_str())
            .await?;
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn print_explain(rows: &[sqlx::mysql::MySqlRow]) {
    for r in rows {
        let col = |name: &str| -> String {
            r.try_get::<Option<String>, _>(name)
                .ok()
                .flatten()
                .or_else(|| {
                    r.try_get::<Option<Vec<u8>>, _>(name)
                        .ok()
                        .flatten()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                })
                .or_else(|| {
                    r.try_get::<Option<i64>, _>(name)
                        .ok()
                        .flatten()
                        .map(|n| n.to_string())
                })
                .unwrap_or_else(|| "NULL".into())
        };
        println!(
            "  table={} type={} key={} rows={} extra={}",
            col("table"),
            col("type"),
            col("key"),
            col("rows"),
            col("Extra")
        );
    }
}
