//! The one configuration error: every problem found, each with its key and fix.
//!
//! Loading never stops at the first mistake. An operator fixing a config by trial and
//! error would otherwise need one restart per typo, so every stage adds to one list and
//! the error reports all of them. Problems never carry the config text and never carry
//! a secret's value: a problem on a secret key shows [`REDACTED`] instead.

use std::fmt;

/// What a problem shows instead of the value of a secret key.
pub const REDACTED: &str = "[redacted]";

/// Longest value a problem repeats back; longer values are cut so that an error line
/// stays a line and a pasted blob does not end up in a log.
const MAX_VALUE_CHARS: usize = 80;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a dotted path such as `server.listen` or `routes[0].upstream`, an
    /// environment variable name, or empty for the file as a whole (syntax errors).
    pub key: String,
    /// The offending value as TOML would write it (`"localhost:abc"`, `5`), or
    /// [`REDACTED`] for a secret key; `None` when there is no single value to show.
    pub value: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), &self.value) {
            (true, _) => write!(f, "{}", self.message)?,
            (false, Some(value)) => write!(f, "{} = {}: {}", self.key, value, self.message)?,
            (false, None) => write!(f, "{}: {}", self.key, self.message)?,
        }
        if !self.fix.is_empty() {
            write!(f, " — fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// The configuration is invalid; lists every problem found.
///
/// `Display` prints one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    /// Every problem, in the order found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether some problem is about `key` (exact match).
    pub fn has_problem_at(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects problems across the stages of loading.
///
/// A key whose raw value was unusable (wrong type, unknown) is *poisoned*: the schema
/// check removed or replaced its value so the later stages can still run, and any
/// later complaint about it or below it would only repeat the first one.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
    poisoned: Vec<String>,
}

impl Problems {
    /// Records a problem unless its key is poisoned.
    pub(crate) fn push(
        &mut self,
        key: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let key = key.into();
        if self.is_poisoned(&key) {
            return;
        }
        self.list.push(Problem {
            key,
            value,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Records a problem and poisons its key for later stages.
    pub(crate) fn push_poison(
        &mut self,
        key: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let key = key.into();
        self.poisoned.push(key.clone());
        self.list.push(Problem {
            key,
            value,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Marks `key` as already dealt with, without a problem of its own (the typo
    /// that explains it was reported under another key).
    pub(crate) fn poison(&mut self, key: impl Into<String>) {
        self.poisoned.push(key.into());
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(value)` when nothing was found, else every problem.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    pub(crate) fn into_error(self) -> ConfigError {
        ConfigError {
            problems: self.list,
        }
    }

    fn is_poisoned(&self, key: &str) -> bool {
        self.poisoned.iter().any(|p| {
            key.strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }
}

/// Renders a string value for a problem: quoted like TOML, cut when long.
pub(crate) fn quote(value: &str) -> String {
    let mut shown: String = value.chars().take(MAX_VALUE_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    serde_json::to_string(&shown).unwrap_or_else(|_| format!("\"{shown}\""))
}

/// Renders a TOML value for a problem. Tables and lists are described, not printed:
/// they may hold secrets, and a problem names one value, not a subtree.
pub(crate) fn render_toml(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(quote(s)),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_one_problem_per_line() {
        let mut problems = Problems::default();
        problems.push(
            "server.listen",
            Some(quote("localhost:abc")),
            "not a socket address",
            "use IP:PORT such as \"127.0.0.1:9171\"",
        );
        problems.push("", None, "TOML syntax error at line 3", "");
        let text = problems.into_error().to_string();
        assert_eq!(
            text,
            "server.listen = \"localhost:abc\": not a socket address — fix: use IP:PORT such as \"127.0.0.1:9171\"\n\
             TOML syntax error at line 3"
        );
    }

    #[test]
    fn poisoned_keys_and_their_children_are_not_repeated() {
        let mut problems = Problems::default();
        problems.push_poison("routes[0].cors", None, "wrong type", "");
        problems.push("routes[0].cors.max_age", None, "bad", "");
        problems.push("routes[0].corsage", None, "other key", "");
        problems.push("routes[0].cors", None, "again", "");
        let error = problems.into_error();
        let keys: Vec<&str> = error.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["routes[0].cors", "routes[0].corsage"]);
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(500);
        assert!(quote(&long).chars().count() < 90);
    }
}
