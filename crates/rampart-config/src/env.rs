//! Stage 3: `RAMPART_*` environment variables override keys of the TOML tree.
//!
//! A variable's name is the key path upper-cased with `_` between segments:
//! `server.listen` is `RAMPART_SERVER_LISTEN`. Keys themselves contain underscores, so
//! the name is resolved by walking the schema and taking, at each level, the longest
//! run of tokens that names a property (backtracking when that leads nowhere).
//! Upstreams, roles, rate classes and the entries of name → value tables
//! (`routes[0].attributes`) are matched by their name in the file (case-insensitive,
//! `-` written as `_`), routes by index: `RAMPART_UPSTREAMS_BILLING_API_URL`,
//! `RAMPART_ROUTES_0_AUTH`, `RAMPART_ROUTES_0_INJECT_HEADERS_X_API_KEY`. A named table
//! the file does not have at all falls back to its default entries (the default roles
//! and rate classes), which the variable then changes: with no `[roles]` table,
//! `RAMPART_ROLES_ADMIN_REQUIRE_MFA` sets `require_mfa` of the default `admin` role
//! and keeps the other defaults, rather than replacing them all with one half-written
//! role.
//!
//! Every `RAMPART_*` variable must resolve: a misspelled override silently ignored
//! would leave a production instance on the file's value while the operator believes
//! otherwise. Values are never shown for secret keys.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::error::{Problems, REDACTED, quote};
use crate::schema::{self, Kind, Node};
use crate::secrets;
use crate::suggest::closest;

/// Variables that start with `RAMPART_` but are not configuration keys: they are
/// read by the CLI (`RAMPART_CONFIG` is the path of the config file) and ignored here.
pub const RESERVED_ENV_VARS: &[&str] = &["RAMPART_CONFIG"];

/// The prefix of every configuration variable.
pub const ENV_PREFIX: &str = "RAMPART_";

/// Config paths that were set from the environment, with the variable that set them.
pub(crate) type EnvOrigins = BTreeMap<String, String>;

/// The variable name for a dotted key path (`storage.url` → `RAMPART_STORAGE_URL`).
pub fn env_var_for(path: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    for c in path.chars() {
        match c {
            '.' | '-' | '[' => name.push('_'),
            ']' => {}
            c => name.push(c.to_ascii_uppercase()),
        }
    }
    name
}

/// Applies every `RAMPART_*` variable of `env` to `table`.
pub(crate) fn apply(
    table: &mut Table,
    env: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> EnvOrigins {
    let mut origins = EnvOrigins::new();
    // Resolution reads the tree as a `Value` (it walks into lists and maps); the
    // table is moved in and out rather than cloned per variable.
    let mut root = Value::Table(std::mem::take(table));
    for (var, text) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if RESERVED_ENV_VARS.contains(&var.as_str()) || text.is_empty() {
            // Empty variables are how container tooling says "unset"; they never
            // override a value from the file.
            continue;
        }
        let tokens: Vec<&str> = rest.split('_').collect();
        let Some((segments, leaf)) = resolve(schema::root(), &tokens, Some(&root)) else {
            report_unknown(var, &root, problems);
            continue;
        };
        let path = display_path(&segments);
        match parse_value(leaf.kind(), text) {
            Ok(value) => {
                if let Value::Table(table) = &mut root {
                    seed_map_defaults(table, &segments);
                }
                if let Value::Table(table) = &mut root
                    && set(table, &segments, value)
                {
                    origins.insert(path, var.clone());
                }
            }
            Err(message) => {
                let shown = if secrets::is_secret_path(&path) {
                    REDACTED.to_owned()
                } else {
                    quote(text)
                };
                problems.push(
                    var.clone(),
                    Some(shown),
                    format!("{message} (sets {path})"),
                    format!("give {var} {}", expected_form(leaf.kind())),
                );
            }
        }
    }
    if let Value::Table(updated) = root {
        *table = updated;
    }
    origins
}

