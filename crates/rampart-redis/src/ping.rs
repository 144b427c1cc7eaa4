//! Readiness of Redis: a `PING` on a lazily connected, reconnecting connection.

use std::time::Duration;

use rampart_crypto::SecretString;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Pings Redis for `/readyz`.
#[derive(Clone)]
pub struct Ping {
    connection: ConnectionManager,
}

impl Ping {
    /// A pinger for `url` (a secret: never logged). Connects on first use.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        Ok(Self {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
        })
    }

    /// `PING`; an error when Redis does not answer `PONG` in time.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
    }
}
