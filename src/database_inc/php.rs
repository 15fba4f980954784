//! PHP assignments read without running PHP: the lexer for the few forms
//! `database.inc.php` holds (comments, `$conf['key'] = '...';`,
//! `$prefixeTable = '...';`), string literals with PHP's escapes, and
//! anything else skipped to the end of its statement.

use std::collections::HashMap;

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

/// Every `$conf['key'] = '...';` and `$prefixeTable = '...';` in the file,
/// the last assignment winning as in PHP. Other statements are skipped;
/// an assignment to one of ours that is not a string literal is an error.
pub(super) fn assignments(text: &str) -> Result<HashMap<String, Value>, (usize, String)> {
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
