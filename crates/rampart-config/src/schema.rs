//! Navigating the JSON schema of [`RawConfig`](crate::raw::RawConfig).
//!
//! The schema check, the environment overrides and the reference docs all need the
//! same questions answered — "what keys does this table have?", "is this a list of
//! strings?" — so they share this small reader instead of each walking raw JSON.
//! Only the shapes `schemars` emits for our types are handled: objects with
//! `properties` or `additionalProperties`, arrays, scalars, `$ref`, nullable
//! `anyOf`/`type: [T, "null"]`, and enums as `enum` or `oneOf` of `const`s.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::raw::RawConfig;

static SCHEMA: LazyLock<Value> = LazyLock::new(|| schemars::schema_for!(RawConfig).to_value());

/// The configuration's JSON schema (draft 2020-12), for tools and editors.
pub fn json_schema() -> &'static Value {
    &SCHEMA
}

/// The schema node of the whole configuration.
pub(crate) fn root() -> Node<'static> {
    Node {
        root: &SCHEMA,
        value: &SCHEMA,
    }
}

/// A position in the schema.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    root: &'a Value,
    value: &'a Value,
}

/// What kind of TOML value a node accepts.
#[derive(Clone, Copy)]
pub(crate) enum Kind<'a> {
    /// A table with a fixed set of keys.
    Table(Node<'a>),
    /// A table whose keys are names chosen by the operator (`[upstreams.<name>]`).
    Map(Node<'a>),
    /// A list; the node describes each item.
    List(Node<'a>),
    /// A string, possibly restricted to `enum` values.
    String,
    /// A whole number within bounds.
    Integer {
        min: Option<i128>,
        max: Option<i128>,
    },
    /// `true` or `false`.
    Boolean,
}

impl<'a> Node<'a> {
    /// The node with `$ref` followed and nullability removed (TOML has no null: an
    /// optional key is simply absent).
    fn resolved(self) -> Self {
        let mut node = self;
        // A chain of references is at most a few links long; the bound stops a
        // malformed schema from looping.
        for _ in 0..8 {
            if let Some(target) = node.value.get("$ref").and_then(Value::as_str) {
                let name = target.trim_start_matches("#/$defs/");
                match self.root.get("$defs").and_then(|d| d.get(name)) {
                    Some(value) => node.value = value,
                    None => return node,
                }
                continue;
            }
            if let Some(alternatives) = node.value.get("anyOf").and_then(Value::as_array) {
                let mut non_null = alternatives.iter().filter(|a| !is_null_schema(a));
                if let (Some(only), None) = (non_null.next(), non_null.next()) {
                    node.value = only;
                    continue;
                }
            }
            return node;
        }
        node
    }

    /// The kind of value accepted here.
    pub(crate) fn kind(self) -> Kind<'a> {
        let node = self.resolved();
        if node.value.get("properties").is_some() {
            return Kind::Table(node);
        }
        if let Some(values) = node.value.get("additionalProperties")
            && values.is_object()
        {
            return Kind::Map(node.child(values));
        }
        if let Some(items) = node.value.get("items") {
            return Kind::List(node.child(items));
        }
        if node.value.get("oneOf").is_some() || node.value.get("enum").is_some() {
            return Kind::String;
        }
        match node.types().first().copied() {
            Some("integer") => Kind::Integer {
                min: node
                    .bound("minimum")
                    .or_else(|| format_bounds(node.format()).0),
                max: node
                    .bound("maximum")
                    .or_else(|| format_bounds(node.format()).1),
            },
            Some("boolean") => Kind::Boolean,
            _ => Kind::String,
        }
    }

    /// The property named `key`, for a table node.
    pub(crate) fn property(self, key: &str) -> Option<Node<'a>> {
        let node = self.resolved();
        node.properties()?.get(key).map(|v| node.child(v))
    }

    /// Property names of a table node, sorted.
    pub(crate) fn property_names(self) -> Vec<&'a str> {
        let node = self.resolved();
        node.properties()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Keys a table node requires.
    pub(crate) fn required(self) -> Vec<&'a str> {
        let node = self.resolved();
        node.value
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Allowed values when the node is an enum of strings.
    pub(crate) fn enum_values(self) -> Option<Vec<&'a str>> {
        let node = self.resolved();
        if let Some(values) = node.value.get("enum").and_then(Value::as_array) {
            return Some(values.iter().filter_map(Value::as_str).collect());
        }
        let variants = node.value.get("oneOf").and_then(Value::as_array)?;
        Some(
            variants
                .iter()
                .filter_map(|v| v.get("const").and_then(Value::as_str))
                .collect(),
        )
    }

    /// The `///` documentation of the field.
    pub(crate) fn description(self) -> Option<&'a str> {
        self.value.get("description").and_then(Value::as_str)
    }

    /// The default value, when it is a constant.
    pub(crate) fn default_value(self) -> Option<&'a Value> {
        self.value.get("default").filter(|v| !v.is_null())
    }

    /// An annotation added with `#[schemars(extend(...))]` (`x-kind`, `x-default`).
    pub(crate) fn annotation(self, name: &str) -> Option<&'a str> {
        self.value.get(name).and_then(Value::as_str)
    }

    fn child(self, value: &'a Value) -> Node<'a> {
        Node {
            root: self.root,
            value,
        }
    }

    fn properties(self) -> Option<&'a Map<String, Value>> {
        self.value.get("properties").and_then(Value::as_object)
    }

    fn types(self) -> Vec<&'a str> {
        match self.value.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => Vec::new(),
        }
    }

    fn format(self) -> Option<&'a str> {
        self.value.get("format").and_then(Value::as_str)
    }

    fn bound(self, name: &str) -> Option<i128> {
        let value = self.value.get(name)?;
        value
            .as_u64()
            .map(i128::from)
            .or_else(|| value.as_i64().map(i128::from))
    }
}

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
}

