//! Piwigo's own database settings, read from `local/config/database.inc.php`
//! without running PHP: the file is a list of assignments, and only plain
//! string literals are accepted, so a value computed at run time is
//! reported rather than guessed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

/// One value and the line that set it, for `check`'s report.
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub line: usize,
}

impl std::fmt::Debug for Value {
    // The password is one of these: never print the text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value(line {})", self.line)
    }
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

/// Every `$conf['key'] = '...';` and `$prefixeTable = '...';` in the file,
/// the last assignment winning as in PHP. Other statements are skipped;
/// an assignment to one of ours that is not a string literal is an error.
fn assignments(text: &str) -> Result<HashMap<String, Value>, (usize, String)> {
    let mut lx = Lexer::new(text);
    let mut out = HashMap::new();
    loop {
        lx.skip_trivia()?;
        if lx.at_end() {
            return Ok(out);
        }
        let Some(target) = lx.assignment_target()? else {
            lx.skip_statement()?;
            continue;
        };
        lx.skip_trivia()?;
        if !lx.eat('=') || lx.peek() == Some('=') {
            lx.skip_statement()?;
            continue;
        }
        lx.skip_trivia()?;
        let value_line = lx.line;
        let value = match lx.string_literal()? {
            Some(v) => v,
            None => {
                return Err((
                    value_line,
                    format!(
                        "{} is not a plain quoted string; write the value itself in quotes, or set piwigo.database_url in the config",
                        display_target(&target)
                    ),
                ));
            }
        };
        lx.skip_trivia()?;
        if !lx.eat(';') {
            return Err((
                value_line,
                format!(
                    "the quoted value of {} is not followed by `;` (a missing closing quote, or an expression: only plain quoted strings are read)",
                    display_target(&target)
                ),
            ));
        }
        out.insert(
            target,
            Value {
                text: value,
                line: value_line,
            },
        );
    }
}

