//! "Did you mean" suggestions for misspelled keys, values and variable names.

/// Lowest Jaro-Winkler similarity that still counts as a likely typo. Below it a
/// suggestion is more often wrong than helpful.
const MIN_SIMILARITY: f64 = 0.8;

/// The candidate most similar to `word`, if any is similar enough.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&word, &candidate.to_ascii_lowercase());
        if score >= MIN_SIMILARITY && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `; did you mean "x"?` or nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_unrelated_words() {
        assert_eq!(closest("listn", ["listen", "tls"]), Some("listen"));
        assert_eq!(closest("url_fle", ["url", "url_file"]), Some("url_file"));
        assert_eq!(closest("zzz", ["listen", "tls"]), None);
    }
}
