//! `init`: a starter config from a few answers (or flags), checked live
//! with the same checks as `check` before it is written.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::database_inc::DatabaseSettings;
use crate::{accounts, check};

/// The answers; each one a flag, asked for on a terminal when missing.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InitArgs {
    /// Piwigo's install directory (where local/config/database.inc.php is).
    #[arg(long)]
    pub piwigo_root: Option<PathBuf>,
    /// mysql://user@host:3306/database: the daemon's own database user (see
    /// `grants`) instead of Piwigo's from database.inc.php. The table
    /// prefix still comes from database.inc.php when it can be read.
    #[arg(long)]
    pub database_url: Option<String>,
    /// A file holding the password of --database-url's user (kept out of
    /// the config), e.g. the one given to `grants --password-file`.
    #[arg(long)]
    pub database_password_file: Option<PathBuf>,
    /// The bucket that receives the photos.
    #[arg(long)]
    pub bucket: Option<String>,
    /// The bucket's region [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// An S3-compatible server's URL (MinIO, Garage, R2, B2...); none for
    /// Amazon S3. Implies path-style requests.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Access key id; with neither key, the AWS default chain is used.
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// A file holding the secret access key (kept out of the config and of
    /// the process list); or a bare name in $CREDENTIALS_DIRECTORY or
    /// /run/secrets.
    #[arg(long)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Folder in the bucket (the plugin's "bucket path").
    #[arg(long, default_value = "photos/")]
    pub prefix: String,
    /// A database administrator (e.g.
    /// mysql://root@localhost/?socket=/run/mysqld/mysqld.sock, as root)
    /// that init uses once to create --database-url's user with its
    /// password and grant it exactly what `grants` prints for this config.
    /// Never written to the config.
    #[arg(long, value_name = "URL", requires = "database_url")]
    pub admin_database_url: Option<String>,
    /// With --admin-database-url: the host the database server sees the
    /// daemon connect from [default: as it sees init's connection when both
    /// go to the same server address, else --database-url's host].
    #[arg(long, value_name = "HOST", requires = "admin_database_url")]
    pub grant_host: Option<String>,
    /// An age public key (`age1...`, from `age-keygen -o key.txt`) that
    /// database snapshots are encrypted to; only `restore --identity
    /// key.txt` reads them then.
    #[arg(long, value_name = "AGE_PUBLIC_KEY", conflicts_with = "no_snapshots")]
    pub snapshot_recipient: Option<String>,
    /// Leave database snapshots off (the [snapshots] section out): the
    /// bucket then holds the photos but not the gallery's database.
    #[arg(long)]
    pub no_snapshots: bool,
    /// Never ask: fail when a required answer is missing.
    #[arg(long)]
    pub non_interactive: bool,
    /// Replace an existing config file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("init: {0}")]
    Usage(String),
    #[error("init: cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "init: the checks failed (above); nothing was written. Fix the values and run init again"
    )]
    ChecksFailed,
    #[error("init: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("init: {0}; nothing was written")]
    Grants(crate::grants::GrantsError),
}

impl InitError {
    /// Checks that failed are a run-time failure; everything else is usage.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::ChecksFailed | Self::Write { .. } => crate::exit::FAILURE,
            Self::Grants(e) => e.exit_code(),
            _ => crate::exit::CONFIG,
        }
    }
}

struct Asker {
    interactive: bool,
}

impl Asker {
    fn ask(&self, flag: &str, question: &str, default: Option<&str>) -> Result<String, InitError> {
        if !self.interactive {
            return default
                .map(str::to_owned)
                .ok_or_else(|| InitError::Usage(format!("--{flag} is required")));
        }
        loop {
            match default {
                Some(d) => eprint!("{question} [{d}]: "),
                None => eprint!("{question}: "),
            }
            let mut line = String::new();
            let n = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| InitError::Usage(format!("cannot read the answer: {e}")))?;
            let answer = line.trim();
            if n == 0 {
                return Err(InitError::Usage(format!(
                    "no answer for --{flag} (end of input)"
                )));
            }
            match (answer.is_empty(), default) {
                (false, _) => return Ok(answer.to_owned()),
                (true, Some(d)) => return Ok(d.to_owned()),
                (true, None) => eprintln!("an answer is needed"),
            }
        }
    }

    /// A secret typed on the terminal with echo off.
    fn hidden(&self, question: &str) -> Result<String, InitError> {
        let echo = |on: bool| {
            std::process::Command::new("stty")
                .arg(if on { "echo" } else { "-echo" })
                .stdin(std::process::Stdio::inherit())
                .status()
        };
        let _ = echo(false);
        let answer = self.ask("secret-access-key-file", question, None);
        let _ = echo(true);
        eprintln!();
        answer
    }

    fn optional(&self, question: &str) -> Result<Option<String>, InitError> {
        if !self.interactive {
            return Ok(None);
        }
        let answer = self.ask("", &format!("{question} (empty for none)"), Some(""))?;
        Ok(Some(answer).filter(|a| !a.is_empty()))
    }
}

