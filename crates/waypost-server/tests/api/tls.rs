//! TLS termination (rustls: TLS 1.2 and 1.3 only) with HSTS on every answer.

use std::sync::Arc;

use waypost_crypto::MasterKey;
use waypost_store::Backend;
use waypost_store::testing::TestDatabase;

use crate::helpers::{spawn_with, test_config};
use crate::on_both_backends;

on_both_backends!(tls_serves_with_hsts_on_tls_1_2_and_1_3);

async fn tls_serves_with_hsts_on_tls_1_2_and_1_3(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut config = test_config(&db, dir.path(), &MasterKey::generate());
    config.tls_cert = Some(cert_path);
    config.tls_key = Some(key_path);
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
