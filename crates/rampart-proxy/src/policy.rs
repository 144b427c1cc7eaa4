//! Phase `authorize()`: a route's policy against the principal (F-ROUTES, F-RBAC,
//! F-TENANT). Pure: no I/O, so every rule is unit-tested here.
//!
//! Deny by default. Rules, in order: the route's `auth`; any-of `roles`; all-of
//! `permissions` (through [`Roles::permits`], which applies `require_mfa` of the roles
//! and API-token scopes); the route's own `require_mfa`; exact `attributes`; the
//! tenant rule. The first failing rule is the deny reason that is audited.

use std::collections::BTreeMap;

use http::HeaderMap;
use rampart_config::{RouteAuth, TenantRule, TenantSource};
use rampart_core::identity::{Permit, Principal, Roles};

/// A route's compiled policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `public`, `optional` or `required`.
    pub auth: RouteAuth,
    /// Any-of.
    pub roles: Vec<String>,
    /// All-of.
    pub permissions: Vec<String>,
    /// The session must have passed a second factor.
    pub require_mfa: bool,
    /// Exact attribute values.
    pub attributes: BTreeMap<String, String>,
    /// Where the tenant comes from.
    pub tenant: Option<TenantRule>,
}

/// What `authorize()` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward; `tenant` is the resolved tenant, if the route is tenant-scoped.
    Allow {
        /// The tenant the request acts in.
        tenant: Option<String>,
    },
    /// Refuse: the caller is known but not allowed. The reason is audited; the code
    /// goes to the client.
    Deny(Deny),
    /// Refuse until the caller authenticates.
    Challenge,
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// Stable error code for the client.
    pub code: &'static str,
    /// The reason, for the audit log (no secrets: names of roles, permissions,
    /// attributes and tenants only).
    pub reason: String,
}

