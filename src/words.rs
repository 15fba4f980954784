//! Counts in the plain sentences commands print: "1 photo", "2 photos".

/// `n` and the noun, plural unless `n` is 1 (nouns here take an `s`).
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(counted(0, "photo"), "0 photos");
        assert_eq!(counted(1, "photo"), "1 photo");
        assert_eq!(counted(2, "HEAD request"), "2 HEAD requests");
    }
}
