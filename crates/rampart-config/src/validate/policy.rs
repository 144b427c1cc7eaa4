//! Route access policy (F-RBAC, F-TENANT): roles, permissions, MFA, attributes and
//! the tenant rule.
//!
//! A `public` route does not authenticate its callers, so none of these can be
//! checked there. Such a requirement is refused rather than ignored: ignoring it
//! would let anonymous callers through a route the operator believes restricted.

use std::collections::BTreeMap;

use super::edge::Reserved;
use super::{Validator, entry_key, sanitize_name};
use crate::config::{RouteAuth, RoutePolicy, TenantRule};
use crate::error::quote;
use crate::raw::RawTenant;
use crate::suggest::did_you_mean;
use crate::units;

/// Longest attribute name, in bytes.
const MAX_ATTRIBUTE_NAME_LEN: usize = 64;

/// The policy keys of one `[[routes]]` entry, as written.
pub(super) struct RawPolicy {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub require_mfa: bool,
    pub attributes: BTreeMap<String, String>,
    pub tenant: Option<RawTenant>,
}

impl Validator<'_> {
    /// The policy of the route at `base` (`routes[3]`); `roles` are the names in
    /// `[roles]`.
    pub(super) fn route_policy(
        &mut self,
        base: &str,
        auth: RouteAuth,
        raw: RawPolicy,
        roles: &[String],
    ) -> RoutePolicy {
        if auth == RouteAuth::Public {
            let written = [
                ("roles", !raw.roles.is_empty(), None, "a role requirement"),
                (
                    "permissions",
                    !raw.permissions.is_empty(),
                    None,
                    "a permission requirement",
                ),
                (
                    "require_mfa",
                    raw.require_mfa,
                    Some("true".to_owned()),
                    "a second-factor requirement",
                ),
                (
                    "attributes",
                    !raw.attributes.is_empty(),
                    None,
                    "an attribute requirement",
                ),
                ("tenant", raw.tenant.is_some(), None, "a tenant rule"),
            ];
            for (field, present, value, what) in written {
                if present {
                    self.not_on_public_route(base, field, value, what);
                }
            }
        }
        let mut required_roles: Vec<String> = Vec::new();
        for (j, role) in raw.roles.iter().enumerate() {
            let role = role.trim();
            if !roles.iter().any(|r| r == role) {
                let names: Vec<&str> = roles.iter().map(String::as_str).collect();
                self.problem(
                    format!("{base}.roles[{j}]"),
                    Some(quote(role)),
                    format!(
                        "no role by that name{}",
                        did_you_mean(role, names.iter().copied())
                    ),
                    format!(
                        "use one of: {}, or define [roles.{}]",
                        names.join(", "),
                        sanitize_name(role)
                    ),
                );
                continue;
            }
            if !required_roles.iter().any(|r| r == role) {
                required_roles.push(role.to_owned());
            }
        }
        let mut permissions: Vec<String> = Vec::new();
        for (j, text) in raw.permissions.iter().enumerate() {
            if let Some(permission) =
                self.parse(&format!("{base}.permissions[{j}]"), text, units::permission)
                && !permissions.contains(&permission)
            {
                permissions.push(permission);
            }
        }
        let attributes = self.attributes(&format!("{base}.attributes"), raw.attributes);
        let tenant = raw.tenant.map(|tenant| self.tenant(base, tenant));
        RoutePolicy {
            roles: required_roles,
            permissions,
            require_mfa: raw.require_mfa,
            attributes,
            tenant,
        }
    }

    /// A per-route setting that only means something for an authenticated caller,
    /// on a public route.
    pub(super) fn not_on_public_route(
        &mut self,
        base: &str,
        field: &str,
        value: Option<String>,
        what: &str,
    ) {
        self.problem(
            format!("{base}.{field}"),
            value,
            format!(
                "{base}.auth = \"public\" lets anonymous callers in, so {what} could never be checked"
            ),
            format!("set {base}.auth = \"required\", or remove {base}.{field}"),
        );
    }

    fn attributes(
        &mut self,
        field: &str,
        raw: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in raw {
            let key = entry_key(field, &name);
            let valid_name = (1..=MAX_ATTRIBUTE_NAME_LEN).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
            if !valid_name {
                self.problem(
                    key,
                    None,
                    "attribute names are 1 to 64 characters from letters, digits, _, -, . and :",
                    "use a name such as \"subscription\"",
                );
                continue;
            }
            // Matching is exact, so an empty value or stray control characters would
            // make a requirement no principal meets, silently.
            if value.is_empty() || value.chars().any(char::is_control) {
                self.problem(
                    key,
                    Some(quote(&value)),
                    "the required value is empty or contains control characters",
                    "write the exact value the principal's attribute must have, such as \"active\"",
                );
                continue;
            }
            out.insert(name, value);
        }
        out
    }

    fn tenant(&mut self, base: &str, raw: RawTenant) -> TenantRule {
        let key = |k: &str| format!("{base}.tenant.{k}");
        let header = match self.parse(&key("header"), &raw.header, units::header_name) {
            Some(name) => match Reserved::of(&name) {
                Some(reserved) => {
                    self.problem(
                        key("header"),
                        Some(quote(&raw.header)),
                        reserved.message(),
                        "use a header of its own, such as \"X-Tenant-ID\" (the default)",
                    );
                    name
                }
                None => name,
            },
            None => raw.header.to_ascii_lowercase(),
        };
        let claim = raw.claim.trim();
        if claim.is_empty() || claim.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.problem(
                key("claim"),
                Some(quote(&raw.claim)),
                "not a claim name",
                "name the token claim, such as \"tenant\" (the default)",
            );
        }
        TenantRule {
            source: raw.source,
            header,
            claim: claim.to_owned(),
            require: raw.require,
        }
    }
}