impl Deny {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl Policy {
    /// Decides for `principal` (absent: anonymous) with the request's headers (for the
    /// tenant header) and query (a `tenant_id`/`tenant` parameter must not contradict
    /// the resolved tenant).
    pub fn decide(
        &self,
        roles: &Roles,
        principal: Option<&Principal>,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Decision {
        let principal = match (self.auth, principal) {
            (RouteAuth::Public, _) => return Decision::Allow { tenant: None },
            (RouteAuth::Optional, None) => return Decision::Allow { tenant: None },
            (RouteAuth::Required, None) => return Decision::Challenge,
            (_, Some(principal)) => principal,
        };
        if !self.roles.is_empty() && !self.roles.iter().any(|r| principal.roles.contains(r)) {
            return Decision::Deny(Deny::new(
                "forbidden",
                format!("needs one of the roles {}", self.roles.join(", ")),
            ));
        }
        for permission in &self.permissions {
            match roles.permits(principal, permission) {
                Permit::Granted => {}
                Permit::NeedsMfa => {
                    return Decision::Deny(Deny::new(
                        "mfa_required",
                        format!("permission {permission} needs a second factor"),
                    ));
                }
                Permit::Denied => {
                    return Decision::Deny(Deny::new(
                        "forbidden",
                        format!("missing permission {permission}"),
                    ));
                }
            }
        }
        if self.require_mfa && !principal.mfa {
            return Decision::Deny(Deny::new(
                "mfa_required",
                "the route requires a second factor",
            ));
        }
        for (name, expected) in &self.attributes {
            if principal.attributes.get(name) != Some(expected) {
                return Decision::Deny(Deny::new(
                    "forbidden",
                    format!("attribute {name} must be {expected}"),
                ));
            }
        }
        match &self.tenant {
            None => Decision::Allow { tenant: None },
            Some(rule) => match tenant(rule, principal, headers, query) {
                Ok(tenant) => Decision::Allow { tenant },
                Err(deny) => Decision::Deny(deny),
            },
        }
    }
}

fn tenant(
    rule: &TenantRule,
    principal: &Principal,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<String>, Deny> {
    let named = match rule.source {
        TenantSource::Header => {
            let mut values = headers.get_all(rule.header.as_str()).iter();
            match (values.next(), values.next()) {
                (None, _) => None,
                (Some(value), None) => {
                    Some(value.to_str().map(|v| v.trim().to_owned()).map_err(|_| {
                        Deny::new("tenant_invalid", "the tenant header is not text")
                    })?)
                }
                (Some(_), Some(_)) => {
                    return Err(Deny::new("tenant_invalid", "more than one tenant header"));
                }
            }
        }
        TenantSource::Claim => principal.attributes.get(&rule.claim).cloned().or_else(|| {
            match principal.tenants.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            }
        }),
    };
    let Some(tenant) = named.filter(|t| !t.is_empty()) else {
        if rule.require {
            return Err(Deny::new("tenant_required", "the request names no tenant"));
        }
        return Ok(None);
    };
    if !principal.tenants.contains(&tenant) {
        return Err(Deny::new(
            "tenant_forbidden",
            format!("not a member of tenant {tenant}"),
        ));
    }
    // A tenant in the query string must not contradict the authoritative one: the
    // upstream might read it instead of X-Rampart-Tenant.
    if let Some(query) = query {
        for (key, value) in form_urlencoded(query) {
            if (key == "tenant_id" || key == "tenant") && value != tenant {
                return Err(Deny::new(
                    "tenant_mismatch",
                    format!("query parameter {key} contradicts tenant {tenant}"),
                ));
            }
        }
    }
    Ok(Some(tenant))
}

fn form_urlencoded(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(text: &str) -> String {
    let text = text.replace('+', " ");
    percent_encoding::percent_decode_str(&text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rampart_core::identity::{AuthMethod, RoleDefinition, UserId};

    use super::*;

    fn roles() -> Roles {
        let mut map = BTreeMap::new();
        map.insert(
            "admin".to_owned(),
            RoleDefinition {
                permissions: vec!["*".to_owned()],
                require_mfa: true,
            },
        );
        map.insert(
            "integrator".to_owned(),
            RoleDefinition {
                permissions: vec!["integration:invoke".to_owned()],
                require_mfa: false,
            },
        );
        Roles::new(map, false)
    }

    fn principal(roles: &[&str], mfa: bool, tenants: &[&str], attrs: &[(&str, &str)]) -> Principal {
        Principal {
            user_id: UserId::generate(),
            username: "alice".to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            method: AuthMethod::Session,
            mfa,
            scopes: None,
            credential_id: None,
        }
    }

    fn required() -> Policy {
        Policy {
            auth: RouteAuth::Required,
            ..Policy::default()
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn deny_code(decision: Decision) -> &'static str {
        match decision {
            Decision::Deny(deny) => deny.code,
            other => panic!("expected a deny, got {other:?}"),
        }
    }

    #[test]
    fn anonymous_is_challenged_on_required_and_allowed_elsewhere() {
        let r = roles();
        assert_eq!(
            required().decide(&r, None, &HeaderMap::new(), None),
            Decision::Challenge
        );
        for auth in [RouteAuth::Public, RouteAuth::Optional] {
            let policy = Policy {
                auth,
                ..Policy::default()
            };
            assert_eq!(
                policy.decide(&r, None, &HeaderMap::new(), None),
                Decision::Allow { tenant: None }
            );
        }
    }

    #[test]
    fn palompy_proxy_route_needs_permission_and_active_subscription() {
        let policy = Policy {
            permissions: vec!["integration:invoke".to_owned()],
            attributes: BTreeMap::from([("subscription".to_owned(), "active".to_owned())]),
            ..required()
        };
        let r = roles();
        let ok = principal(&["integrator"], false, &[], &[("subscription", "active")]);
        assert_eq!(
            policy.decide(&r, Some(&ok), &HeaderMap::new(), None),
            Decision::Allow { tenant: None }
        );
        let lapsed = principal(
            &["integrator"],
            false,
            &[],
            &[("subscription", "cancelled")],
        );
        assert_eq!(
            deny_code(policy.decide(&r, Some(&lapsed), &HeaderMap::new(), None)),
            "forbidden"
        );
        let no_role = principal(&[], false, &[], &[("subscription", "active")]);
        assert_eq!(
            deny_code(policy.decide(&r, Some(&no_role), &HeaderMap::new(), None)),
            "forbidden"
        );
        // The admin role grants everything, but only after MFA.
        let admin = principal(&["admin"], false, &[], &[("subscription", "active")]);
        assert_eq!(
            deny_code(policy.decide(&r, Some(&admin), &HeaderMap::new(), None)),
            "mfa_required"
        );
    }

    #[test]
    fn role_any_of_and_route_mfa() {
        let policy = Policy {
            roles: vec!["admin".to_owned(), "integrator".to_owned()],
            require_mfa: true,
            ..required()
        };
        let r = roles();
        assert_eq!(
            deny_code(policy.decide(
                &r,
                Some(&principal(&["user"], true, &[], &[])),
                &HeaderMap::new(),
                None
            )),
            "forbidden"
        );
        assert_eq!(
            deny_code(policy.decide(
                &r,
                Some(&principal(&["integrator"], false, &[], &[])),
                &HeaderMap::new(),
                None
            )),
            "mfa_required"
        );
        assert!(matches!(
            policy.decide(
                &r,
                Some(&principal(&["integrator"], true, &[], &[])),
                &HeaderMap::new(),
                None
            ),
            Decision::Allow { .. }
        ));
    }

    fn tenant_policy(source: TenantSource, require: bool) -> Policy {
        Policy {
            tenant: Some(TenantRule {
                source,
                header: "x-tenant-id".to_owned(),
                claim: "tenant".to_owned(),
                require,
            }),
            ..required()
        }
    }

    #[test]
    fn tenant_from_header_must_be_a_membership() {
        let r = roles();
        let p = principal(&[], false, &["acme", "globex"], &[]);
        let policy = tenant_policy(TenantSource::Header, true);
        assert_eq!(
            policy.decide(&r, Some(&p), &headers(&[("x-tenant-id", "acme")]), None),
            Decision::Allow {
                tenant: Some("acme".to_owned())
            }
        );
        assert_eq!(
            deny_code(policy.decide(&r, Some(&p), &headers(&[("x-tenant-id", "initech")]), None)),
            "tenant_forbidden"
        );
        assert_eq!(
            deny_code(policy.decide(&r, Some(&p), &HeaderMap::new(), None)),
            "tenant_required"
        );
        assert_eq!(
            deny_code(policy.decide(
                &r,
                Some(&p),
                &headers(&[("x-tenant-id", "acme"), ("x-tenant-id", "globex")]),
                None
            )),
            "tenant_invalid"
        );
    }

    #[test]
    fn a_query_tenant_cannot_override_the_resolved_one() {
        let r = roles();
        let p = principal(&[], false, &["acme", "globex"], &[]);
        let policy = tenant_policy(TenantSource::Header, true);
        let h = headers(&[("x-tenant-id", "acme")]);
        assert_eq!(
            deny_code(policy.decide(&r, Some(&p), &h, Some("tenant_id=globex"))),
            "tenant_mismatch"
        );
        assert!(matches!(
            policy.decide(&r, Some(&p), &h, Some("tenant_id=acme&x=1")),
            Decision::Allow { .. }
        ));
    }

    #[test]
    fn tenant_from_claim_uses_the_principal() {
        let r = roles();
        let policy = tenant_policy(TenantSource::Claim, true);
        let single = principal(&[], false, &["acme"], &[]);
        assert_eq!(
            policy.decide(
                &r,
                Some(&single),
                &headers(&[("x-tenant-id", "globex")]),
                None
            ),
            Decision::Allow {
                tenant: Some("acme".to_owned())
            },
            "a claim-sourced tenant ignores the header"
        );
        let many = principal(&[], false, &["acme", "globex"], &[]);
        assert_eq!(
            deny_code(policy.decide(&r, Some(&many), &HeaderMap::new(), None)),
            "tenant_required"
        );
    }
}
