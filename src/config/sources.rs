//! The second step of loading: where the database and credential
//! settings come from when the config file does not hold them: the
//! environment, Piwigo's own `database.inc.php`, and secret files. Each
//! value's origin is kept so `check` can say it. This is the one part of
//! the config that reads anything but the file's text.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::sections::{Config, DATABASE_URL_ENV, Origin};
use crate::database_inc::{DatabaseSettings, Server};
use crate::secret::Secret;
use crate::secret_file;

/// MariaDB's socket on Debian, where PHP's mysqli goes for "localhost".
const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";

/// What the process environment says about the settings.
#[derive(Debug, Default)]
pub struct Environment {
    /// PIWIGO_S3UPLOAD_DATABASE_URL.
    pub database_url: Option<String>,
    /// AWS_REGION, as the AWS SDKs read it.
    pub aws_region: Option<String>,
    /// $CREDENTIALS_DIRECTORY (systemd's LoadCredential=).
    pub credentials_dir: Option<PathBuf>,
}

impl Environment {
    /// The process environment; tests build their own `Environment`.
    pub fn current() -> Self {
        Self {
            database_url: std::env::var(DATABASE_URL_ENV).ok(),
            aws_region: std::env::var("AWS_REGION").ok(),
            credentials_dir: secret_file::credentials_dir_from_env(),
        }
    }
}

impl Config {
    /// The second step: fills in what the file left out, from `env` and
    /// the files the config points to, then validates the whole.
    pub fn resolve(mut self, env: &Environment) -> Result<Self, ConfigError> {
        apply(&mut self, env)?;
        self.validate()?;
        Ok(self)
    }

    /// Both steps on text already read, against the process environment
    /// with the database URL given apart (tests pass their own, or none).
    /// Like [`Config::resolve`], it reads the files the config points to;
    /// [`Config::parse`] is the step that reads nothing.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env_database_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Environment {
            database_url: env_database_url,
            ..Environment::current()
        };
        Self::parse(text, path)?.resolve(&env)
    }
}

/// Fills in what the file left out, in this order: the environment,
/// secret files, Piwigo's settings; and records each origin.
fn apply(config: &mut Config, env: &Environment) -> Result<(), ConfigError> {
    let credentials_dir = env.credentials_dir.as_deref();
    let mut origins = Vec::new();
    let mut note = |setting: &'static str, from: String| origins.push(Origin { setting, from });

    let s3 = &mut config.s3;
    s3.region = match (&s3.region_in_file, &env.aws_region) {
        (Some(r), _) => {
            note("s3.region", "the config file".into());
            r.clone()
        }
        (None, Some(r)) if !r.trim().is_empty() => {
            note("s3.region", "the environment (AWS_REGION)".into());
            r.clone()
        }
        _ => {
            note("s3.region", "the default".into());
            "us-east-1".into()
        }
    };
    for (setting, value, file) in [
        (
            "s3.access_key_id",
            &mut s3.access_key_id,
            &s3.access_key_id_file,
        ),
        (
            "s3.secret_access_key",
            &mut s3.secret_access_key,
            &s3.secret_access_key_file,
        ),
    ] {
        match (value.is_some(), file) {
            (true, Some(_)) => {
                return Err(ConfigError::invalid(
                    setting,
                    format!("is set both in the file and by {setting}_file; keep one"),
                ));
            }
            (false, Some(name)) => {
                let field = if setting == "s3.access_key_id" {
                    "s3.access_key_id_file"
                } else {
                    "s3.secret_access_key_file"
                };
                *value = Some(secret_file::read(field, name, credentials_dir)?);
                note(setting, file_origin(name, credentials_dir));
            }
            (true, None) => note(setting, "the config file".into()),
            (false, None) => {}
        }
    }

    let piwigo = &mut config.piwigo;
    let env_url = env.database_url.clone().filter(|u| !u.is_empty());
    let need_url = env_url.is_none() && piwigo.database_url.is_none();
    let path = match &piwigo.database_settings {
        Some(path) => Some(path.clone()),
        None => DatabaseSettings::find(&piwigo.root),
    };
    let mut unread = None;
    let settings = match path {
        Some(path) if need_url => Some(DatabaseSettings::read(&path)?),
        // Only the prefix is wanted: a file the daemon may not read (it
        // holds the password) leaves the default, and `check` says so.
        Some(path) if piwigo.table_prefix_in_file.is_none() => {
            match DatabaseSettings::read(&path) {
                Ok(s) => Some(s),
                Err(e) => {
                    unread = Some(e.to_string());
                    None
                }
            }
        }
        _ => None,
    };

    if let Some(url) = env_url {
        piwigo.database_url = Some(Secret::new(url));
        note(
            "piwigo.database_url",
            format!("the environment ({DATABASE_URL_ENV})"),
        );
    } else if piwigo.database_url.is_some() {
        note("piwigo.database_url", "the config file".into());
    } else if let Some(s) = &settings {
        let with_password = piwigo.database_password_file.is_none();
        piwigo.database_url = Some(url_from_settings(s, with_password)?);
        note(
            "piwigo.database_url",
            format!(
                "{} ($conf db_host line {}, db_user line {}, db_password line {}, db_base line {})",
                s.path.display(),
                s.host.line,
                s.user.line,
                s.password.line,
                s.base.line
            ),
        );
    } else {
        return Err(ConfigError::invalid(
            "piwigo.database_url",
            format!(
                "missing, and Piwigo's settings were not found at {} or {}; set piwigo.root to Piwigo's install directory, piwigo.database_settings to its database.inc.php, or set database_url (or {DATABASE_URL_ENV})",
                piwigo
                    .root
                    .join(crate::database_inc::RELATIVE_PATH)
                    .display(),
                crate::database_inc::LINUXSERVER_PATH
            ),
        ));
    }

    if let Some(name) = &piwigo.database_password_file {
        let password = secret_file::read("piwigo.database_password_file", name, credentials_dir)?;
        let url = piwigo.database_url.as_ref().map(Secret::expose);
        piwigo.database_url = Some(set_password(url.unwrap_or_default(), &password)?);
        note("database password", file_origin(name, credentials_dir));
    }

    piwigo.table_prefix = match (&piwigo.table_prefix_in_file, &settings) {
        (Some(p), _) => {
            note("piwigo.table_prefix", "the config file".into());
            p.clone()
        }
        (None, Some(s)) => {
            note(
                "piwigo.table_prefix",
                format!(
                    "{} ($prefixeTable line {})",
                    s.path.display(),
                    s.prefix.line
                ),
            );
            s.prefix.text.clone()
        }
        (None, None) => {
            let from = match unread {
                Some(e) => format!("the default, as Piwigo's settings were unreadable: {e}"),
                None => "the default".into(),
            };
            note("piwigo.table_prefix", from);
            "piwigo_".into()
        }
    };
    config.origins = origins;
    Ok(())
}

