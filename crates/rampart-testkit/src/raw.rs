//! HTTP/1.1 over a bare TCP socket, for requests no well-behaved client would send:
//! smuggling shapes, unnormalized paths, headers trickled byte by byte.
//!
//! Responses are parsed just enough to assert on: status, headers, body (by
//! `Content-Length`, chunked, or up to the close), and whether the server closed
//! the connection afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::process::WAIT;

/// A response read off the socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header lines, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of an envelope body, if it is one.
    pub fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value["error"]["code"].as_str().map(str::to_owned)
    }
}

/// A connection that reads responses one after another.
pub struct RawConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawConnection {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes `bytes`; `false` if the server already closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Reads the next response (skipping `1xx`), or `None` if the connection closed
    /// first. Panics after [`WAIT`].
    pub async fn response(&mut self) -> Option<RawResponse> {
        tokio::time::timeout(WAIT, self.read_response())
            .await
            .expect("no response in time")
    }

    /// Like [`Self::response`] but gives up after `limit`, returning `Err(())`.
    pub async fn response_within(&mut self, limit: Duration) -> Result<Option<RawResponse>, ()> {
        tokio::time::timeout(limit, self.read_response())
            .await
            .map_err(|_| ())
    }

    /// Whether the server closes the connection (EOF or reset) within [`WAIT`],
    /// discarding anything it sends before.
    pub async fn closed(&mut self) -> bool {
        let mut scratch = [0u8; 4096];
        let outcome = tokio::time::timeout(WAIT, async {
            loop {
                match self.stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await;
        outcome.unwrap_or(false)
    }

    async fn fill(&mut self) -> bool {
        let mut scratch = [0u8; 16 * 1024];
        match self.stream.read(&mut scratch).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&scratch[..n]);
                true
            }
        }
    }

    async fn read_response(&mut self) -> Option<RawResponse> {
        loop {
            let head_end = loop {
                if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                    break end;
                }
                if !self.fill().await {
                    return None;
                }
            };
            let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
            self.buffer.drain(..head_end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status line");
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            let body = if status == 101 || status == 204 || status == 304 {
                Vec::new()
            } else if let Some(length) = get("content-length") {
                let length: usize = length.parse().expect("content-length");
                while self.buffer.len() < length {
                    if !self.fill().await {
                        break;
                    }
                }
                let take = length.min(self.buffer.len());
                self.buffer.drain(..take).collect()
            } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                self.read_chunked().await
            } else {
                while self.fill().await {}
                std::mem::take(&mut self.buffer)
            };
            return Some(RawResponse {
                status,
                headers,
                body,
            });
        }
    }

    async fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.buffer, b"\r\n") {
                    break end;
                }
                if !self.fill().await {
                    return body;
                }
            };
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            self.buffer.drain(..line_end + 2);
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .expect("chunk size");
            while self.buffer.len() < size + 2 {
                if !self.fill().await {
                    return body;
                }
            }
            body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
            if size == 0 {
                return body;
            }
        }
    }
}

/// Sends `bytes` on a fresh connection and reads one response (`None`: the server
/// closed the connection without answering).
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<RawResponse> {
    let mut connection = RawConnection::connect(addr).await;
    connection.send(bytes).await;
    connection.response().await
}

/// `GET <target>` with `Host: <host>` and `Connection: close`, plus `extra` header
/// lines (each ending in `\r\n`).
pub fn get(target: &str, host: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
        .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
