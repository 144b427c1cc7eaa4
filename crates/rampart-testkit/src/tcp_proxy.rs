//! A TCP forwarder a test can cut and restore, to make a real dependency (PostgreSQL,
//! Redis) unreachable without stopping it for everyone else.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections from a local port to `target` until cut.
pub struct TcpProxy {
    /// The local address clients connect to.
    pub addr: SocketAddr,
    target: SocketAddr,
    cut: watch::Sender<bool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts forwarding `127.0.0.1:<random port>` → `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let mut proxy = Self {
            addr,
            target,
            cut,
            acceptor: None,
        };
        proxy.acceptor = Some(proxy.spawn_acceptor(listener));
        proxy
    }

    fn spawn_acceptor(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target;
        let cut = Arc::new(self.cut.subscribe());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = (*cut).clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        })
    }

    /// Closes every forwarded connection and stops accepting: the target becomes
    /// unreachable through this proxy.
    pub fn cut(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
        self.cut.send_replace(true);
    }

    /// Accepts and forwards again on the same port.
    pub async fn restore(&mut self) {
        self.cut.send_replace(false);
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.acceptor = Some(self.spawn_acceptor(listener));
    }
}
