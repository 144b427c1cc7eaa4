//! Stage 2: check the TOML tree against the schema and report every mistake.
//!
//! serde with `deny_unknown_fields` stops at the first unknown key and says nothing
//! useful about where it is. This walk reports *every* unknown key (with a
//! suggestion), wrong type, value outside an enum, out-of-range number and missing
//! required key, each with its dotted path. It then repairs the tree — removing bad
//! values so defaults apply, filling missing required keys with a typed placeholder —
//! and poisons those keys, so serde can still build a `RawConfig` and the later
//! stages can report their problems too, without repeating these.

use toml::{Table, Value};

use crate::error::{Problems, REDACTED, render_toml};
use crate::schema::{self, Kind, Node};
use crate::secrets;
use crate::suggest::{closest, did_you_mean};

/// Checks `table` against the configuration schema, repairing it as described above.
pub(crate) fn check(table: &mut Table, problems: &mut Problems) {
    check_table(table, schema::root(), "", problems);
}

fn check_table(table: &mut Table, node: Node<'_>, path: &str, problems: &mut Problems) {
    let names = node.property_names();
    let keys: Vec<String> = table.keys().cloned().collect();
    let mut removed = Vec::new();
    for key in keys {
        let key_path = key_path(path, &key);
        let Some(child) = node.property(&key) else {
            // The value is never shown: a misspelled secret key holds a secret.
            let suggestion = closest(&key, names.iter().copied());
            let (message, fix) = match suggestion {
                Some(s) => (
                    format!("unknown key; did you mean \"{s}\"?"),
                    format!("rename it to {}", schema::join(path, s)),
                ),
                None => (
                    "unknown key".to_owned(),
                    format!("remove it; keys allowed here: {}", names.join(", ")),
                ),
            };
            problems.push_poison(key_path, None, message, fix);
            // A typo of a key that is then missing explains the missing key; a key
            // that is also present is checked on its own.
            if let Some(s) = suggestion
                && !table.contains_key(s)
            {
                problems.poison(schema::join(path, s));
            }
            table.remove(&key);
            continue;
        };
        let keep = table
            .get_mut(&key)
            .is_some_and(|value| check_value(value, child, &key_path, problems));
        if !keep {
            table.remove(&key);
            removed.push(key);
        }
    }
    for required in node.required() {
        if table.contains_key(required) {
            continue;
        }
        let Some(child) = node.property(required) else {
            continue;
        };
        if !removed.iter().any(|r| r == required) {
            let where_ = if path.is_empty() {
                "the top level".to_owned()
            } else {
                path.to_owned()
            };
            problems.push(
                key_path(path, required),
                None,
                "required key is missing",
                format!("add {required} = ... to {where_}"),
            );
        }
        problems.poison(key_path(path, required));
        table.insert(required.to_owned(), placeholder(child.kind()));
    }
}

/// Checks one value; `false` means it is unusable and must be removed.
fn check_value(value: &mut Value, node: Node<'_>, path: &str, problems: &mut Problems) -> bool {
    let kind = node.kind();
    match (kind, value) {
        (Kind::Table(table_node), Value::Table(table)) => {
            check_table(table, table_node, path, problems);
            true
        }
        (Kind::Map(values), Value::Table(table)) => {
            let names: Vec<String> = table.keys().cloned().collect();
            for name in names {
                let entry_path = key_path(path, &name);
                let keep = table
                    .get_mut(&name)
                    .is_some_and(|v| check_value(v, values, &entry_path, problems));
                if !keep {
                    table.remove(&name);
                }
            }
            true
        }
        (Kind::List(items), Value::Array(array)) => {
            let mut all_ok = true;
            for (i, item) in array.iter_mut().enumerate() {
                all_ok &= check_value(item, items, &format!("{path}[{i}]"), problems);
            }
            // Removing single items would renumber the rest and make later problems
            // point at the wrong element, so a list with a bad item goes as a whole.
            if !all_ok {
                problems.poison(path.to_owned());
            }
            all_ok
        }
        (Kind::String, Value::String(text)) => match node.enum_values() {
            Some(allowed) if !allowed.contains(&text.as_str()) => {
                let list = quoted_list(&allowed);
                problems.push_poison(
                    path,
                    Some(shown(path, value_of_str(text))),
                    format!(
                        "not one of {list}{}",
                        did_you_mean(text, allowed.iter().copied())
                    ),
                    format!("use one of {list}"),
                );
                false
            }
            _ => true,
        },
        (Kind::Integer { min, max }, Value::Integer(n)) => {
            let n = i128::from(*n);
            // TOML integers are i64, so a bound beyond that says nothing useful.
            let max = max.filter(|m| *m < i128::from(i64::MAX));
            let below = min.is_some_and(|m| n < m);
            let above = max.is_some_and(|m| n > m);
            if below || above {
                let range = match (min, max) {
                    (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => String::new(),
                };
                problems.push_poison(
                    path,
                    Some(n.to_string()),
                    format!("out of range: must be {range}"),
                    format!("use a whole number {range}"),
                );
                return false;
            }
            true
        }
        (Kind::Boolean, Value::Boolean(_)) => true,
        (kind, value) => {
            let shown_value = if secrets::is_secret_path(path) {
                Some(REDACTED.to_owned())
            } else {
                render_toml(value)
            };
            problems.push_poison(
                path,
                shown_value,
                format!("expected {}, found {}", expected(kind), found(value)),
                type_fix(kind, node, path),
            );
            false
        }
    }
}

/// The key path of `key` below `path`; map keys that are not plain words are quoted.
pub(crate) fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        schema::join(path, key)
    } else {
        schema::join(path, &crate::error::quote(key))
    }
}