/// Runs `init`, writing `path`. Returns when the file is written.
pub async fn run(path: &Path, mut args: InitArgs) -> Result<(), InitError> {
    let asker = Asker {
        interactive: !args.non_interactive && std::io::stdin().is_terminal(),
    };
    if path.exists() && !args.force {
        return Err(InitError::Usage(format!(
            "{} exists; pass --force to replace it, or --config PATH to write another file",
            path.display()
        )));
    }

    let root = match args.piwigo_root.take() {
        Some(r) => r,
        None => PathBuf::from(asker.ask(
            "piwigo-root",
            "Piwigo's install directory",
            Some("/var/www/html/piwigo"),
        )?),
    };
    let settings = DatabaseSettings::find(&root);
    // With a database user of its own, only the prefix is read from
    // Piwigo's settings, and written down: the daemon's user may not be
    // allowed to read that file at each start.
    let mut table_prefix = None;
    let database_url = match (args.database_url.take(), &settings) {
        (Some(url), Some(found)) => {
            table_prefix = DatabaseSettings::read(found).ok().map(|s| s.prefix.text);
            Some(url)
        }
        (Some(url), None) => Some(url),
        (None, Some(found)) => {
            eprintln!(
                "database: Piwigo's settings in {} will be read at each start; Piwigo's own user may write to Piwigo's tables: for a user of the daemon's own with least privilege, see `piwigo-s3upload grants --help` and init's --database-url",
                found.display()
            );
            None
        }
        (None, None) => Some(asker.ask(
            "database-url",
            "Piwigo's database as mysql://user:password@host:3306/database",
            None,
        )?),
    };
    let bucket = match args.bucket.take() {
        Some(b) => b,
        None => asker.ask("bucket", "Bucket name", None)?,
    };
    let endpoint = match args.endpoint.take() {
        Some(e) => Some(e),
        None => asker.optional("S3-compatible server URL; none for Amazon S3")?,
    };
    let region = match args.region.take() {
        Some(r) => Some(r),
        None if asker.interactive => {
            let default = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
            Some(asker.ask("region", "Bucket region", Some(&default))?)
        }
        None => None,
    };
    let access_key_id = match args.access_key_id.take() {
        Some(k) => Some(k),
        None if args.secret_access_key_file.is_none() => asker.optional(
            "Access key id; none for the AWS default chain (environment, profile, instance role)",
        )?,
        None => None,
    };
    let mut secret = None;
    let secret_file = match (args.secret_access_key_file.take(), &access_key_id) {
        (Some(f), _) => Some(f),
        (None, Some(_)) if asker.interactive => {
            secret =
                Some(asker.hidden("Secret access key (not shown; kept in the file, mode 0600)")?);
            None
        }
        (None, Some(_)) => {
            return Err(InitError::Usage(
                "--secret-access-key-file is required with --access-key-id".into(),
            ));
        }
        (None, None) => None,
    };
    // Snapshots are what brings the gallery back, not only its files: on
    // unless asked otherwise. The users table they hold has password
    // hashes, hence the offer to encrypt them.
    let snapshots = if args.no_snapshots {
        None
    } else {
        Some(match args.snapshot_recipient.take() {
            Some(r) => Some(r),
            None => asker.optional(
                "Age public key to encrypt database snapshots to (`age-keygen -o key.txt` prints one; keep key.txt off this host); none to store them unencrypted",
            )?,
        })
    };

    let text = render(&Answers {
        root: &root,
        database_url: database_url.as_deref(),
        database_password_file: args.database_password_file.as_deref(),
        table_prefix: table_prefix.as_deref(),
        bucket: &bucket,
        region: region.as_deref(),
        endpoint: endpoint.as_deref(),
        access_key_id: access_key_id.as_deref(),
        secret_access_key_file: secret_file.as_deref(),
        secret_access_key: secret.as_deref(),
        prefix: &args.prefix,
        snapshots: snapshots.as_ref().map(Option::as_deref),
    });
    let config = Config::from_toml(&text, path, None)?;
    // The daemon's own user, made and granted now by an administrator when
    // one is given (or named at the prompt).
    let admin_url = match args.admin_database_url.take() {
        Some(url) => Some(url),
        None if database_url.is_some() => asker.optional(
            "A database administrator's URL to create this user and grant it what it needs now (as root: mysql://root@localhost/?socket=/run/mysqld/mysqld.sock); none if `grants` was run already",
        )?,
        None => None,
    };
    if let Some(url) = admin_url {
        let applied = crate::grants::apply::apply(&url, &config, args.grant_host.as_deref())
            .await
            .map_err(InitError::Grants)?;
        eprintln!(
            "database: {} exists and holds the {} privileges this config needs (granted now)",
            applied.account, applied.statements
        );
    }
    let findings = check::run(&config).await;
    eprint!("{}", check::render(&findings));
    if !findings.iter().all(|f| f.ok) {
        return Err(InitError::ChecksFailed);
    }
    let access = write(path, &text)?;
    join_gallery_group(&root);
    let shown = path.display();
    println!("wrote {shown} ({access}); every key is described in config.example.toml");
    println!("next, queue the photos already in the gallery, then start the daemon:");
    println!("  piwigo-s3upload --config {shown} enqueue --all");
    println!("  piwigo-s3upload --config {shown} run");
    Ok(())
}

