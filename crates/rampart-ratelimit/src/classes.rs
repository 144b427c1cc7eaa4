//! Rate classes: one shared bucket per configured class, used by the gateway's
//! `rate_limit()` phase and by Rampart's own endpoints alike, so a client's budget in
//! a class is one budget whichever path it takes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::fallback::{Bucket, RateLimiter};
use crate::limit::{Key, Limit};

/// What a class counts requests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBy {
    /// The client address.
    Ip,
    /// The authenticated user (anonymous requests: the client address).
    Principal,
    /// The credential (API token or session; anonymous: the client address).
    Token,
}

impl KeyBy {
    /// The key for a request from `ip`, by `user` with `credential`.
    pub fn key(self, ip: IpAddr, user: Option<&str>, credential: Option<&str>) -> Key {
        match (self, user, credential) {
            (Self::Principal, Some(user), _) => Key::Name(Arc::from(user)),
            (Self::Token, _, Some(credential)) => Key::Name(Arc::from(credential)),
            _ => Key::Ip(ip),
        }
    }
}

/// A class's bucket and key rule.
#[derive(Clone)]
pub struct Class {
    /// The shared bucket.
    pub bucket: Bucket,
    /// What it counts against.
    pub key_by: KeyBy,
}

/// Every configured class, by name.
#[derive(Clone, Default)]
pub struct Classes(Arc<HashMap<String, Class>>);

impl Classes {
    /// Creates one bucket per class on `limiter`.
    pub fn new<'a>(
        limiter: &RateLimiter,
        classes: impl IntoIterator<Item = (&'a str, Limit, KeyBy)>,
    ) -> Self {
        let map = classes
            .into_iter()
            .map(|(name, limit, key_by)| {
                (
                    name.to_owned(),
                    Class {
                        bucket: limiter.bucket(&format!("class:{name}"), limit),
                        key_by,
                    },
                )
            })
            .collect();
        Self(Arc::new(map))
    }

    /// The class named `name`.
    pub fn get(&self, name: &str) -> Option<&Class> {
        self.0.get(name)
    }
}