fn display_target(target: &str) -> String {
    if target.starts_with('$') {
        target.to_owned()
    } else {
        format!("$conf['{target}']")
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

type LexResult<T> = Result<T, (usize, String)>;

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    fn at_end(&mut self) -> bool {
        self.chars.peek().is_none()
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Whitespace, comments and the `<?php` / `?>` tags.
    fn skip_trivia(&mut self) -> LexResult<()> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some('/') => {
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    match ahead.next() {
                        Some('/') => self.skip_line(),
                        Some('*') => {
                            let start = self.line;
                            self.bump();
                            self.bump();
                            let mut prev = ' ';
                            loop {
                                match self.bump() {
                                    Some('/') if prev == '*' => break,
                                    Some(c) => prev = c,
                                    None => {
                                        return Err((start, "a /* comment is never closed".into()));
                                    }
                                }
                            }
                        }
                        _ => return Ok(()),
                    }
                }
                Some('<') if self.lookahead("<?php") => {
                    for _ in 0..5 {
                        self.bump();
                    }
                }
                Some('<') if self.lookahead("<?") => {
                    self.bump();
                    self.bump();
                }
                Some('?') if self.lookahead("?>") => {
                    self.bump();
                    self.bump();
                }
                _ => return Ok(()),
            }
        }
    }

    fn lookahead(&self, word: &str) -> bool {
        let mut ahead = self.chars.clone();
        word.chars().all(|w| ahead.next() == Some(w))
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                return;
            }
            // `?>` ends a one-line comment in PHP.
            if c == '?' && self.lookahead("?>") {
                return;
            }
            self.bump();
        }
    }

    /// `$conf['key']` gives `key`, `$prefixeTable` gives `$prefixeTable`;
    /// anything else gives None (and consumes what it looked at).
    fn assignment_target(&mut self) -> LexResult<Option<String>> {
        if !self.eat('$') {
            return Ok(None);
        }
        let name = self.identifier();
        match name.as_str() {
            "prefixeTable" => Ok(Some("$prefixeTable".into())),
            "conf" => {
                self.skip_trivia()?;
                if !self.eat('[') {
                    return Ok(None);
                }
                self.skip_trivia()?;
                let Some(key) = self.string_literal()? else {
                    return Ok(None);
                };
                self.skip_trivia()?;
                if !self.eat(']') {
                    return Ok(None);
                }
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    fn identifier(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.bump();
            } else {
                break;
            }
        }
        name
    }

    /// Skips to the end of the statement, stepping over strings and
    /// comments so a `;` inside them does not count.
    fn skip_statement(&mut self) -> LexResult<()> {
        loop {
            self.skip_trivia()?;
            match self.peek() {
                None => return Ok(()),
                Some(';') => {
                    self.bump();
                    return Ok(());
                }
                Some('\'' | '"') => {
                    self.string_literal()?;
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// A single- or double-quoted PHP string, unescaped as PHP would.
    fn string_literal(&mut self) -> LexResult<Option<String>> {
        match self.peek() {
            Some('\'') => {
                self.bump();
                self.single_quoted().map(Some)
            }
            Some('"') => {
                self.bump();
                self.double_quoted().map(Some)
            }
            _ => Ok(None),
        }
    }

    fn single_quoted(&mut self) -> LexResult<String> {
        let start = self.line;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err((start, "a quoted string is never closed".into())),
                Some('\'') => return Ok(s),
                // Only \' and \\ are escapes in single quotes.
                Some('\\') => match self.peek() {
                    Some(c @ ('\'' | '\\')) => {
                        self.bump();
                        s.push(c);
                    }
                    _ => s.push('\\'),
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> LexResult<String> {
        let start = self.line;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err((start, "a quoted string is never closed".into())),
                Some('"') => return Ok(s),
                Some('$') => {
                    if self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '{')
                    {
                        return Err((
                            self.line,
                            "a double-quoted string holds a PHP variable ($...), which is only known when PHP runs; write the value itself, or escape the dollar as \\$".into(),
                        ));
                    }
                    s.push('$');
                }
                Some('{') if self.peek() == Some('$') => {
                    return Err((
                        self.line,
                        "a double-quoted string holds a PHP variable ({$...}), which is only known when PHP runs".into(),
                    ));
                }
                Some('\\') => self.double_escape(&mut s)?,
                Some(c) => s.push(c),
            }
        }
    }

    fn double_escape(&mut self, s: &mut String) -> LexResult<()> {
        let Some(c) = self.peek() else {
            s.push('\\');
            return Ok(());
        };
        let simple = match c {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'v' => Some('\u{0b}'),
            'e' => Some('\u{1b}'),
            'f' => Some('\u{0c}'),
            '\\' => Some('\\'),
            '$' => Some('$'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(out) = simple {
            self.bump();
            s.push(out);
            return Ok(());
        }
        match c {
            '0'..='7' => {
                let mut digits = String::new();
                while digits.len() < 3 && self.peek().is_some_and(|d| d.is_digit(8)) {
                    digits.extend(self.bump());
                }
                let byte = u32::from_str_radix(&digits, 8).unwrap_or(0) & 0xff;
                self.push_byte(s, byte)
            }
            'x' => {
                let mut ahead = self.chars.clone();
                ahead.next();
                if !ahead.peek().is_some_and(char::is_ascii_hexdigit) {
                    s.push('\\');
                    return Ok(());
                }
                self.bump();
                let mut digits = String::new();
                while digits.len() < 2 && self.peek().is_some_and(|d| d.is_ascii_hexdigit()) {
                    digits.extend(self.bump());
                }
                let byte = u32::from_str_radix(&digits, 16).unwrap_or(0);
                self.push_byte(s, byte)
            }
            'u' => {
                let mut ahead = self.chars.clone();
                ahead.next();
                if ahead.peek() != Some(&'{') {
                    s.push('\\');
                    return Ok(());
                }
                self.bump();
                self.bump();
                let mut digits = String::new();
                while let Some(d) = self.bump() {
                    if d == '}' {
                        break;
                    }
                    digits.push(d);
                }
                match u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(ch) => {
                        s.push(ch);
                        Ok(())
                    }
                    None => Err((self.line, format!("\\u{{{digits}}} is not a character"))),
                }
            }
            _ => {
                s.push('\\');
                Ok(())
            }
        }
    }

    /// Octal and hex escapes give bytes; only ASCII ones can be kept in
    /// a string without guessing an encoding.
    fn push_byte(&self, s: &mut String, byte: u32) -> LexResult<()> {
        match char::from_u32(byte).filter(char::is_ascii) {
            Some(c) => {
                s.push(c);
                Ok(())
            }
            None => Err((
                self.line,
                format!("the escape for byte {byte:#04x} is not ASCII; write the character itself"),
            )),
        }
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