fn file_origin(name: &Path, credentials_dir: Option<&Path>) -> String {
    format!(
        "the file {}",
        secret_file::locate(name, credentials_dir).display()
    )
}

/// Characters kept as they are in the user, password and database parts.
const PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, PART).to_string()
}

/// The `mysql://` URL for Piwigo's settings, as Piwigo's mysqli layer
/// reads `db_host`: a path is a socket, `host:port` TCP, and a bare
/// "localhost" the local server's default socket when there is one.
fn url_from_settings(s: &DatabaseSettings, with_password: bool) -> Result<Secret, ConfigError> {
    let socket = match s.server()? {
        Server::Socket(path) => Some(path),
        Server::Tcp { host, port: None } if host == "localhost" => {
            Some(PathBuf::from(DEFAULT_SOCKET)).filter(|p| p.exists())
        }
        Server::Tcp { .. } => None,
    };
    let authority = match (&socket, s.server()?) {
        (Some(_), _) => "localhost".to_owned(),
        (None, Server::Tcp { host, port }) => {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("{host}:{}", port.unwrap_or(3306))
        }
        (None, Server::Socket(_)) => "localhost".to_owned(),
    };
    let password = if with_password && !s.password.text.is_empty() {
        format!(":{}", encode(&s.password.text))
    } else {
        String::new()
    };
    let mut url = format!(
        "mysql://{}{password}@{authority}/{}",
        encode(&s.user.text),
        encode(&s.base.text)
    );
    if let Some(path) = socket {
        url.push_str("?socket=");
        url.push_str(&encode(&path.to_string_lossy()));
    }
    Ok(Secret::new(url))
}