/// A value of the right type for a missing required key. Its key is poisoned, so the
/// placeholder itself is never reported.
fn placeholder(kind: Kind<'_>) -> Value {
    match kind {
        Kind::Table(_) | Kind::Map(_) => Value::Table(Table::new()),
        Kind::List(_) => Value::Array(Vec::new()),
        Kind::String => Value::String(String::new()),
        Kind::Integer { min, .. } => {
            Value::Integer(min.and_then(|m| i64::try_from(m).ok()).unwrap_or(0))
        }
        Kind::Boolean => Value::Boolean(false),
    }
}

fn value_of_str(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// How a value is shown in a problem: redacted for secret keys.
fn shown(path: &str, value: Value) -> String {
    if secrets::is_secret_path(path) {
        REDACTED.to_owned()
    } else {
        render_toml(&value).unwrap_or_default()
    }
}

fn expected(kind: Kind<'_>) -> &'static str {
    match kind {
        Kind::Table(_) | Kind::Map(_) => "a table",
        Kind::List(_) => "a list",
        Kind::String => "a string",
        Kind::Integer { .. } => "a whole number",
        Kind::Boolean => "true or false",
    }
}

fn found(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a decimal number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

fn type_fix(kind: Kind<'_>, node: Node<'_>, path: &str) -> String {
    let leaf = path.rsplit(['.', '[']).next().unwrap_or(path);
    let example = node
        .default_value()
        .and_then(|d| toml::Value::try_from(d).ok())
        .and_then(|d| render_toml(&d));
    match kind {
        Kind::Table(_) => format!("write it as a table: [{path}]"),
        Kind::Map(_) => format!("write it as named tables: [{path}.<name>]"),
        Kind::List(items) if matches!(items.kind(), Kind::Table(_)) => {
            format!("write each entry as [[{path}]]")
        }
        Kind::List(_) => format!("write a list, e.g. {leaf} = [\"...\"]"),
        Kind::String => match (node.enum_values(), example) {
            (Some(allowed), _) => format!("use one of {}", quoted_list(&allowed)),
            (None, Some(example)) => {
                format!("write a quoted string, e.g. {leaf} = {example}")
            }
            (None, None) => format!("write a quoted string, e.g. {leaf} = \"...\""),
        },
        Kind::Integer { .. } => match example {
            Some(example) => {
                format!("write a whole number without quotes, e.g. {leaf} = {example}")
            }
            None => "write a whole number without quotes".to_owned(),
        },
        Kind::Boolean => format!("write {leaf} = true or {leaf} = false, without quotes"),
    }
}

fn quoted_list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Table, Vec<crate::Problem>) {
        let mut table: Table = toml::from_str(text).unwrap();
        let mut problems = Problems::default();
        check(&mut table, &mut problems);
        let list = problems.into_error().problems().to_vec();
        (table, list)
    }

    #[test]
    fn unknown_keys_everywhere_are_reported_with_suggestions() {
        let (table, problems) = run(r#"
            moed = "dev"
            [server]
            listn = "127.0.0.1:1"
            [upstreams.api]
            url = "http://127.0.0.1:1"
            [[routes]]
            name = "r"
            upstrem = "api"
            "#);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["moed", "routes[0].upstrem", "server.listn"]);
        assert!(problems[2].message.contains("did you mean \"listen\""));
        assert_eq!(problems[2].fix, "rename it to server.listen");
        // The typo is not reported a second time as a missing required key, and
        // the placeholder keeps the tree deserializable.
        assert_eq!(table["routes"][0]["upstream"].as_str(), Some(""));
    }

    #[test]
    fn wrong_types_are_reported_and_removed() {
        let (table, problems) = run(r#"
            [server]
            max_connections = "many"
            trusted_proxies = "10.0.0.0/8"
            [metrics]
            enabled = "yes"
            "#);
        assert_eq!(problems.len(), 3, "{problems:?}");
        let p = problems
            .iter()
            .find(|p| p.key == "server.max_connections")
            .unwrap();
        assert_eq!(p.message, "expected a whole number, found a string");
        assert_eq!(p.value.as_deref(), Some("\"many\""));
        assert!(p.fix.contains("max_connections = 10000"), "{}", p.fix);
        assert!(table["server"].get("max_connections").is_none());
    }

    #[test]
    fn secret_values_are_redacted() {
        let (_, problems) = run("[storage]\nurl = 12345678\n");
        assert_eq!(problems[0].value.as_deref(), Some(REDACTED));
    }

    #[test]
    fn enum_values_and_ranges_are_checked() {
        let (_, problems) = run("mode = \"prod\"\n[server]\nmax_headers = 0\n");
        assert!(
            problems[0].message.contains("did you mean \"production\""),
            "{problems:?}"
        );
        assert_eq!(problems[1].message, "out of range: must be at least 1");
    }

    #[test]
    fn missing_required_keys_are_reported() {
        let (_, problems) = run("[[routes]]\nname = \"r\"\n");
        assert_eq!(problems[0].key, "routes[0].upstream");
        assert_eq!(problems[0].message, "required key is missing");
    }
}