/// Writes the file so the daemon's user can read it and nobody else:
/// 0640 with the package's group when that group exists (the service runs
/// as its user), else 0600 owned by whoever runs `init`, who is then the
/// user the daemon runs as. Returns the mode and owner, to say so.
fn write(path: &Path, text: &str) -> Result<String, InitError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| InitError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    let group = accounts::group_id(accounts::DAEMON_USER);
    let mode = match group {
        Some(gid) => {
            std::os::unix::fs::fchown(&file, None, Some(gid)).map_err(err)?;
            0o640
        }
        None => 0o600,
    };
    // An existing file keeps its mode through truncate: set it either way.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(accounts::describe_file(path).unwrap_or_default()
        + &match group {
            Some(_) => format!(": readable by the service's user {}", accounts::DAEMON_USER),
            None => format!(
                ": run the daemon as {}, the only user that can read it",
                accounts::current_user()
            ),
        })
}

/// When the package's user exists and the gallery belongs to another group
/// (the web server's, www-data on Debian), adds the user to that group so
/// the service can read the photos, and says so. Only root can; others are
/// told the command.
fn join_gallery_group(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let user = accounts::DAEMON_USER;
    let Ok(meta) = std::fs::metadata(root) else {
        return;
    };
    let gid = meta.gid();
    if !accounts::user_exists(user) || gid == 0 || accounts::in_group(user, gid) {
        return;
    }
    let group = accounts::group_name(gid);
    let shown = root.display();
    if !rustix::process::geteuid().is_root() {
        println!(
            "{shown} belongs to group {group}: as root, `adduser {user} {group}` lets the service read the photos"
        );
        return;
    }
    match std::process::Command::new("usermod")
        .args(["-a", "-G", &group, user])
        .status()
    {
        Ok(s) if s.success() => println!(
            "added user {user} to group {group}, which owns {shown}, so the service can read the photos"
        ),
        Ok(_) | Err(_) => println!(
            "{shown} belongs to group {group}, and adding user {user} to it failed: run `adduser {user} {group}`"
        ),
    }
}