/// The URL with its password replaced by one read from a file.
fn set_password(url: &str, password: &Secret) -> Result<Secret, ConfigError> {
    let mut parsed = url::Url::parse(url).map_err(|_| {
        ConfigError::invalid(
            "piwigo.database_url",
            "is not a URL; write it as mysql://user@host:3306/database (the password comes from database_password_file)",
        )
    })?;
    if parsed.password().is_some() {
        return Err(ConfigError::invalid(
            "piwigo.database_url",
            "holds a password while piwigo.database_password_file is set; keep one",
        ));
    }
    if parsed.username().is_empty() {
        return Err(ConfigError::invalid(
            "piwigo.database_url",
            "names no user to go with piwigo.database_password_file; write mysql://user@host:3306/database",
        ));
    }
    parsed
        .set_password(Some(&encode(password.expose())))
        .map_err(|()| ConfigError::invalid("piwigo.database_url", "cannot hold a password"))?;
    Ok(Secret::new(String::from(parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const S3: &str = "[s3]\nbucket = \"photos\"\n";

    fn gallery(settings: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("local/config");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(conf.join("database.inc.php"), settings).unwrap();
        dir
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"))?.resolve(&Environment::default())
    }

    fn sqlx_options(c: &Config) -> sqlx::mysql::MySqlConnectOptions {
        sqlx::mysql::MySqlConnectOptions::from_str(c.database_url()).unwrap()
    }

    const SETTINGS: &str = "<?php\n$conf['db_base'] = 'pi wigo';\n$conf['db_user'] = 'gal@ery';\n$conf['db_password'] = 'p@ss:w/rd%\\'x';\n$conf['db_host'] = 'db.example:3307';\n$prefixeTable = 'pwg_';\n";

    #[test]
    fn database_settings_come_from_piwigo() {
        let g = gallery(SETTINGS);
        let c = load(&format!(
            "[piwigo]\nroot = \"{}\"\n{S3}",
            g.path().display()
        ))
        .unwrap();
        assert_eq!(c.piwigo.table_prefix, "pwg_");
        let o = sqlx_options(&c);
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 3307);
        assert_eq!(o.get_username(), "gal@ery");
        assert_eq!(o.get_database(), Some("pi wigo"));
        // The password reaches the scrubber, decoded.
        assert!(c.secrets().contains(&"p@ss:w/rd%'x".to_string()));
        let db = c
            .origins
            .iter()
            .find(|o| o.setting == "piwigo.database_url")
            .unwrap();
        assert!(db.from.contains("database.inc.php"), "{db:?}");
        assert!(db.from.contains("db_password line 4"), "{db:?}");
    }

    #[test]
    fn file_values_win_and_a_password_file_fills_the_url() {
        let g = gallery(SETTINGS);
        let pw = g.path().join("pw");
        std::fs::write(&pw, "fr0m-f/le\n").unwrap();
        let c = load(&format!(
            "[piwigo]\nroot = \"{}\"\ndatabase_url = \"mysql://me@h:3306/db\"\ndatabase_password_file = \"{}\"\ntable_prefix = \"x_\"\n{S3}",
            g.path().display(),
            pw.display()
        ))
        .unwrap();
        assert_eq!(c.piwigo.table_prefix, "x_");
        let o = sqlx_options(&c);
        assert_eq!(o.get_host(), "h");
        assert_eq!(o.get_username(), "me");
        assert!(c.secrets().contains(&"fr0m-f/le".to_string()));
    }

    #[test]
    fn socket_hosts_become_socket_urls() {
        let g = gallery(&SETTINGS.replace("db.example:3307", "/var/run/my.sock"));
        let c = load(&format!(
            "[piwigo]\nroot = \"{}\"\n{S3}",
            g.path().display()
        ))
        .unwrap();
        assert!(
            c.database_url().ends_with("?socket=%2Fvar%2Frun%2Fmy.sock"),
            "{}",
            c.database_url().replace("p%40ss", "***")
        );
    }

    #[test]
    fn missing_settings_say_where_they_were_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(&format!(
            "[piwigo]\nroot = \"{}\"\n{S3}",
            dir.path().display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("piwigo.database_url"), "{e}");
        assert!(e.contains("local/config/database.inc.php"), "{e}");
    }

    #[test]
    fn broken_settings_name_the_line() {
        let g = gallery(&SETTINGS.replace("'pwg_';", "'pwg_'"));
        let e = load(&format!(
            "[piwigo]\nroot = \"{}\"\n{S3}",
            g.path().display()
        ))
        .unwrap_err();
        assert!(matches!(e, ConfigError::PiwigoSettings(_)), "{e}");
        assert!(e.to_string().contains("line 6"), "{e}");
    }

    #[test]
    fn aws_region_applies_when_the_file_sets_none() {
        let text = format!("[piwigo]\nroot = \"/x\"\ndatabase_url = \"mysql://u@h/db\"\n{S3}");
        let region = |file: &str| {
            let env = Environment {
                aws_region: Some("eu-north-1".into()),
                ..Environment::default()
            };
            Config::parse(&format!("{text}{file}"), Path::new("t"))
                .unwrap()
                .resolve(&env)
                .unwrap()
                .s3
                .region
        };
        assert_eq!(region(""), "eu-north-1");
        assert_eq!(region("region = \"ap-south-1\"\n"), "ap-south-1");
    }

    #[test]
    fn key_files_fill_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("id"), "AKIAFROMFILE\n").unwrap();
        std::fs::write(dir.path().join("secret"), "s3cr3t-from-file\n").unwrap();
        let base = "[piwigo]\nroot = \"/x\"\ndatabase_url = \"mysql://u@h/db\"\n";
        let text =
            format!("{base}{S3}access_key_id_file = \"id\"\nsecret_access_key_file = \"secret\"\n");
        // Bare names are looked up in the credentials directory only when
        // the environment gives one.
        let c = load(&text).unwrap_err();
        assert!(c.to_string().contains("does not exist"), "{c}");
        let env = Environment {
            credentials_dir: Some(dir.path().to_owned()),
            ..Environment::default()
        };
        let config = Config::parse(&text, Path::new("t"))
            .unwrap()
            .resolve(&env)
            .unwrap();
        assert_eq!(
            config.s3.secret_access_key.as_ref().unwrap().expose(),
            "s3cr3t-from-file"
        );
        assert!(!config.file_holds_secret);
        let c = load(&format!(
            "{base}{S3}secret_access_key = \"a\"\nsecret_access_key_file = \"/s\"\n"
        ))
        .unwrap_err();
        assert!(c.to_string().contains("keep one"), "{c}");
    }
}
