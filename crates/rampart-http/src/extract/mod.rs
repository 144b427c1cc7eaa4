//! Strict extractors.
//!
//! [`Json`] insists on `application/json`, enforces the body limit while reading, and
//! rejects unknown fields (DTOs use `#[serde(deny_unknown_fields)]`) with 422 in the
//! envelope — never axum's plain-text rejections. [`ClientMeta`] is who the client
//! is network-wise (address through trusted proxies, `User-Agent`, request id);
//! [`auth`] holds the authentication extractors.

pub mod auth;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};

use axum::extract::{FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::request::Parts;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::client_ip::{self, ClientInfo, TrustedProxies};
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::server::{PeerAddr, Transport};
use crate::state::AppState;

/// A JSON request body, parsed strictly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::invalid_body("the body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(ApiError::invalid_body)
    }
}

/// The client of an API request: its address (resolved through
/// `server.trusted_proxies`, as for rate limits, lockouts and audit), scheme,
/// `User-Agent` and request id.
#[derive(Debug, Clone)]
pub struct ClientMeta {
    /// Address and scheme.
    pub info: ClientInfo,
    /// The `User-Agent` header, if it is valid text.
    pub user_agent: Option<String>,
    /// The request id (`X-Request-Id`).
    pub request_id: Option<String>,
}

impl ClientMeta {
    /// The client address.
    pub fn ip(&self) -> IpAddr {
        self.info.ip
    }

    /// Reads the client from a request's parts.
    pub fn from_parts(parts: &Parts, trusted: &TrustedProxies) -> Self {
        // The edge middleware resolved the client once; recompute only where it did
        // not run (in-process tests of a bare router).
        let info = parts
            .extensions
            .get::<ClientInfo>()
            .copied()
            .unwrap_or_else(|| {
                let peer = parts
                    .extensions
                    .get::<PeerAddr>()
                    .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
                let tls = parts.extensions.get::<Transport>() == Some(&Transport::Tls);
                client_ip::resolve(peer, tls, &parts.headers, trusted)
            });
        Self {
            info,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|id| id.as_str().to_owned()),
        }
    }
}

impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        if parts.extensions.get::<ClientInfo>().is_some() {
            return Ok(Self::from_parts(parts, &TrustedProxies::default()));
        }
        let trusted = TrustedProxies::new(state.config.server.trusted_proxies.clone());
        Ok(Self::from_parts(parts, &trusted))
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_type_detection() {
        let mut headers = http::HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&headers));
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&headers));
        headers.insert(header::CONTENT_TYPE, "application/jsonx".parse().unwrap());
        assert!(!is_json(&headers));
    }
}
