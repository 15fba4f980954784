//! Least privilege, for real: a database user made only from `grants`'
//! output runs the daemon; without any single one of those privileges
//! `check` names it with the statement that adds it and `run` refuses
//! with exit code 2 before touching a table; an upgrade whose migration
//! adds a table says which grant it needs before migrating.

mod common;

use common::cli::*;
use common::*;
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::grants;
use piwigo_s3upload::queue::migrate;
use sqlx::MySqlPool;

const PASSWORD: &str = "least-Privilege-pw'1";
/// The host the test server sees the daemon connect from.
const HOST: &str = "127.0.0.1";

/// A user of this database made from `grants`' output, and a config that
/// connects as it.
async fn granted_user(g: &Gallery, s3: &S3Server) -> (String, String) {
    let user = format!("g{}", &g.name[g.name.len() - 8..]);
    g.grant_as_printed(&user, HOST, PASSWORD).await;
    let url = format!(
        "mysql://{user}:{}@{}/{}",
        urlencode(PASSWORD),
        db_host(),
        g.name
    );
    // With snapshots configured (paused), so that every printed privilege
    // is needed.
    let text =
        config_text(g, s3, SECRET_KEY, "[snapshots]\nenabled = false\n").replace(&g.url, &url);
    (format!("'{user}'@'{HOST}'"), text)
}

fn urlencode(text: &str) -> String {
    text.replace('\'', "%27")
}

/// Checksums of every Piwigo table: proof that nothing wrote to them.
async fn piwigo_checksums(g: &Gallery) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    for table in piwigo_s3upload::piwigo::REQUIRED_TABLES {
        let name = format!("{}{table}", g.prefix);
        let (t, sum): (String, Option<i64>) =
            sqlx::query_as(&format!("CHECKSUM TABLE `{name}` EXTENDED"))
                .fetch_one(&g.pool)
                .await
                .unwrap();
        out.push((t, sum));
    }
    out
}

async fn daemon_tables(g: &Gallery) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE ?",
    )
    .bind(format!("{}s3upload\\_%", g.prefix.replace('_', "\\_")))
    .fetch_all(&g.pool)
    .await
    .unwrap()
}

fn revoke(grant: &str) -> String {
    grant
        .replacen("GRANT ", "REVOKE ", 1)
        .replacen(" TO ", " FROM ", 1)
}