/// Bounds implied by the integer formats `schemars` emits.
fn format_bounds(format: Option<&str>) -> (Option<i128>, Option<i128>) {
    match format {
        Some("uint8") => (Some(0), Some(u8::MAX.into())),
        Some("uint16") => (Some(0), Some(u16::MAX.into())),
        Some("uint32") => (Some(0), Some(u32::MAX.into())),
        Some("uint64" | "uint") => (Some(0), Some(u64::MAX.into())),
        Some("int32") => (Some(i32::MIN.into()), Some(i32::MAX.into())),
        Some("int64" | "int") => (Some(i64::MIN.into()), Some(i64::MAX.into())),
        _ => (None, None),
    }
}

/// `prefix.name`, or `name` at the top level.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_and_mapped_leaves() {
        let paths: Vec<String> = crate::key_reference().into_iter().map(|k| k.path).collect();
        for expected in [
            "mode",
            "server.listen",
            "server.tls.key_path",
            "email.smtp.password",
            "upstreams.<name>.url",
            "routes[].cors.allow_origins",
        ] {
            assert!(
                paths.iter().any(|p| p == expected),
                "{expected} in {paths:?}"
            );
        }
    }

    #[test]
    fn kinds_follow_the_types() {
        let server = root().property("server").unwrap();
        assert!(matches!(server.kind(), Kind::Table(_)));
        assert!(matches!(
            server.property("max_connections").unwrap().kind(),
            Kind::Integer { min: Some(1), .. }
        ));
        assert!(matches!(
            server.property("trusted_proxies").unwrap().kind(),
            Kind::List(_)
        ));
        assert!(matches!(
            server.property("tls").unwrap().kind(),
            Kind::Table(_)
        ));
        let mode = root().property("mode").unwrap();
        assert_eq!(mode.enum_values().unwrap(), ["dev", "production"]);
        assert!(matches!(
            root().property("upstreams").unwrap().kind(),
            Kind::Map(_)
        ));
    }
}