struct Answers<'a> {
    root: &'a Path,
    database_url: Option<&'a str>,
    database_password_file: Option<&'a Path>,
    table_prefix: Option<&'a str>,
    bucket: &'a str,
    region: Option<&'a str>,
    endpoint: Option<&'a str>,
    access_key_id: Option<&'a str>,
    secret_access_key_file: Option<&'a Path>,
    secret_access_key: Option<&'a str>,
    prefix: &'a str,
    /// `Some` writes a [snapshots] section, with the recipient if any.
    snapshots: Option<Option<&'a str>>,
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn render(a: &Answers<'_>) -> String {
    let mut t = String::from(
        "# Written by `piwigo-s3upload init`; every key is described in\n# config.example.toml.\n\n[piwigo]\n",
    );
    t += &format!("root = {}\n", quoted(&a.root.to_string_lossy()));
    match a.database_url {
        Some(url) => {
            t += &format!("database_url = {}\n", quoted(url));
            if let Some(f) = a.database_password_file {
                t += &format!(
                    "database_password_file = {}\n",
                    quoted(&f.to_string_lossy())
                );
            }
            if let Some(p) = a.table_prefix {
                t += &format!("table_prefix = {}\n", quoted(p));
            }
        }
        None => {
            t += "# database_url and table_prefix: read from Piwigo's local/config/database.inc.php\n"
        }
    }
    t += &format!("\n[s3]\nbucket = {}\n", quoted(a.bucket));
    if let Some(r) = a.region {
        t += &format!("region = {}\n", quoted(r));
    }
    if let Some(e) = a.endpoint {
        t += &format!("endpoint = {}\nforce_path_style = true\n", quoted(e));
    }
    if let Some(k) = a.access_key_id {
        t += &format!("access_key_id = {}\n", quoted(k));
    }
    if let Some(f) = a.secret_access_key_file {
        t += &format!(
            "secret_access_key_file = {}\n",
            quoted(&f.to_string_lossy())
        );
    }
    if let Some(s) = a.secret_access_key {
        t += &format!("secret_access_key = {}\n", quoted(s));
    }
    t += &format!("prefix = {}\nkey_format = \"file\"\n", quoted(a.prefix));
    if let Some(recipient) = a.snapshots {
        t += "\n# A snapshot of Piwigo's database and local/ settings a day, so that\n# `restore --gallery` can bring the whole gallery back.\n[snapshots]\ninterval = \"1d\"\n";
        match recipient {
            Some(r) => t += &format!("recipient = {}\n", quoted(r)),
            None => {
                t += "# recipient = \"age1...\"  (encrypts them; the users table holds password hashes)\n"
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_config_parses_and_quotes_values() {
        let text = render(&Answers {
            root: Path::new("/srv/pi\"wigo"),
            database_url: Some("mysql://u:p@h:3306/db"),
            database_password_file: None,
            table_prefix: Some("pwg_"),
            bucket: "b",
            region: Some("eu-west-3"),
            endpoint: Some("http://127.0.0.1:9000"),
            access_key_id: Some("AKIA"),
            secret_access_key_file: Some(Path::new("/etc/k")),
            secret_access_key: None,
            prefix: "photos/",
            snapshots: Some(Some(RECIPIENT)),
        });
        let c: Config = toml::from_str(&text).unwrap();
        assert_eq!(c.piwigo.root, Path::new("/srv/pi\"wigo"));
        let snapshots = c.snapshots.unwrap();
        assert!(snapshots.enabled);
        assert_eq!(snapshots.recipient.as_deref(), Some(RECIPIENT));
        assert_eq!(c.s3.region_in_file.as_deref(), Some("eu-west-3"));
        assert!(c.s3.force_path_style);
        assert_eq!(c.s3.secret_access_key_file, Some(PathBuf::from("/etc/k")));
    }

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn snapshots_are_on_unless_left_out() {
        let answers = |snapshots| Answers {
            root: Path::new("/srv/piwigo"),
            database_url: None,
            database_password_file: None,
            table_prefix: None,
            bucket: "b",
            region: None,
            endpoint: None,
            access_key_id: None,
            secret_access_key_file: None,
            secret_access_key: None,
            prefix: "photos/",
            snapshots,
        };
        let on: Config = toml::from_str(&render(&answers(Some(None)))).unwrap();
        let on = on.snapshots.unwrap();
        assert!(on.enabled && on.recipient.is_none());
        assert_eq!(on.interval, std::time::Duration::from_secs(86_400));
        let off: Config = toml::from_str(&render(&answers(None))).unwrap();
        assert!(off.snapshots.is_none());
    }

    #[test]
    fn a_missing_answer_names_its_flag() {
        let asker = Asker { interactive: false };
        let e = asker.ask("bucket", "Bucket", None).unwrap_err();
        assert!(e.to_string().contains("--bucket is required"), "{e}");
        assert_eq!(e.exit_code(), crate::exit::CONFIG);
    }
}
