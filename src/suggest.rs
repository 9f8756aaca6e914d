//! "Did you mean …?": the known names closest to a name that was not found (edit
//! distance, case-insensitive), for error messages. Only ever on an error path: it
//! allocates and scans every candidate.

use crate::error::quote;

/// At most this many suggestions in one message.
pub const MAX_SUGGESTIONS: usize = 3;

/// Candidates longer than this (in characters) are never suggested, which bounds the
/// work per candidate on hostile input.
const MAX_LEN: usize = 256;

/// The Levenshtein distance between `a` and `b` (by characters), or `None` when it is
/// larger than `limit`.
fn distance(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        let mut best = row[0];
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
            best = best.min(row[j + 1]);
        }
        if best > limit {
            return None;
        }
    }
    row.last().copied().filter(|d| *d <= limit)
}

fn folded(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// The known names closest to `name`, best first, at most [`MAX_SUGGESTIONS`]: those
/// within an edit distance of about a third of the name's length (at least 2), ignoring
/// case, and names that contain `name` (3 characters or more) or that it contains.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted = folded(name);
    if wanted.is_empty() || wanted.len() > MAX_LEN {
        return Vec::new();
    }
    let limit = (wanted.len() / 3).max(2);
    let lower = name.to_lowercase();
    let mut found: Vec<(usize, &str)> = known
        .into_iter()
        .filter(|k| *k != name && k.len() <= 4 * MAX_LEN)
        .filter_map(|k| {
            let candidate = folded(k);
            let k_lower = k.to_lowercase();
            let contains = wanted.len() >= 3 && (k_lower.contains(&lower) || lower.contains(&k_lower));
            match distance(&wanted, &candidate, limit) {
                Some(d) => Some((d, k)),
                // Ranked after every near miss, closest first.
                None if contains => distance(&wanted, &candidate, usize::MAX).map(|d| (limit + d, k)),
                None => None,
            }
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    found.dedup_by(|a, b| a.1 == b.1);
    found.into_iter().take(MAX_SUGGESTIONS).map(|(_, k)| k.to_owned()).collect()
}

/// ` (did you mean 'A', 'B' or 'C'?)`, or the empty string when there is nothing to
/// suggest.
pub fn did_you_mean(suggestions: &[String]) -> String {
    let quoted: Vec<String> = suggestions.iter().map(|s| format!("'{}'", quote(s))).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        [init @ .., last] => format!(" (did you mean {} or {last}?)", init.join(", ")),
    }
}

/// `unknown <kind> '<name>'` followed by [`did_you_mean`] of the [`closest`] known
/// names: the problem text of an unknown name inside a document.
pub fn unknown<'a>(kind: &str, name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    format!("unknown {kind} '{}'{}", quote(name), did_you_mean(&closest(name, known)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MENU: [&str; 5] =
        ["Luxury Travel", "Family Activities", "Budget Traveller", "Foodie", "Fashionista"];

    #[test]
    fn a_typo_finds_the_name_it_was_meant_to_be() {
        assert_eq!(closest("Luxury Travle", MENU), ["Luxury Travel"]);
        assert_eq!(closest("luxury travel", MENU), ["Luxury Travel"]);
        assert_eq!(closest("Fodie", MENU), ["Foodie"]);
        assert_eq!(closest("Travel", MENU), ["Luxury Travel", "Budget Traveller"]);
        assert!(closest("Security", MENU).is_empty());
        assert!(closest("", MENU).is_empty());
    }

    #[test]
    fn at_most_three_suggestions_best_first() {
        let known = ["home_hero", "home_hero2", "home_heroes", "home_her", "sidebar"];
        let got = closest("home_heroo", known);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], "home_hero");
        assert_eq!(did_you_mean(&got[..1]), " (did you mean 'home_hero'?)");
        assert_eq!(did_you_mean(&["a".into(), "b".into(), "c".into()]), " (did you mean 'a', 'b' or 'c'?)");
        assert_eq!(did_you_mean(&[]), "");
    }

    #[test]
    fn distance_is_levenshtein_with_a_limit() {
        let d = |a: &str, b: &str, l| distance(&folded(a), &folded(b), l);
        assert_eq!(d("kitten", "sitting", 5), Some(3));
        assert_eq!(d("kitten", "sitting", 2), None);
        assert_eq!(d("", "abc", 3), Some(3));
    }
}
