//! Aligned tables (reference §11): columns separated by two spaces, each padded to its widest
//! cell, header in capitals, `-` for an empty cell, no trailing spaces. Control characters in
//! cells are neutralised so stored text cannot move the cursor or break the layout.

/// Renders a table with a header row. With no rows, only the header is printed.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(
            rows.iter()
                .map(|r| r.iter().map(|c| clean_cell(c)).collect()),
        )
        .collect();
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for row in &cells {
        for (i, c) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate().take(cols) {
            line.push_str(c);
            if i + 1 < cols {
                let pad = width[i] - c.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A cell as shown: empty is `-`; control characters become `?` (tab and newline included),
/// so escape sequences from stored values never reach the terminal.
pub fn clean_cell(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_with_dashes_and_no_trailing_space() {
        let t = render(
            &["ID", "APP", "MESSAGE"],
            &[
                vec!["1".into(), "".into(), "hi".into()],
                vec!["10".into(), "web".into(), "".into()],
            ],
        );
        assert_eq!(t, "ID  APP  MESSAGE\n1   -    hi\n10  web  -\n");
        assert_eq!(render(&["A", "B"], &[]), "A  B\n");
        assert_eq!(clean_cell("a\u{1b}[31mb\n"), "a?[31mb?");
    }
}
