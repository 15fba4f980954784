//! Scrubs secrets out of text that came from outside (server messages,
//! library errors) before it reaches a log line or the queue table.

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Longest first, so a secret containing another is scrubbed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_secret() {
        let r = Redactor::new(vec!["AKIAKEY123".into(), "s3cr3tvalue".into()]);
        assert_eq!(
            r.scrub("key AKIAKEY123 with s3cr3tvalue twice s3cr3tvalue"),
            "key *** with *** twice ***"
        );
        assert_eq!(r.scrub("nothing here"), "nothing here");
    }
}