/// One step of a resolved path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Resolves `tokens` below `node`; `current` is the file's value at this position,
/// which supplies upstream names and route counts.
fn resolve<'a>(
    node: Node<'a>,
    tokens: &[&str],
    current: Option<&Value>,
) -> Option<(Vec<Segment>, Node<'a>)> {
    if tokens.is_empty() || tokens.iter().any(|t| t.is_empty()) {
        return None;
    }
    match node.kind() {
        Kind::Table(table) => {
            for k in (1..=tokens.len()).rev() {
                let name = tokens[..k].join("_").to_ascii_lowercase();
                let Some(child) = table.property(&name) else {
                    continue;
                };
                let child_current = current.and_then(|c| c.get(&name));
                let found = if k == tokens.len() {
                    is_leaf(child).then(|| (Vec::new(), child))
                } else {
                    resolve(child, &tokens[k..], child_current)
                };
                if let Some((mut segments, leaf)) = found {
                    segments.insert(0, Segment::Key(name));
                    return Some((segments, leaf));
                }
            }
            None
        }
        Kind::Map(values) => {
            // Absent from the file: the default entries (if any) are what there is.
            let defaults = map_default(node);
            let names = match current {
                Some(value) => value.as_table()?,
                None => defaults.as_ref().and_then(Value::as_table)?,
            };
            if is_leaf(values) {
                // A name → value table: the rest of the variable is the entry's name.
                let wanted = tokens.join("_");
                let name = names
                    .keys()
                    .find(|n| env_form(n).eq_ignore_ascii_case(&wanted))?;
                return Some((vec![Segment::Key(name.clone())], values));
            }
            for k in (1..tokens.len()).rev() {
                let wanted = tokens[..k].join("_");
                let Some(name) = names
                    .keys()
                    .find(|n| env_form(n).eq_ignore_ascii_case(&wanted))
                else {
                    continue;
                };
                if let Some((mut segments, leaf)) = resolve(values, &tokens[k..], names.get(name)) {
                    segments.insert(0, Segment::Key(name.clone()));
                    return Some((segments, leaf));
                }
            }
            None
        }
        Kind::List(items) if matches!(items.kind(), Kind::Table(_)) => {
            let index: usize = tokens[0].parse().ok()?;
            let element = current.and_then(Value::as_array)?.get(index)?;
            let (mut segments, leaf) = resolve(items, &tokens[1..], Some(element))?;
            segments.insert(0, Segment::Index(index));
            Some((segments, leaf))
        }
        _ => None,
    }
}

/// The default entries of a named-table node (`roles`), as TOML; `None` when the
/// node has no default or an empty one.
fn map_default(node: Node<'_>) -> Option<Value> {
    node.default_value()
        .and_then(|d| Value::try_from(d).ok())
        .filter(|d| d.as_table().is_some_and(|t| !t.is_empty()))
}

/// Before a variable sets a key inside a named table that the file does not have,
/// writes that table's default entries, so the variable changes a default entry
/// instead of replacing all of them. Fixed tables missing on the way are created
/// (`[rate_limit]` for `rate_limit.classes`), as setting the key would create them.
/// Stops where the tree is not a table (lists are indexed only where the file has
/// them; a wrong type is left for the schema check to report).
fn seed_map_defaults(table: &mut Table, segments: &[Segment]) {
    let mut node = schema::root();
    let mut current = table;
    // The last segment is the key being set; only the tables above it matter.
    let above = segments.split_last().map_or(&[][..], |(_, above)| above);
    for segment in above {
        let Segment::Key(key) = segment else {
            return;
        };
        let child = match node.kind() {
            Kind::Table(_) => match node.property(key) {
                Some(child) => child,
                None => return,
            },
            Kind::Map(values) => values,
            _ => return,
        };
        if !current.contains_key(key) {
            match child.kind() {
                Kind::Map(_) => match map_default(child) {
                    Some(default) => {
                        current.insert(key.clone(), default);
                    }
                    None => return,
                },
                Kind::Table(_) => {
                    current.insert(key.clone(), Value::Table(Table::new()));
                }
                _ => return,
            }
        }
        match current.get_mut(key) {
            Some(Value::Table(next)) => current = next,
            _ => return,
        }
        node = child;
    }
}

/// Whether a variable can set this node directly: scalars and lists of scalars.
fn is_leaf(node: Node<'_>) -> bool {
    match node.kind() {
        Kind::String | Kind::Integer { .. } | Kind::Boolean => true,
        Kind::List(items) => matches!(
            items.kind(),
            Kind::String | Kind::Integer { .. } | Kind::Boolean
        ),
        Kind::Table(_) | Kind::Map(_) => false,
    }
}

/// A name as it appears in a variable: `billing-api` → `BILLING_API`.
fn env_form(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

/// Parses a variable's text by the type of the key it sets. Lists are comma-separated.
fn parse_value(kind: Kind<'_>, text: &str) -> Result<Value, String> {
    match kind {
        Kind::String => Ok(Value::String(text.to_owned())),
        Kind::Integer { .. } => text
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| "not a whole number".to_owned()),
        Kind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Boolean(true)),
            "false" | "0" => Ok(Value::Boolean(false)),
            _ => Err("not true or false".to_owned()),
        },
        Kind::List(items) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| parse_value(items.kind(), t))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Kind::Table(_) | Kind::Map(_) => Err("names a table, not a key".to_owned()),
    }
}

