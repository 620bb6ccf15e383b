//! Serving connections: the accept loop, and what it does so that slow or
//! greedy clients cannot take the server down. A client must send a complete
//! request head within `header_read_timeout_secs` of the server starting to
//! wait for one (hyper's header-read timeout, which also ends idle kept-alive
//! connections; a TLS handshake gets the same time). Open connections are
//! capped per node and per client address; a connection past a cap is not
//! dropped silently but answered `503` with a problem document and
//! `Retry-After`, by a bounded number of short-lived shedding tasks. Plain
//! connections speak HTTP/1.1 only (no version sniffing, which has no timeout);
//! TLS connections speak what ALPN chose. Every connection's writes pass
//! through [`crate::edge_io::EdgeIo`], which turns hyper's own bodiless error
//! answers (400, 414, 431) into problem documents.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::edge_io::EdgeIo;
use crate::error::{PROBLEM_JSON, Problem};

/// Connections past a cap that are answered at once; more are closed unanswered.
const SHEDDERS: usize = 64;
/// The longest a shed connection is kept to answer it.
const SHED_WITHIN: Duration = Duration::from_secs(2);

/// How connections are limited.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// `None`: no per-address cap (behind a proxy every peer is the proxy).
    pub max_per_address: Option<usize>,
}

impl ConnectionLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs.max(1)),
            max_connections: config.max_connections,
            max_per_address: (!config.trust_proxy_headers).then_some(config.max_connections_per_ip),
        }
    }
}

/// Open connections, in total and per client address.
struct OpenConnections {
    limits: ConnectionLimits,
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl OpenConnections {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *guard;
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= self.limits.max_connections
            || self.limits.max_per_address.is_some_and(|max| mine >= max)
        {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, mine + 1);
        Some(Admitted {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut guard = self.open.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then waits for open
/// connections to finish their requests (the caller bounds the wait).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let open = Arc::new(OpenConnections {
        limits,
        counts: Mutex::new((0, HashMap::new())),
    });
    let shedders = Arc::new(Semaphore::new(SHEDDERS));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            tls: tls.clone(),
            peer,
            limits,
        };
        match open.admit(peer.ip()) {
            Some(admitted) => {
                let (app, watcher) = (app.clone(), graceful.watcher());
                tokio::spawn(async move {
                    conn.serve_app(stream, app, watcher).await;
                    drop(admitted);
                });
            }
            None => match shedders.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(SHED_WITHIN, conn.shed(stream)).await;
                        drop(permit);
                    });
                }
                Err(_) => drop(stream),
            },
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

struct Connection {
    tls: Option<TlsAcceptor>,
    peer: SocketAddr,
    limits: ConnectionLimits,
}

impl Connection {
    /// Serves the application on an admitted connection.
    async fn serve_app(self, stream: TcpStream, app: Router, watcher: Watcher) {
        let peer = self.peer;
        let service = app.map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let service = TowerToHyperService::new(service);
        self.run(stream, service, Some(watcher)).await;
    }

    /// Answers every request on a connection past a cap with 503 and closes it.
    async fn shed(self, stream: TcpStream) {
        tracing::debug!(peer = %self.peer.ip(), "connection limit reached; shedding");
        let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(shed_response())
        });
        self.run(stream, service, None).await;
    }

    async fn run<S>(self, stream: TcpStream, service: S, watcher: Option<Watcher>)
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<Body>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limits = self.limits;
        match self.tls {
            None => http1(EdgeIo::new(stream), service, limits, watcher).await,
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                let Ok(Ok(tls)) = tokio::time::timeout(limits.header_read_timeout, handshake).await
                else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = EdgeIo::new(tls);
                if h2 {
                    http2(io, service, watcher).await
                } else {
                    http1(io, service, limits, watcher).await
                }
            }
        }
    }
}

async fn http1<I, S>(io: I, service: S, limits: ConnectionLimits, watcher: Option<Watcher>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let _ = match watcher {
        Some(w) => w.watch(conn).await,
        None => conn.await,
    };
}

async fn http2<I, S>(io: I, service: S, watcher: Option<Watcher>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // Pings find dead peers; an unanswered ping ends the connection.
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let _ = match watcher {
        Some(w) => w.watch(conn).await,
        None => conn.await,
    };
}

/// The answer on a connection past a cap.
fn shed_response() -> Response<Body> {
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too-many-connections",
        "Too many connections",
        "This server or this client address has too many open connections; retry shortly.",
    );
    let body = serde_json::to_vec(&problem).expect("problems serialise");
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(max: usize, per: Option<usize>) -> Arc<OpenConnections> {
        Arc::new(OpenConnections {
            limits: ConnectionLimits {
                header_read_timeout: Duration::from_secs(1),
                max_connections: max,
                max_per_address: per,
            },
            counts: Mutex::new((0, HashMap::new())),
        })
    }

    #[test]
    fn caps_hold_per_address_and_in_total_and_places_come_back() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let open = open(3, Some(2));
        let a1 = open.admit(a).unwrap();
        let _a2 = open.admit(a).unwrap();
        assert!(open.admit(a).is_none(), "per-address cap");
        let _b1 = open.admit(b).unwrap();
        assert!(open.admit(b).is_none(), "total cap");
        drop(a1);
        assert!(open.admit(b).is_some());
        let unlimited = super::tests::open(10, None);
        let held: Vec<_> = (0..10).map(|_| unlimited.admit(a).unwrap()).collect();
        assert_eq!(held.len(), 10);
        assert!(unlimited.admit(b).is_none());
    }
}