#[tokio::test]
async fn a_user_made_from_the_printed_grants_runs_the_daemon() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let (_, text) = granted_user(&g, &s3).await;
    let bytes = photo_bytes(1, 50_000);
    g.add_upload(1, "least.jpg", &bytes).await;

    let (out, msg) = run_with(&text, &["check"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("ok    privileges"), "{msg}");
    let (out, msg) = run_with(&text, &["enqueue", "--all"]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    assert_eq!(s3.get(&upload_key("least.jpg")).await, Some(bytes));
    let (out, msg) = run_with(&text, &["grants", "--missing"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("holds every privilege"), "{msg}");
    let (out, msg) = run_with(&text, &["status"]);
    assert!(out.status.success(), "{msg}");
    eprintln!("{msg}");
    assert!(msg.contains("Daemon: stopped ("), "{msg}");
    assert!(msg.contains("image  outcome"), "{msg}");
    g.drop_user(&format!("g{}", &g.name[g.name.len() - 8..]))
        .await;
    g.drop_database().await;
}

/// Each printed privilege taken away in turn, from a database the daemon
/// never ran on: `check` names it with its GRANT, `run` exits 2 with the
/// same statement, and neither Piwigo's tables nor the daemon's change.
/// Running that GRANT puts it back.
#[tokio::test]
async fn each_missing_privilege_is_named_and_refused_before_anything_changes() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let (account, text) = granted_user(&g, &s3).await;
    g.add_upload(1, "kept.jpg", &photo_bytes(2, 10_000)).await;
    let piwigo_before = piwigo_checksums(&g).await;

    let needed = grants::current(grants::Uses::ALL);
    assert!(needed.len() > 40, "{needed:?}");
    for grant in &needed {
        let statement = grant.statement(&g.name, &g.prefix, &account);
        // Exactly this one privilege (the statement re-states CREATE).
        let only = if grant.privilege == grants::Privilege::Create {
            statement.clone()
        } else {
            statement.replacen(", CREATE ON ", " ON ", 1)
        };
        g.exec(&revoke(&only)).await;

        let (out, msg) = run_with(&text, &["check"]);
        assert_eq!(out.status.code(), Some(1), "{statement}\n{msg}");
        assert!(msg.contains("FAIL  privileges"), "{msg}");
        assert!(
            msg.contains(&format!("  {statement} -- ")),
            "{statement}\n{msg}"
        );
        assert!(msg.contains("lacks 1 privilege "), "{statement}\n{msg}");

        let (out, msg) = run_with(&text, &["run", "--until-idle"]);
        assert_eq!(out.status.code(), Some(2), "{statement}\n{msg}");
        assert!(
            msg.contains(&format!("  {statement} -- ")),
            "{statement}\n{msg}"
        );
        assert!(msg.contains("nothing was changed"), "{msg}");

        assert_eq!(daemon_tables(&g).await, Vec::<String>::new(), "{statement}");
        assert_eq!(piwigo_checksums(&g).await, piwigo_before, "{statement}");

        g.exec(&statement).await;
    }
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    assert_eq!(piwigo_checksums(&g).await, piwigo_before);
    g.drop_user(&format!("g{}", &g.name[g.name.len() - 8..]))
        .await;
    g.drop_database().await;
}

/// A database migrated by the previous release (migrations 1 to 4) as a
/// user with that release's grants: the new version's migrations 5 and 8
/// add tables, so `run` says which grant it needs and changes nothing; after
/// the printed GRANTs, the daemon migrates and runs.
#[tokio::test]
async fn an_upgrade_that_adds_a_table_names_its_grant_before_migrating() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let user = format!("g{}", &g.name[g.name.len() - 8..]);
    let account = format!("'{user}'@'{HOST}'");
    g.exec(&format!(
        "CREATE USER {account} IDENTIFIED BY '{}'",
        PASSWORD.replace('\'', "''")
    ))
    .await;
    for grant in grants::through(4) {
        g.exec(&grant.statement(&g.name, &g.prefix, &account)).await;
    }
    let url = format!(
        "mysql://{user}:{}@{}/{}",
        urlencode(PASSWORD),
        db_host(),
        g.name
    );
    let as_user = MySqlPool::connect(&url).await.unwrap();
    let t = Tables::new(&g.prefix);
    migrate::run_through(&as_user, &t, 4).await.unwrap();
    as_user.close().await;
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(&g.url, &url);
    let before = daemon_tables(&g).await;
    assert!(!before.contains(&format!("{}s3upload_formats", g.prefix)));

    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains(&format!(
            "migrations {} of this version not applied yet",
            migrate::MIGRATIONS
                .iter()
                .filter(|m| m.version > 4)
                .map(|m| m.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "{msg}"
    );
    let create = format!(
        "GRANT CREATE ON `{}`.`{}s3upload_formats` TO {account}; -- ",
        g.name, g.prefix
    );
    assert!(msg.contains(&create), "{msg}");
    assert!(msg.contains("migration 5 creates it"), "{msg}");
    assert_eq!(daemon_tables(&g).await, before, "nothing changed");
    let applied = g
        .scalar_i64(&format!(
            "SELECT CAST(MAX(version) AS SIGNED) FROM {}",
            g.table("s3upload_migrations")
        ))
        .await;
    assert_eq!(applied, 4);

    // What the package's postinst prints after an upgrade.
    let (out, printed) = run_with(&text, &["grants", "--missing"]);
    assert!(out.status.success(), "{printed}");
    let statements: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("GRANT "))
        .map(|l| l.split(" -- ").next().unwrap())
        .collect();
    // Only the tables migrations after 4 create: formats (5), the version
    // history (8) and the deleted photos' tables (9).
    let created_since = ["formats", "versions", "deleted", "places", "removed"];
    assert!(
        statements.iter().all(|s| created_since
            .iter()
            .any(|t| s.contains(&format!("{}s3upload_{t}`", g.prefix)))),
        "{printed}"
    );
    assert!(
        statements
            .iter()
            .any(|s| s.contains(&format!("{}s3upload_versions`", g.prefix))),
        "{printed}"
    );
    for s in &statements {
        g.exec(&format!("GRANT {s}")).await;
    }
    g.add_upload(1, "after-upgrade.jpg", &photo_bytes(3, 10_000))
        .await;
    let (out, msg) = run_with(&text, &["enqueue", "--all"]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    assert!(s3.get(&upload_key("after-upgrade.jpg")).await.is_some());
    g.drop_user(&user).await;
    g.drop_database().await;
}

/// A config without `[snapshots]`: `grants` read from it grants Piwigo's
/// tables one by one (no database-wide SELECT, no LOCK TABLES), and a user
/// made from that runs the daemon.
#[tokio::test]
async fn without_snapshots_piwigos_tables_are_granted_one_by_one() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let user = format!("g{}", &g.name[g.name.len() - 8..]);
    let url = format!(
        "mysql://{user}:{}@{}/{}",
        urlencode(PASSWORD),
        db_host(),
        g.name
    );
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(&g.url, &url);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    let (out, script) = run_with(
        &text,
        &[
            "grants",
            "--user",
            &user,
            "--host",
            HOST,
            "--password-file",
            password_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{script}");
    assert!(script.contains("no [snapshots] section"), "{script}");
    let statements: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("GRANT ") || l.starts_with("CREATE USER"))
        .collect();
    assert!(
        statements
            .iter()
            .all(|s| !s.contains(&format!("`{}`.* TO", g.name))),
        "{script}"
    );
    assert!(
        statements.iter().any(|s| s.contains(&format!(
            "GRANT SELECT ON `{}`.`{}images`",
            g.name, g.prefix
        ))),
        "{script}"
    );
    // A table-level GRANT needs the table: Piwigo 13+ has this one.
    g.create_formats_table().await;
    for statement in &statements {
        g.exec(statement).await;
    }
    g.add_upload(1, "no-snapshots.jpg", &photo_bytes(4, 10_000))
        .await;
    let (out, msg) = run_with(&text, &["check"]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["enqueue", "--all"]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    assert!(s3.get(&upload_key("no-snapshots.jpg")).await.is_some());
    g.drop_user(&user).await;
    g.drop_database().await;
}
