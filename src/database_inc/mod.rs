//! Piwigo's own database settings, read from `local/config/database.inc.php`
//! without running PHP: the file is a list of assignments, and only plain
//! string literals are accepted, so a value computed at run time is
//! reported rather than guessed.

use std::path::{Path, PathBuf};

mod php;

pub use php::Value;
use php::assignments;

/// Where Piwigo keeps the file, relative to its root.
pub const RELATIVE_PATH: &str = "local/config/database.inc.php";

/// linuxserver/piwigo keeps the PHP tree under /config/www while the photos
/// (the daemon's `piwigo.root`) are under /gallery.
pub const LINUXSERVER_PATH: &str = "/config/www/local/config/database.inc.php";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "piwigo settings: cannot read {path}: {source} (let the daemon's user read it, or set piwigo.database_url)"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("piwigo settings: {path} line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "piwigo settings: {path} does not set {what} (set piwigo.database_url in the config instead)"
    )]
    Missing { path: PathBuf, what: &'static str },
}

/// The settings the daemon needs from the file.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub path: PathBuf,
    pub host: Value,
    pub user: Value,
    pub password: Value,
    pub base: Value,
    pub prefix: Value,
}

/// Where the server is, as `$conf['db_host']` says it (the way Piwigo's
/// mysqli layer reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    Tcp { host: String, port: Option<u16> },
    Socket(PathBuf),
}

impl DatabaseSettings {
    /// Reads `<root>/local/config/database.inc.php`, or the linuxserver
    /// layout's file when the root has none.
    pub fn find(root: &Path) -> Option<PathBuf> {
        [root.join(RELATIVE_PATH), PathBuf::from(LINUXSERVER_PATH)]
            .into_iter()
            .find(|p| p.exists())
    }

