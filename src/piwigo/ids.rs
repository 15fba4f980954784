//! Photo ids as admins type them (`1,2,5-9`) and as queries take them:
//! inclusive ranges.

use sqlx::QueryBuilder;

/// Appends `(column BETWEEN lo AND hi OR ...)` for `ranges`.
pub fn push_id_ranges(qb: &mut QueryBuilder<'_, sqlx::MySql>, column: &str, ranges: &[(u32, u32)]) {
    qb.push("(");
    for (n, (lo, hi)) in ranges.iter().enumerate() {
        if n > 0 {
            qb.push(" OR ");
        }
        qb.push(format!("{column} BETWEEN "));
        qb.push_bind(*lo);
        qb.push(" AND ");
        qb.push_bind(*hi);
    }
    qb.push(")");
}

/// Parses `1,2,5-9` into inclusive ranges.
pub fn parse_id_list(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Err("no photo ids given; write them like 1,2,5-9".into());
    }
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!(
                "`{text}` has an empty item between commas; write ids like 1,2,5-9"
            ));
        }
        let bad = || format!("`{part}` is not a photo id or a range like 5-9");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let id = part.parse::<u32>().map_err(|_| bad())?;
                (id, id)
            }
        };
        if lo > hi {
            return Err(format!(
                "range `{part}` runs backwards; write it as {hi}-{lo}"
            ));
        }
        out.push((lo, hi));
    }
    Ok(out)
}

/// `1,2,3,7,9,10` as `1-3,7,9-10`.
pub fn id_ranges(sorted: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = sorted.iter().copied().peekable();
    while let Some(lo) = iter.next() {
        let mut hi = lo;
        while iter.peek() == Some(&(hi.wrapping_add(1))) && hi < u32::MAX {
            hi += 1;
            iter.next();
        }
        out.push(if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists() {
        assert_eq!(
            parse_id_list("1,2,5-9").unwrap(),
            vec![(1, 1), (2, 2), (5, 9)]
        );
        assert!(parse_id_list("9-5").is_err());
        assert!(parse_id_list("a").is_err());
        assert!(parse_id_list("").is_err());
        for empty_item in ["1,,2", "1,2,", ",1", " , "] {
            let e = parse_id_list(empty_item).unwrap_err();
            assert!(
                e.contains("empty item") || e.contains("no photo ids"),
                "{e}"
            );
        }
    }

    #[test]
    fn ranges_are_compact_and_parse_back() {
        assert_eq!(id_ranges(&[]), "");
        assert_eq!(id_ranges(&[5]), "5");
        assert_eq!(id_ranges(&[1, 2, 3, 7, 9, 10]), "1-3,7,9-10");
        let parsed = parse_id_list("1-3,7,9-10").unwrap();
        assert_eq!(parsed, vec![(1, 3), (7, 7), (9, 10)]);
    }
}
