//! Faults at seeded rates: the log shows them at about the configured
//! rate, the client classifies them, and a seed reproduces every outcome.

mod common;

use std::time::Duration;

use common::{Control, client, client_with_timeout, number_id, start, template};
use serde_json::{Value, json};
use waypost_cloudapi::ErrorClass;
use waypost_sandbox::SandboxConfig;

fn config(seed: u64) -> SandboxConfig {
    let mut c = SandboxConfig {
        seed,
        ..SandboxConfig::default()
    };
    c.webhooks.enabled = false;
    c.numbers[0].throughput = 100_000;
    c.numbers[0].messaging_tier = 100_000;
    c
}

#[tokio::test]
async fn server_errors_at_about_the_configured_rate() {
    let sb = start(config(7)).await;
    Control::new(&sb)
        .set_faults(json!({"error_5xx": 0.3}))
        .await;
    let (c, id) = (client(&sb), number_id(&sb));
    let mut retryable = 0;
    for i in 0..300 {
        let to = format!("1555100{i:04}");
        if let Err(e) = c
            .send_message(&id, &template(&to, "hello_world", &[]))
            .await
        {
            assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
            assert_eq!(e.status(), Some(500));
            retryable += 1;
        }
    }
    let log = Control::new(&sb).log().await;
    let faults = log["counters"]["fault_5xx"].as_u64().unwrap();
    assert_eq!(faults, retryable);
    let sends = log["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 300);
    let recorded = sends.iter().filter(|s| s["outcome"] == "fault_5xx").count() as u64;
    assert_eq!(recorded, faults);
    // 300 draws at p = 0.3: mean 90, sd ≈ 7.9; ±30 is nearly 4 sd.
    assert!((60..=120).contains(&faults), "{faults} faults");
}

#[tokio::test]
async fn burst_429_is_rate_limited() {
    let sb = start(config(3)).await;
    Control::new(&sb)
        .set_faults(json!({"burst_429": 1.0, "burst_len": 3}))
        .await;
    let err = client(&sb)
        .send_message(&number_id(&sb), &template("15551", "hello_world", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.meta().unwrap().code, 130429);
    assert_eq!(
        err.class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        }
    );
}

#[tokio::test]
async fn response_lost_is_recorded_but_not_answered() {
    let sb = start(config(3)).await;
    Control::new(&sb)
        .set_faults(json!({"response_lost": 1.0}))
        .await;
    let mut m = template("15552", "hello_world", &[]);
    m.biz_opaque_callback_data = Some("lost-1".into());
    let err = client(&sb)
        .send_message(&number_id(&sb), &m)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(err.meta().is_none());
    let log = Control::new(&sb).log().await;
    let s = &log["sends"][0];
    assert_eq!(s["outcome"], "response_lost");
    assert_eq!(s["biz_opaque_callback_data"], "lost-1");
    assert!(s["wamid"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(log["per_recipient"]["15552"], 1);
}

#[tokio::test]
async fn timeout_hangs_until_the_client_gives_up() {
    let sb = start(config(3)).await;
    Control::new(&sb).set_faults(json!({"timeout": 1.0})).await;
    let c = client_with_timeout(&sb, Duration::from_millis(300));
    let err = c
        .send_message(&number_id(&sb), &template("15553", "hello_world", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, waypost_cloudapi::ClientError::Timeout),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Retryable);
}

async fn run(seed: u64) -> Vec<(Value, Value)> {
    let sb = start(config(seed)).await;
    Control::new(&sb)
        .set_faults(json!({"error_5xx": 0.3, "burst_429": 0.1, "burst_len": 2, "latency": 0.2, "latency_ms": 5}))
        .await;
    let (c, id) = (client(&sb), number_id(&sb));
    for i in 0..40 {
        let _ = c
            .send_message(
                &id,
                &template(&format!("1555200{i:02}"), "hello_world", &[]),
            )
            .await;
    }
    let log = Control::new(&sb).log().await;
    log["sends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["outcome"].clone(), s["wamid"].clone()))
        .collect()
}

#[tokio::test]
async fn a_seed_reproduces_every_outcome_and_id() {
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert_ne!(a, run(43).await);
}
