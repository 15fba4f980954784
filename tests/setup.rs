//! The easy way in, end to end with the real binary: Piwigo's own
//! database settings, secrets in files, `init`, `health`, log priorities
//! for journald and a quiet start with static keys.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const DB_PASSWORD: &str = "Pw'with\"quotes-and-$-9931";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
}

/// `check` with this config file: its exit code and everything it printed.
fn check(config: &std::path::Path) -> (Option<i32>, String) {
    let out = bin()
        .arg("--config")
        .arg(config)
        .arg("check")
        .output()
        .unwrap();
    (out.status.code(), text(&out))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A database user of its own with an awkward password, and Piwigo's
/// database.inc.php for it as the installer writes it (addslashes'd).
async fn piwigo_settings(g: &Gallery) -> String {
    let user = g.create_user("p", DB_PASSWORD).await;
    let escaped = DB_PASSWORD.replace('\\', "\\\\").replace('\'', "\\'");
    let php = format!(
        "<?php\n$conf['dblayer'] = 'mysqli';\n$conf['db_base'] = '{}';\n$conf['db_user'] = '{user}';\n$conf['db_password'] = '{escaped}';\n$conf['db_host'] = '{}';\n\n$prefixeTable = '{}';\n\ndefine('PHPWG_INSTALLED', true);\n?>",
        g.name,
        db_host(),
        g.prefix
    );
    let dir = g.root().join("local/config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("database.inc.php"), php).unwrap();
    user
}

fn minimal_config(g: &Gallery, s3: &S3Server, secret_file: &Path, extra: &str) -> String {
    format!(
        "[piwigo]\nroot = \"{}\"\n\n[s3]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\nforce_path_style = true\naccess_key_id = \"{}\"\nsecret_access_key_file = \"{}\"\nprefix = \"photos/\"\n{extra}",
        g.root().display(),
        s3.endpoint,
        s3.access_key,
        secret_file.display()
    )
}

#[tokio::test]
async fn piwigo_settings_and_secret_files_upload_without_a_secret_in_the_config() {
    let g = Gallery::with_prefix("pwg_").await;
    let s3 = S3Server::start().await;
    let user = piwigo_settings(&g).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s3_secret");
    std::fs::write(&secret, format!("{SECRET_KEY}\n")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, minimal_config(&g, &s3, &secret, "")).unwrap();

    let mut output = String::new();
    let mut run = |args: &[&str]| {
        let out = bin()
            .env("PIWIGO_S3UPLOAD_LOG", "trace")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        output.push_str(&text(&out));
        (out.status.code(), text(&out))
    };
    let (code, check) = run(&["check"]);
    assert_eq!(code, Some(0), "{check}");
    assert!(
        check.contains("piwigo.database_url from")
            && check.contains("local/config/database.inc.php (")
            && check.contains("db_password line 5"),
        "{check}"
    );
    assert!(
        check.contains("piwigo.table_prefix from") && check.contains("$prefixeTable line 8"),
        "{check}"
    );
    assert!(
        check.contains(&format!(
            "s3.secret_access_key from the file {}",
            secret.display()
        )),
        "{check}"
    );
    assert_eq!(run(&["run", "--until-idle"]).0, Some(0));
    g.add_upload(1, "a.jpg", &photo_bytes(1, 50_000)).await;
    let (code, out) = run(&["run", "--until-idle"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(s3.keys().await, vec![upload_key("a.jpg")]);

    for leaked in [DB_PASSWORD, SECRET_KEY] {
        assert!(!output.contains(leaked), "{leaked} leaked:\n{output}");
    }
    g.drop_user(&user).await;
    g.drop_database().await;
}

#[tokio::test]
async fn secret_file_errors_are_clear_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let base = "[piwigo]\nroot = \"/srv\"\ndatabase_url = \"mysql://u@127.0.0.1/db\"\n[s3]\nbucket = \"b\"\naccess_key_id = \"AKIA0000\"\n";
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let cases = [
        (
            format!(
                "{base}secret_access_key_file = \"{}/absent\"\n",
                dir.path().display()
            ),
            "does not exist",
        ),
        (
            format!("{base}secret_access_key_file = \"{}\"\n", empty.display()),
            "is empty",
        ),
        (
            format!(
                "{base}secret_access_key_file = \"{}\"\n",
                dir.path().display()
            ),
            "cannot read",
        ),
    ];
    for (text_in, expected) in &cases {
        std::fs::write(&config, text_in).unwrap();
        let (code, msg) = check(&config);
        assert_eq!(code, Some(2), "{msg}");
        assert!(msg.contains("s3.secret_access_key_file"), "{msg}");
        assert!(msg.contains(expected), "{expected}: {msg}");
    }

    // A database password file fills a URL written without one; the
    // credentials directory (systemd's LoadCredential=) resolves bare names.
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("database_password"), "").unwrap();
    std::fs::write(
        &config,
        base.replace(
            "database_url",
            "database_password_file = \"database_password\"\ndatabase_url",
        ),
    )
    .unwrap();
    let out = bin()
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("piwigo.database_password_file"), "{msg}");
    assert!(
        msg.contains(&creds.path().join("database_password").display().to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn a_broken_database_inc_php_names_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("local/config");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("database.inc.php"),
        "<?php\n$conf['db_base'] = 'piwigo';\n$conf['db_user'] = 'piwigo';\n$conf['db_password'] = getenv('PW');\n",
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[piwigo]\nroot = \"{}\"\n[s3]\nbucket = \"b\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, msg) = check(&config);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("database.inc.php line 4"), "{msg}");
    assert!(msg.contains("$conf['db_password']"), "{msg}");
}

#[tokio::test]
async fn init_writes_a_checked_config_and_refuses_a_bad_one() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let user = piwigo_settings(&g).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s3_secret");
    std::fs::write(&secret, SECRET_KEY).unwrap();
    let config = dir.path().join("conf/piwigo-s3upload.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let init = |bucket: &str| {
        bin()
            .arg("--config")
            .arg(&config)
            .args(["init", "--non-interactive", "--piwigo-root"])
            .arg(g.root())
            .args(["--bucket", bucket, "--endpoint", &s3.endpoint])
            .args([
                "--access-key-id",
                &s3.access_key,
                "--secret-access-key-file",
            ])
            .arg(&secret)
            .output()
            .unwrap()
    };
    let out = init("no-such-bucket");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing was written"), "{}", text(&out));
    assert!(!config.exists());

    let out = init(BUCKET);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    assert!(
        msg.contains("enqueue --all") && msg.contains(" run"),
        "{msg}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(!written.contains(SECRET_KEY) && !written.contains("database_url ="));
    // Snapshots are on by default, checked on a database the daemon has
    // not run on yet.
    assert!(written.contains("\n[snapshots]\n"), "{written}");
    assert!(msg.contains("snapshots      none taken yet"), "{msg}");

    let out = init(BUCKET);
    assert_eq!(out.status.code(), Some(2), "an existing file needs --force");
    assert!(text(&out).contains("--force"));

    let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let out = bin()
        .arg("--config")
        .arg(&config)
        .args(["init", "--non-interactive", "--force", "--piwigo-root"])
        .arg(g.root())
        .args(["--bucket", BUCKET, "--endpoint", &s3.endpoint])
        .args([
            "--access-key-id",
            &s3.access_key,
            "--secret-access-key-file",
        ])
        .arg(&secret)
        .args(["--snapshot-recipient", recipient])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains(&format!("recipient = \"{recipient}\"")),
        "{written}"
    );
    let out = bin()
        .arg("--config")
        .arg(&config)
        .args([
            "init",
            "--non-interactive",
            "--force",
            "--no-snapshots",
            "--piwigo-root",
        ])
        .arg(g.root())
        .args(["--bucket", BUCKET, "--endpoint", &s3.endpoint])
        .args([
            "--access-key-id",
            &s3.access_key,
            "--secret-access-key-file",
        ])
        .arg(&secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(!written.contains("[snapshots]"), "{written}");
    g.drop_user(&user).await;
    g.drop_database().await;
}

/// `init --admin-database-url`: the daemon's own user does not exist yet;
/// init creates it with the password file's password through the
/// administrator's connection, grants it exactly what `grants` prints, and
/// the written config then runs the daemon as that user. The
/// administrator's URL is never written.
#[tokio::test]
async fn init_creates_and_grants_the_daemons_user_through_an_administrator() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    piwigo_settings(&g).await;
    g.create_formats_table().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s3_secret");
    std::fs::write(&secret, SECRET_KEY).unwrap();
    let password = dir.path().join("database_password");
    std::fs::write(&password, "Daemon-Own-pw'9\n").unwrap();
    let config = dir.path().join("piwigo-s3upload.toml");
    let user = format!("d{}", &g.name[g.name.len() - 8..]);
    let admin = format!("{}/{}", server_url(), g.name);
    let init = |extra: &[&str]| {
        bin()
            .arg("--config")
            .arg(&config)
            .args(["init", "--non-interactive", "--piwigo-root"])
            .arg(g.root())
            .args([
                "--database-url",
                &format!("mysql://{user}@{}/{}", db_host(), g.name),
                "--database-password-file",
            ])
            .arg(&password)
            .args(["--bucket", BUCKET, "--endpoint", &s3.endpoint])
            .args([
                "--access-key-id",
                &s3.access_key,
                "--secret-access-key-file",
            ])
            .arg(&secret)
            .args(extra)
            .output()
            .unwrap()
    };
    // Without the administrator: the user does not exist, nothing written.
    let out = init(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!config.exists());

    let out = init(&["--admin-database-url", &admin]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    assert!(
        msg.contains("privileges this config needs (granted now)"),
        "{msg}"
    );
    assert!(msg.contains("ok    privileges"), "{msg}");
    let written = std::fs::read_to_string(&config).unwrap();
    let admin_url = url::Url::parse(&server_url()).unwrap();
    assert!(
        !written.contains(&format!("{}@", admin_url.username())),
        "{written}"
    );
    if let Some(pw) = admin_url.password() {
        assert!(!written.contains(&format!(":{pw}@")), "{written}");
    }
    assert!(!written.contains("Daemon-Own-pw"), "{written}");
    // What it granted is what `grants` prints, and nothing on Piwigo's
    // tables but SELECT.
    let grants: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT CAST(GRANTEE AS CHAR) FROM information_schema.TABLE_PRIVILEGES \
         WHERE TABLE_SCHEMA = '{}' AND GRANTEE LIKE '%{user}%' AND PRIVILEGE_TYPE <> 'SELECT' \
         AND TABLE_NAME NOT LIKE '%s3upload%'",
        g.name
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap();
    assert!(grants.is_empty(), "{grants:?}");

    g.add_upload(1, "granted.jpg", &photo_bytes(8, 10_000))
        .await;
    let run = |args: &[&str]| {
        bin()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["enqueue", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["run", "--until-idle"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(s3.get(&upload_key("granted.jpg")).await.is_some());
    g.drop_user(&user).await;
    g.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_command_and_journald_priorities() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(
            &g,
            &s3,
            SECRET_KEY,
            &format!("[http]\nlisten = \"0.0.0.0:{port}\"\n"),
        ),
    )
    .unwrap();
    let health = |args: &[&str]| {
        bin()
            .arg("--config")
            .arg(&config)
            .arg("health")
            .args(args)
            .output()
            .unwrap()
    };
    let out = health(&[]);
    assert_eq!(out.status.code(), Some(1), "no daemon yet: {}", text(&out));
    assert!(text(&out).contains("cannot reach"), "{}", text(&out));

    // The daemon logs to a file that JOURNAL_STREAM names, as systemd
    // sets it up for the journal.
    let log = dir.path().join("journal");
    let file = std::fs::File::create(&log).unwrap();
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().unwrap();
    let mut daemon = bin()
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("PIWIGO_S3UPLOAD_LOG", "debug")
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stderr(file)
        .spawn()
        .unwrap();
    wait_for(
        "the listener",
        std::time::Duration::from_secs(20),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    let out = health(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = health(&["--ready"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("\"database\""), "{}", text(&out));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status();
    let _ = daemon.wait();

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.lines().count() > 2, "{logged}");
    for line in logged.lines() {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a line without a priority prefix: {line}"
        );
    }
    assert!(logged.lines().any(|l| l.starts_with("<6>")), "{logged}");
    assert!(
        !logged.contains("\u{1b}["),
        "no colour codes for the journal"
    );
    g.drop_database().await;
}

/// Static keys need nothing from ~/.aws: a home whose AWS config cannot
/// be read must not cause warnings.
#[tokio::test]
async fn static_keys_leave_the_aws_profile_unread() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // A directory where the file should be: reading it fails.
    std::fs::create_dir_all(home.join(".aws/config")).unwrap();
    std::fs::create_dir_all(home.join(".aws/credentials")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text(&g, &s3, SECRET_KEY, "")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = bin()
        .env("HOME", &home)
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    assert!(!msg.contains("WARN"), "{msg}");
    assert!(!msg.contains("failed to read"), "{msg}");
    g.drop_database().await;
}

/// A config the daemon's user cannot read is not "the wrong file": the
/// error names the file, its mode and owner, the user asking, and the
/// commands that let it read. Needs root (to run as another user).
#[test]
fn an_unreadable_config_names_mode_owner_and_the_daemons_user() {
    use std::os::unix::fs::PermissionsExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run the binary as nobody");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("piwigo-s3upload.toml");
    std::fs::write(&config, "[piwigo]\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_piwigo-s3upload"))
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains(&config.display().to_string()), "{msg}");
    assert!(msg.contains("mode 0600, owner root:root"), "{msg}");
    assert!(msg.contains("the daemon runs as user nobody"), "{msg}");
    assert!(msg.contains("chmod 0640"), "{msg}");
    assert!(!msg.contains("--config PATH"), "{msg}");
}
