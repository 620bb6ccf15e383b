//! A campaign under `kill -9`: 400 recipients fed to the outbox by the
//! campaign sender while the provider answers slowly; the server is killed
//! twice mid-campaign and restarted on the same database. Every recipient is
//! sent exactly once: the sender's accept and its record of it are two
//! transactions, joined by the per-recipient idempotency key.

use super::*;

const RECIPIENTS: usize = 400;

fn phone(i: usize) -> String {
    format!("+49151{:08}", 30_000_000 + i)
}

async fn campaign_sends_each_recipient_once_across_kill_9(backend: Backend) {
    let started = Instant::now();
    let Some(c) = Cluster::new(
        backend,
        &[
            ("WAYPOST_DISPATCH_LEASE_SECS", "2"),
            ("WAYPOST_DISPATCH_RECONCILE_SECS", "15"),
            ("WAYPOST_CAMPAIGN_LEASE_SECS", "2"),
            ("WAYPOST_CAMPAIGN_WINDOW", "40"),
            ("WAYPOST_CAMPAIGN_POLL_MS", "50"),
        ],
    )
    .await
    else {
        return;
    };
    let c = Arc::new(c);
    let mut node = Node::new(&c, "node");
    node.start(&c).await;
    let sandbox_port = free_port();
    let channel = c.channel(&node, sandbox_port, 80).await;
    let sb = sandbox(sandbox_port, node.port, &channel, |sc| {
        sc.faults.latency = 1.0;
        sc.faults.latency_ms = 400;
        sc.numbers[0].messaging_tier = 1_000_000;
        sc.webhooks.template_review_ms = 10;
    })
    .await;

    let template = json!({"name": "promo", "language": "en_US", "category": "marketing",
        "components": [{"type": "BODY", "text": "Hi {{1}}, the sale starts today.",
            "example": {"body_text": [["Ana"]]}}]});
    let (status, v) = c.api(&node, "POST", "/v1/templates", Some(template)).await;
    assert_eq!(status, 201, "{v}");
    let mut csv = String::from(
        "phone,name,tags,consent_marketing,consent_source,consent_captured_at,consent_text\n",
    );
    for i in 0..RECIPIENTS {
        csv.push_str(&format!(
            "{},Person {i},promo,yes,web form,2026-11-01T10:00:00Z,Send me offers\n",
            phone(i)
        ));
    }
    let res = c
        .http
        .post(format!("{}/v1/contacts/imports", node.base()))
        .bearer_auth(&c.key)
        .header("content-type", "text/csv")
        .header("idempotency-key", "crash-list")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (_, segment) = c
        .api(
            &node,
            "POST",
            "/v1/segments",
            Some(json!({"name": "Promo", "filter": {"tags": ["promo"]}})),
        )
        .await;
    let (status, campaign) = c
        .api(
            &node,
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "Sale", "segment_id": segment["id"],
                "template": {"name": "promo", "language": "en_US"},
                "parameters": {"body": [{"field": "name"}]}})),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, pre) = c
            .api(&node, "GET", &format!("/v1/campaigns/{id}/preflight"), None)
            .await;
        if pre["ready"] == true {
            assert_eq!(pre["eligible"], RECIPIENTS as u64);
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {pre}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, v) = c
        .api(
            &node,
            "POST",
            &format!("/v1/campaigns/{id}/start"),
            Some(json!({"confirm_eligible": RECIPIENTS})),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    let mut kills = Vec::new();
    for threshold in [60, 200] {
        wait_accepted(&c.http, &sb, threshold).await;
        node.kill9();
        kills.push(accepted_count(&c.http, &sb).await);
        node.start(&c).await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = loop {
        let (_, v) = c
            .api(&node, "GET", &format!("/v1/campaigns/{id}"), None)
            .await;
        if v["status"] == "completed" {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "never completed: {v}\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Anything still to come (a late resend) would come within a poll or two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log: Value = c
        .http
        .get(format!("{}/_sandbox/log?limit=100000", sb.base_url()))
        .bearer_auth(sb.control_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut per_phone: BTreeMap<String, usize> = BTreeMap::new();
    for s in log["sends"].as_array().unwrap() {
        if matches!(s["outcome"].as_str(), Some("accepted" | "response_lost")) {
            *per_phone
                .entry(s["to"].as_str().unwrap().trim_start_matches('+').to_owned())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = per_phone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        per_phone.len(),
        RECIPIENTS,
        "every recipient was sent: {done}"
    );
    assert!(
        kills.iter().all(|k| *k < RECIPIENTS),
        "each kill hit mid-campaign: {kills:?}"
    );
    assert_eq!(done["counters"]["sent"], RECIPIENTS as u64, "{done}");
    eprintln!(
        "{backend:?}: campaign of {RECIPIENTS}; kills after {kills:?} provider sends; completed in {:?}",
        started.elapsed()
    );
}

on_both_backends!(campaign_sends_each_recipient_once_across_kill_9);