fn expected_form(kind: Kind<'_>) -> &'static str {
    match kind {
        Kind::Integer { .. } => "a whole number",
        Kind::Boolean => "true or false",
        Kind::List(_) => "a comma-separated list",
        _ => "a value",
    }
}

/// Writes `value` at `segments`, creating missing tables. Returns false when the
/// file has a value of the wrong type on the way; the schema check reports that.
fn set(table: &mut Table, segments: &[Segment], value: Value) -> bool {
    let Some((Segment::Key(key), rest)) = segments.split_first() else {
        return false;
    };
    if rest.is_empty() {
        table.insert(key.clone(), value);
        return true;
    }
    let child = table
        .entry(key.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    set_below(child, rest, value)
}

fn set_below(target: &mut Value, segments: &[Segment], value: Value) -> bool {
    match (segments.first(), target) {
        (Some(Segment::Key(_)), Value::Table(table)) => set(table, segments, value),
        // Lists are only indexed where `resolve` saw the element in the file.
        (Some(Segment::Index(i)), Value::Array(items)) => items
            .get_mut(*i)
            .is_some_and(|item| set_below(item, &segments[1..], value)),
        _ => false,
    }
}

fn display_path(segments: &[Segment]) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => path = schema::join(&path, key),
            Segment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn report_unknown(var: &str, current: &Value, problems: &mut Problems) {
    let candidates = known_vars(current);
    let suggestion = companion_hint(var)
        .or_else(|| closest(var, candidates.iter().map(String::as_str)).map(str::to_owned));
    let message = match &suggestion {
        Some(s) => format!("unknown configuration variable; did you mean {s}?"),
        None => "unknown configuration variable".to_owned(),
    };
    let rest = var.strip_prefix(ENV_PREFIX).unwrap_or(var);
    let fix = if ["UPSTREAMS_", "ROUTES_", "ROLES_", "RATE_LIMIT_CLASSES_"]
        .iter()
        .any(|p| rest.starts_with(p))
    {
        "variables can change upstreams, routes, roles and rate classes defined in the file (by name or index), their table entries, and the default roles and rate classes, not add new ones; define them in the file".to_owned()
    } else {
        match &suggestion {
            Some(s) => format!("rename it to {s}, or unset it"),
            None => "unset it; the variable names are listed in docs/CONFIG.md".to_owned(),
        }
    };
    // The value is not shown: the variable may be a misspelled secret.
    problems.push(var, None, message, fix);
}

/// `RAMPART_MASTER_KEY_HEX_FILE` → `RAMPART_MASTER_KEY_PATH`: the `_FILE` habit from
/// container images, applied to a secret whose file key has another name.
fn companion_hint(var: &str) -> Option<String> {
    let stem = var.strip_suffix("_FILE")?;
    secrets::SECRET_KEYS
        .iter()
        .find(|k| env_var_for(k.name) == stem)
        .map(|k| env_var_for(k.companion))
}

/// Every variable name that would resolve against `current`, for suggestions.
fn known_vars(current: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_vars(schema::root(), String::new(), Some(current), &mut out);
    out
}

fn collect_vars(node: Node<'_>, prefix: String, current: Option<&Value>, out: &mut Vec<String>) {
    match node.kind() {
        Kind::Table(table) => {
            for name in table.property_names() {
                if let Some(child) = table.property(name) {
                    let path = schema::join(&prefix, name);
                    collect_vars(child, path, current.and_then(|c| c.get(name)), out);
                }
            }
        }
        Kind::Map(values) => {
            let defaults = map_default(node);
            let names = match current {
                Some(value) => value.as_table(),
                None => defaults.as_ref().and_then(Value::as_table),
            };
            for (name, value) in names.into_iter().flatten() {
                collect_vars(values, schema::join(&prefix, name), Some(value), out);
            }
        }
        Kind::List(items) if matches!(items.kind(), Kind::Table(_)) => {
            for (i, value) in current
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                collect_vars(items, format!("{prefix}[{i}]"), Some(value), out);
            }
        }
        _ => out.push(env_var_for(&prefix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_to(text: &str, vars: &[(&str, &str)]) -> (Table, EnvOrigins, Vec<crate::Problem>) {
        let mut table: Table = toml::from_str(text).unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut problems = Problems::default();
        let origins = apply(&mut table, &env, &mut problems);
        (table, origins, problems.into_error().problems().to_vec())
    }

    #[test]
    fn names_are_the_upper_cased_path() {
        assert_eq!(env_var_for("server.listen"), "RAMPART_SERVER_LISTEN");
        assert_eq!(env_var_for("master_key_hex"), "RAMPART_MASTER_KEY_HEX");
        assert_eq!(env_var_for("routes[0].auth"), "RAMPART_ROUTES_0_AUTH");
    }

    #[test]
    fn keys_with_underscores_resolve_by_longest_match() {
        let (table, origins, problems) = apply_to(
            "",
            &[
                ("RAMPART_SERVER_LISTEN", "0.0.0.0:1"),
                ("RAMPART_MASTER_KEY_PATH", "/k"),
                ("RAMPART_STORAGE_URL_FILE", "/u"),
                ("RAMPART_SERVER_MAX_CONNECTIONS", "7"),
                ("RAMPART_SERVER_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.1"),
                ("RAMPART_METRICS_ENABLED", "false"),
                ("RAMPART_SERVER_TLS_CERT_PATH", "/c"),
                ("RAMPART_CONFIG", "/etc/rampart.toml"),
                ("HOME", "/root"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(table["server"]["listen"].as_str(), Some("0.0.0.0:1"));
        assert_eq!(table["master_key_path"].as_str(), Some("/k"));
        assert_eq!(table["storage"]["url_file"].as_str(), Some("/u"));
        assert_eq!(table["server"]["max_connections"].as_integer(), Some(7));
        assert_eq!(
            table["server"]["trusted_proxies"].as_array().unwrap().len(),
            2
        );
        assert_eq!(table["metrics"]["enabled"].as_bool(), Some(false));
        assert_eq!(table["server"]["tls"]["cert_path"].as_str(), Some("/c"));
        assert_eq!(origins["server.listen"], "RAMPART_SERVER_LISTEN");
    }

    #[test]
    fn upstreams_by_name_and_routes_by_index() {
        let text = r#"
            [upstreams.billing-api]
            url = "http://127.0.0.1:1"
            [[routes]]
            name = "a"
            upstream = "billing-api"
        "#;
        let (table, origins, problems) = apply_to(
            text,
            &[
                ("RAMPART_UPSTREAMS_BILLING_API_URL", "http://127.0.0.1:2"),
                ("RAMPART_ROUTES_0_AUTH", "public"),
                ("RAMPART_ROUTES_0_CORS_ALLOW_ORIGINS", "https://a.example"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            table["upstreams"]["billing-api"]["url"].as_str(),
            Some("http://127.0.0.1:2")
        );
        assert_eq!(table["routes"][0]["auth"].as_str(), Some("public"));
        assert_eq!(
            table["routes"][0]["cors"]["allow_origins"][0].as_str(),
            Some("https://a.example")
        );
        assert!(origins.contains_key("routes[0].auth"));
    }

    #[test]
    fn unknown_variables_are_errors_with_suggestions() {
        let (_, _, problems) = apply_to(
            "",
            &[
                ("RAMPART_SERVR_LISTEN", "x"),
                ("RAMPART_MASTER_KEY_HEX_FILE", "/k"),
                ("RAMPART_ROUTES_3_AUTH", "public"),
                ("RAMPART_SERVER", "x"),
            ],
        );
        let by_key = |k: &str| problems.iter().find(|p| p.key == k).unwrap();
        assert!(
            by_key("RAMPART_SERVR_LISTEN")
                .message
                .contains("RAMPART_SERVER_LISTEN")
        );
        assert!(
            by_key("RAMPART_MASTER_KEY_HEX_FILE")
                .message
                .contains("RAMPART_MASTER_KEY_PATH")
        );
        assert!(
            by_key("RAMPART_ROUTES_3_AUTH")
                .fix
                .contains("not add new ones")
        );
        assert!(by_key("RAMPART_SERVER").value.is_none());
    }

    #[test]
    fn bad_values_are_reported_and_secrets_redacted() {
        let (_, _, problems) = apply_to(
            "",
            &[
                ("RAMPART_SERVER_MAX_CONNECTIONS", "lots"),
                ("RAMPART_METRICS_ENABLED", "yes please"),
            ],
        );
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[1].value.as_deref(), Some("\"lots\""));
        assert!(problems[1].message.contains("server.max_connections"));
    }
}