    pub fn read(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        let values = assignments(text).map_err(|(line, message)| SettingsError::Syntax {
            path: path.to_owned(),
            line,
            message,
        })?;
        let take = |key: &str, what: &'static str| {
            values
                .get(key)
                .cloned()
                .ok_or_else(|| SettingsError::Missing {
                    path: path.to_owned(),
                    what,
                })
        };
        let settings = Self {
            path: path.to_owned(),
            host: take("db_host", "$conf['db_host']")?,
            user: take("db_user", "$conf['db_user']")?,
            password: take("db_password", "$conf['db_password']")?,
            base: take("db_base", "$conf['db_base']")?,
            prefix: take("$prefixeTable", "$prefixeTable")?,
        };
        settings.server()?;
        Ok(settings)
    }

    pub fn server(&self) -> Result<Server, SettingsError> {
        let host = self.host.text.trim();
        if host.starts_with('/') {
            return Ok(Server::Socket(PathBuf::from(host)));
        }
        let bad = |message: String| SettingsError::Syntax {
            path: self.path.clone(),
            line: self.host.line,
            message,
        };
        let (name, port) = match host.split_once(':') {
            Some((name, port)) => {
                let port = port.parse::<u16>().map_err(|_| {
                    bad(format!(
                        "$conf['db_host'] = '{host}': `{port}` is not a port number"
                    ))
                })?;
                (name, Some(port))
            }
            None => (host, None),
        };
        if name.is_empty() {
            return Err(bad("$conf['db_host'] is empty".into()));
        }
        Ok(Server::Tcp {
            host: name.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DatabaseSettings, SettingsError> {
        DatabaseSettings::parse(text, Path::new("/srv/piwigo/local/config/database.inc.php"))
    }

    /// Exactly what Piwigo's installer writes (install.php), with a
    /// password that went through its addslashes().
    const INSTALLER: &str = r#"<?php
$conf['dblayer'] = 'mysqli';
$conf['db_base'] = 'piwigo';
$conf['db_user'] = 'piwigo';
$conf['db_password'] = 'pa\'ss\\word';
$conf['db_host'] = 'localhost';

$prefixeTable = 'piwigo_';

define('PHPWG_INSTALLED', true);
define('PWG_CHARSET', 'utf-8');
define('DB_CHARSET', 'utf8');
define('DB_COLLATE', '');

?>"#;

    #[test]
    fn installer_form() {
        let s = parse(INSTALLER).unwrap();
        assert_eq!(s.base.text, "piwigo");
        assert_eq!(s.user.text, "piwigo");
        assert_eq!(s.password.text, "pa'ss\\word");
        assert_eq!(s.password.line, 5);
        assert_eq!(s.host.text, "localhost");
        assert_eq!(s.prefix.text, "piwigo_");
        assert_eq!(s.prefix.line, 8);
        assert_eq!(
            s.server().unwrap(),
            Server::Tcp {
                host: "localhost".into(),
                port: None
            }
        );
    }

    #[test]
    fn hand_edits() {
        let text = r#"<?php
// moved the database
# another comment with 'quotes'; and a semicolon
/* $conf['db_host'] = 'old'; */
$conf["db_host"]   =   "db.example:3307" ;
$conf[ 'db_user' ] = "gal\"lery";
$conf['db_password'] = "tab\there \$dollar \x41\101 \u{e9} {brace}";
$conf['db_base'] = 'photos';   // trailing comment
$prefixeTable = "";
$conf['db_base'] = 'photos2';
$other = 'x;y';
if (true) { $unrelated = 1; }
"#;
        let s = parse(text).unwrap();
        assert_eq!(
            s.server().unwrap(),
            Server::Tcp {
                host: "db.example".into(),
                port: Some(3307)
            }
        );
        assert_eq!(s.user.text, "gal\"lery");
        assert_eq!(s.password.text, "tab\there $dollar AA é {brace}");
        assert_eq!(s.base.text, "photos2", "the last assignment wins");
        assert_eq!(s.base.line, 10);
        assert_eq!(s.prefix.text, "");
    }

    #[test]
    fn socket_path_host() {
        let s = parse(&INSTALLER.replace("'localhost'", "'/run/mysqld/mysqld.sock'")).unwrap();
        assert_eq!(
            s.server().unwrap(),
            Server::Socket("/run/mysqld/mysqld.sock".into())
        );
    }

    #[test]
    fn single_quotes_keep_other_backslashes() {
        let s = parse(&INSTALLER.replace(r"'pa\'ss\\word'", r"'a\nb\$c'")).unwrap();
        assert_eq!(s.password.text, r"a\nb\$c");
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn broken_files_name_file_and_line() {
        let e = error(&INSTALLER.replace("'pa\\'ss\\\\word';", "getenv('DB_PASS');"));
        assert!(e.contains("database.inc.php line 5"), "{e}");
        assert!(e.contains("$conf['db_password']"), "{e}");

        let e = error(&INSTALLER.replace("'localhost';", "'localhost"));
        assert!(e.contains("line 6"), "{e}");
        assert!(e.contains("closing quote"), "{e}");

        let e = error(&INSTALLER.replace("'piwigo_';", "'piwigo_'"));
        assert!(
            e.contains("line 8") && e.contains("not followed by `;`"),
            "{e}"
        );

        let e = error("<?php\n$conf['db_host'] = 'never closed;\n");
        assert!(e.contains("line 2") && e.contains("never closed"), "{e}");

        let e = error(&INSTALLER.replace("'localhost'", "\"$host\""));
        assert!(e.contains("line 6") && e.contains("variable"), "{e}");

        let e = error(&INSTALLER.replace("'localhost'", "'db:port'"));
        assert!(e.contains("line 6") && e.contains("not a port"), "{e}");

        let e = error(&INSTALLER.replace("$prefixeTable = 'piwigo_';", ""));
        assert!(e.contains("$prefixeTable"), "{e}");

        let e = error("<?php /* never closed\n$conf['db_host'] = 'x';");
        assert!(e.contains("line 1") && e.contains("comment"), "{e}");
    }

    #[test]
    fn the_password_never_shows_in_debug_or_errors() {
        let s = parse(INSTALLER).unwrap();
        assert!(!format!("{s:?}").contains("ss\\word"));
        let e = error(&INSTALLER.replace("'pa\\'ss\\\\word';", "'secretpw' . 'x';"));
        assert!(!e.contains("secretpw"), "{e}");
    }
}
