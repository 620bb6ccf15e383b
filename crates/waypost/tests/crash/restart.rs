//! Sending resumes within seconds of a restart after `kill -9` (issue #25,
//! item 11; the goal is 5 s), though the dead process's leases run 30 s: on SQLite the restarted process
//! holds the database's dispatch lock and on PostgreSQL it restarts under the
//! same `WAYPOST_NODE_ID`, so either may take its predecessor's leases at once.
//! A second live process with the same identity waits instead of sending
//! beside the first, and takes over when the first is killed.

use super::*;

/// The first provider send after `since_ms`, in ms after it.
async fn first_send_after(http: &reqwest::Client, sb: &RunningSandbox, since_ms: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let sends = sandbox_sends(http, sb).await;
        if let Some(at) = sends
            .iter()
            .map(|s| s.at_ms)
            .filter(|at| *at > since_ms)
            .min()
        {
            return at - since_ms;
        }
        assert!(Instant::now() < deadline, "nothing sent after the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sending_resumes_within_five_seconds_of_a_restart(backend: Backend) {
    let env = [
        ("WAYPOST_DISPATCH_LEASE_SECS", "30"),
        ("WAYPOST_DISPATCH_RECONCILE_SECS", "15"),
        ("WAYPOST_NODE_ID", "alpha"),
    ];
    let Some(OneNode {
        c,
        mut node,
        channel,
        sb,
    }) = one_node_sending(backend, &env, 40, |sc| {
        sc.faults.latency = 1.0;
        sc.faults.latency_ms = 300;
    })
    .await
    else {
        return;
    };

    let total = 200;
    let sending = tokio::spawn({
        let (c, bases, channel) = (c.clone(), vec![node.base()], channel.clone());
        async move { c.send(bases, &channel, total).await }
    });
    wait_accepted(&c.http, &sb, 30).await;
    node.kill9();
    let restarted = now_ms();
    node.start(&c).await;
    let resumed = first_send_after(&c.http, &sb, restarted).await;
    // The goal is 5 s on a quiet machine (the figure is printed); a loaded CI
    // machine may take seconds just to start a debug build. Without the
    // takeover the first send would wait for the 30 s leases.
    assert!(
        resumed <= 10_000,
        "{backend:?}: first send {resumed} ms after the restart (at {restarted} ms):\n{}",
        node.logs()
            .lines()
            .filter(|l| !l.contains("slow statement"))
            .map(|l| l.chars().take(400).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );

    let ids = sending.await.unwrap();
    c.wait_all(
        &node,
        &ids,
        &["sent", "delivered", "read"],
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly_once(&sandbox_sends(&c.http, &sb).await, &ids);
    eprintln!("{backend:?}: sending resumed {resumed} ms after the restart (leases of 30 s)");
}

/// Two live processes never send under one identity (SQLite: for one
/// database; PostgreSQL: under one node name): the second waits, and takes
/// over within seconds of the first's death (well before its 30 s leases end).
async fn a_second_process_with_a_node_id_in_use_waits_for_the_first(backend: Backend) {
    let Some(c) = Cluster::new(
        backend,
        &[
            ("WAYPOST_DISPATCH_LEASE_SECS", "30"),
            ("WAYPOST_NODE_ID", "alpha"),
        ],
    )
    .await
    else {
        return;
    };
    let c = Arc::new(c);
    let mut first = Node::new(&c, "first");
    first.start(&c).await;
    let sandbox_port = free_port();
    let channel = c.channel(&first, sandbox_port, 40).await;
    let _sb = sandbox(sandbox_port, first.port, &channel, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.took_lease() == 0 {
        assert!(
            Instant::now() < deadline,
            "first never sent:\n{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut second = Node::new(&c, "second");
    second.start(&c).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !second.logs().contains("waiting until it ends") {
        assert!(
            Instant::now() < deadline,
            "second never waited:\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(second.took_lease(), 0, "{}", second.lease_lines());
    first.kill9();
    let killed = Instant::now();
    while second.took_lease() == 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "second did not take over within 10 s:\n{}",
            second.lease_lines()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("second took over {:?} after the kill", killed.elapsed());
}

on_both_backends!(
    sending_resumes_within_five_seconds_of_a_restart,
    a_second_process_with_a_node_id_in_use_waits_for_the_first,
);
