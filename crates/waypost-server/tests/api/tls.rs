//! TLS termination (rustls: TLS 1.2 and 1.3 only) with HSTS on every answer.

use std::sync::Arc;

use waypost_crypto::MasterKey;
use waypost_store::Backend;
use waypost_store::testing::TestDatabase;

use crate::helpers::{spawn_with, test_config};
use crate::on_both_backends;

on_both_backends!(
    tls_serves_with_hsts_on_tls_1_2_and_1_3,
    tls_1_3_only_refuses_a_tls_1_2_client,
    an_oversize_body_over_http2_is_answered_413
);

/// A database, a data directory and a configuration serving TLS with a new
/// self-signed certificate for `localhost`.
async fn tls_setup(
    backend: Backend,
) -> Option<(
    TestDatabase,
    tempfile::TempDir,
    rcgen::CertifiedKey,
    waypost_server::Config,
)> {
    let db = TestDatabase::create(backend).await?;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut config = test_config(&db, dir.path(), &MasterKey::generate());
    config.tls_cert = Some(cert_path);
    config.tls_key = Some(key_path);
    Some((db, dir, cert, config))
}

async fn tls_serves_with_hsts_on_tls_1_2_and_1_3(backend: Backend) {
    let Some((db, dir, cert, config)) = tls_setup(backend).await else {
        return;
    };
    let app = spawn_with(config, Arc::new(db), Arc::new(dir)).await;
    let url = app.address.replace("http://127.0.0.1", "https://localhost");

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", app.state.config.listen)
        .build()
        .unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let client_url = format!("https://localhost:{port}/healthz");
    let res = client.get(&client_url).send().await.expect("TLS request");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );

    // rustls implements only TLS 1.2 and 1.3; both must negotiate.
    for (min, max) in [
        (
            reqwest::tls::Version::TLS_1_2,
            reqwest::tls::Version::TLS_1_2,
        ),
        (
            reqwest::tls::Version::TLS_1_3,
            reqwest::tls::Version::TLS_1_3,
        ),
    ] {
        let pinned = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("localhost", app.state.config.listen)
            .min_tls_version(min)
            .max_tls_version(max)
            .build()
            .unwrap();
        assert_eq!(
            pinned
                .get(&client_url)
                .send()
                .await
                .expect("negotiates")
                .status(),
            200
        );
    }
    let plain = reqwest::get(app.address.clone() + "/healthz").await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served on the TLS port"
    );
}

/// `WAYPOST_TLS_MIN_VERSION=1.3`: a client that offers at most TLS 1.2 gets
/// no connection; a TLS 1.3 client is served.
async fn tls_1_3_only_refuses_a_tls_1_2_client(backend: Backend) {
    let Some((db, dir, cert, mut config)) = tls_setup(backend).await else {
        return;
    };
    config.tls_min_version = "1.3".into();
    let app = spawn_with(config, Arc::new(db), Arc::new(dir)).await;
    let port = app.address.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}/healthz");
    let client = |max: reqwest::tls::Version| {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("localhost", app.state.config.listen)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .max_tls_version(max)
            .build()
            .unwrap()
    };
    let refused = client(reqwest::tls::Version::TLS_1_2)
        .get(&url)
        .send()
        .await;
    assert!(refused.is_err(), "a TLS 1.2 client was served: {refused:?}");
    let served = client(reqwest::tls::Version::TLS_1_3)
        .get(&url)
        .send()
        .await
        .expect("TLS 1.3 negotiates");
    assert_eq!(served.status(), 200);
}

/// HTTP/2 (TLS with ALPN `h2`): a body declared larger than the limit is
/// answered 413 with a problem document, not a reset stream.
async fn an_oversize_body_over_http2_is_answered_413(backend: Backend) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let Some((db, dir, cert, config)) = tls_setup(backend).await else {
        return;
    };
    let app = spawn_with(config, Arc::new(db), Arc::new(dir)).await;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(app.state.config.listen)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let limit = app.state.config.body_limit_bytes;
    let body = vec![b'x'; limit + 1024];
    let req = hyper::Request::post(format!(
        "https://localhost:{}/v1/contacts",
        app.state.config.listen.port()
    ))
    .header("content-type", "application/json")
    .header("content-length", body.len())
    .body(Full::new(hyper::body::Bytes::from(body)))
    .unwrap();
    let res = sender
        .send_request(req)
        .await
        .expect("an answer, not a reset stream");
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(problem["status"], 413);
    // Without a declared length the limit is found while streaming.
    let chunks = (0..(limit / 16384 + 8)).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(hyper::body::Bytes::from(
            vec![b'x'; 16384],
        )))
    });
    let streamed = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
    // A route that reads the body before anything else: the provider webhook.
    let req = hyper::Request::post(format!(
        "https://localhost:{}/webhooks/whatsapp/ch_any",
        app.state.config.listen.port()
    ))
    .header("content-type", "application/json")
    .body(streamed)
    .unwrap();
    let (mut sender, conn) = {
        let tcp = tokio::net::TcpStream::connect(app.state.config.listen)
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap()
    };
    tokio::spawn(conn);
    let res = sender
        .send_request(req)
        .await
        .expect("an answer to a streamed body, not a reset stream");
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
