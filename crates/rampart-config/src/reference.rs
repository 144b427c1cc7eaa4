//! The key reference, generated from the schema.
//!
//! `docs/CONFIG.md` embeds [`reference_markdown`] between markers, and a test fails
//! when the two differ, so the reference cannot fall behind the code: adding a field
//! with its `///` comment is the whole documentation change.

use crate::env::env_var_for;
use crate::schema::{self, Kind, Node};
use crate::secrets;

/// One configuration key, as documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// Dotted path: `server.listen`, `upstreams.<name>.url`, `routes[].auth`.
    pub path: String,
    /// What the value is: `duration`, `size`, `"dev" | "production"`, `integer`, ...
    pub kind: String,
    /// The default as TOML, a description of a derived default, `required`, or `—`.
    pub default: String,
    /// The environment variable that sets it (`<NAME>` and `<N>` stand for a name —
    /// of an upstream, role, rate class or table entry — and a route index).
    pub env_var: String,
    /// The field's documentation.
    pub description: String,
    /// Whether the key holds a secret value.
    pub secret: bool,
}

/// Every key of the configuration, in schema order (sections alphabetical).
pub fn key_reference() -> Vec<KeyDoc> {
    let mut out = Vec::new();
    collect(schema::root(), "", &mut out);
    out
}

/// The reference tables of `docs/CONFIG.md`, one per table of the config.
pub fn reference_markdown() -> String {
    let keys = key_reference();
    let mut sections: Vec<(String, Vec<&KeyDoc>)> = Vec::new();
    for key in &keys {
        let parent = key
            .path
            .rsplit_once('.')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default();
        match sections.iter_mut().find(|(p, _)| *p == parent) {
            Some((_, list)) => list.push(key),
            None => sections.push((parent, vec![key])),
        }
    }
    // Top-level keys first, then tables in path order, so nested tables follow
    // their parent.
    sections.sort_by(|a, b| (!a.0.is_empty(), &a.0).cmp(&(!b.0.is_empty(), &b.0)));
    let mut md = String::new();
    for (parent, list) in sections {
        md.push_str(&format!("### {}\n\n", heading(&parent)));
        md.push_str("| Key | Type | Default | Env var | Description |\n");
        md.push_str("| --- | --- | --- | --- | --- |\n");
        for key in list {
            md.push_str(&format!(
                "| `{}` | {} | {} | `{}` | {} |\n",
                key.path,
                cell(&key.kind),
                cell(&key.default),
                key.env_var,
                cell(&key.description)
            ));
        }
        md.push('\n');
    }
    md
}

fn heading(parent: &str) -> String {
    if parent.is_empty() {
        return "Top level".to_owned();
    }
    match parent.strip_suffix("[]") {
        Some(list) => format!("`[[{list}]]`"),
        None => format!("`[{}]`", parent.replace("[]", "")),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn collect(node: Node<'static>, prefix: &str, out: &mut Vec<KeyDoc>) {
    let required_here = node.required();
    for name in node.property_names() {
        let Some(child) = node.property(name) else {
            continue;
        };
        let path = schema::join(prefix, name);
        match child.kind() {
            Kind::Table(_) => collect(child, &path, out),
            // A name → value table (`attributes`) is one key; variables set its
            // entries by name.
            Kind::Map(values) if is_scalar(values.kind()) => out.push(KeyDoc {
                kind: kind_text(child, child.kind()),
                default: default_text(child, required_here.contains(&name)),
                env_var: env_var_for(&format!("{}.<name>", path.replace("[]", "[<n>]"))),
                description: child.description().unwrap_or_default().to_owned(),
                secret: secrets::is_secret_path(&path),
                path,
            }),
            Kind::Map(values) => collect(values, &format!("{path}.<name>"), out),
            Kind::List(items) if matches!(items.kind(), Kind::Table(_)) => {
                collect(items, &format!("{path}[]"), out);
            }
            kind => out.push(KeyDoc {
                kind: kind_text(child, kind),
                default: default_text(child, required_here.contains(&name)),
                env_var: env_var_for(&path.replace("[]", "[<n>]")),
                description: child.description().unwrap_or_default().to_owned(),
                secret: secrets::is_secret_path(&path),
                path,
            }),
        }
    }
}

fn is_scalar(kind: Kind<'_>) -> bool {
    matches!(kind, Kind::String | Kind::Integer { .. } | Kind::Boolean)
}

fn kind_text(node: Node<'_>, kind: Kind<'_>) -> String {
    if let Some(annotated) = node.annotation("x-kind") {
        return annotated.to_owned();
    }
    if let Some(values) = node.enum_values() {
        return values
            .iter()
            .map(|v| format!("`\"{v}\"`"))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    match kind {
        Kind::String => "string".to_owned(),
        Kind::Integer { min: Some(1), .. } => "integer ≥ 1".to_owned(),
        Kind::Integer { .. } => "integer".to_owned(),
        Kind::Boolean => "boolean".to_owned(),
        Kind::List(items) => format!("list of {}", kind_text(items, items.kind())),
        Kind::Table(_) | Kind::Map(_) => "table".to_owned(),
    }
}

fn default_text(node: Node<'_>, required: bool) -> String {
    if let Some(described) = node.annotation("x-default") {
        return described.to_owned();
    }
    if required {
        return "required".to_owned();
    }
    node.default_value()
        .and_then(|d| toml::Value::try_from(d).ok())
        .map(|d| format!("`{}`", render(&d)))
        .unwrap_or_else(|| "—".to_owned())
}

fn render(value: &toml::Value) -> String {
    match value {
        toml::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Table(entries) if entries.is_empty() => "{}".to_owned(),
        toml::Value::Table(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(k, v)| format!("{k} = {}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_type_default_and_env_var() {
        let keys = key_reference();
        let listen = keys.iter().find(|k| k.path == "server.listen").unwrap();
        assert_eq!(listen.kind, "socket address");
        assert_eq!(listen.default, "`\"127.0.0.1:9171\"`");
        assert_eq!(listen.env_var, "RAMPART_SERVER_LISTEN");
        let auth = keys.iter().find(|k| k.path == "routes[].auth").unwrap();
        assert_eq!(auth.env_var, "RAMPART_ROUTES_<N>_AUTH");
        assert_eq!(auth.default, "`\"required\"`");
        let url = keys
            .iter()
            .find(|k| k.path == "upstreams.<name>.url")
            .unwrap();
        assert_eq!(url.default, "required");
        assert_eq!(url.env_var, "RAMPART_UPSTREAMS_<NAME>_URL");
        assert!(
            keys.iter()
                .find(|k| k.path == "storage.url")
                .unwrap()
                .secret
        );
        let attributes = keys
            .iter()
            .find(|k| k.path == "routes[].attributes")
            .unwrap();
        assert_eq!(attributes.default, "`{}`");
        assert_eq!(attributes.env_var, "RAMPART_ROUTES_<N>_ATTRIBUTES_<NAME>");
        let burst = keys
            .iter()
            .find(|k| k.path == "rate_limit.classes.<name>.burst")
            .unwrap();
        assert_eq!(burst.env_var, "RAMPART_RATE_LIMIT_CLASSES_<NAME>_BURST");
        assert!(
            keys.iter().all(|k| !k.description.is_empty()),
            "every key is documented"
        );
    }
}
