//! Several nodes on one PostgreSQL database sending for one number (issues
//! #6 and #25): only the node holding the channel's lease sends, the
//! number's limit holds at the provider across nodes and handovers (sends go
//! through a proxy that adds network jitter), and a node killed with `kill -9`
//! is replaced by a survivor, or restarted under its own identity, without
//! losing or repeating a message.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// Short enough that a survivor takes a dead node's channel within seconds.
const LEASE_SECS: u64 = 4;

/// The most sends that fall in any window of `window_ms` milliseconds.
fn busiest_window(times: &[u64], window_ms: u64) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// A proxy in front of the sandbox that holds each chunk a node sends for a
/// random 0 to `max_ms` ms before passing it on: network jitter between a
/// send's start and its arrival, as the outside crash runs saw through a proxy
/// (a burst spread over ~116 ms). Answers pass straight back.
async fn jitter_proxy(target_port: u16, max_ms: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seed = Arc::new(Mutex::new(now_ms() | 1));
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(out) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await else {
                continue;
            };
            let (mut in_read, mut in_write) = inbound.into_split();
            let (mut out_read, mut out_write) = out.into_split();
            let seed = seed.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = in_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let delay = {
                        // xorshift: no dependency for a test's randomness.
                        let mut x = seed.lock().unwrap();
                        *x ^= *x << 13;
                        *x ^= *x >> 7;
                        *x ^= *x << 17;
                        *x % (max_ms + 1)
                    };
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    if out_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = out_write.shutdown().await;
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                let _ = in_write.shutdown().await;
            });
        }
    });
    port
}

/// A load balancer in front of the nodes: each connection goes to the first
/// node that accepts it (so a dead node's share goes to the living).
async fn balancer(ports: Vec<u16>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let ports = ports.clone();
            tokio::spawn(async move {
                for p in ports {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", p)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The node that took the channel's lease last and has not lost it since
/// (from the logs: a slow renewal under load may already have moved it).
fn lease_holder(nodes: &[Node]) -> usize {
    let mut holders: Vec<(String, usize)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        // The last time (RFC 3339, from the log) the node took or lost the lease.
        let last = node.logs().lines().rev().find_map(|l| {
            let took = l.contains("took the channel's sending lease");
            if !took && !l.contains("lost the channel's sending lease") {
                return None;
            }
            let v: Value = serde_json::from_str(l).ok()?;
            Some((v["timestamp"].as_str()?.to_owned(), took))
        });
        if let Some((at, true)) = last {
            holders.push((at, i));
        }
    }
    let latest = holders.iter().max().unwrap_or_else(|| {
        let lines: Vec<_> = nodes.iter().map(Node::lease_lines).collect();
        panic!("nobody holds the lease:\n{}", lines.join("\n"))
    });
    latest.1
}

/// Nodes on one fresh PostgreSQL database, sending for one number.
struct SharedNumber {
    c: Arc<Cluster>,
    nodes: Vec<Node>,
    channel: String,
    sb: RunningSandbox,
}

/// Starts a node per name (with `identified`, each under its own
/// `WAYPOST_NODE_ID`; otherwise a new identity per start), and one channel
/// limited to `limit` messages per second whose provider, the sandbox, is
/// reached through the jitter proxy and sends its status webhooks through
/// the balancer; every recipient's window is open.
async fn postgres_nodes_sharing_a_number(
    names: &[&'static str],
    identified: bool,
    limit: u32,
) -> Option<SharedNumber> {
    let c = Cluster::new(
        Backend::Postgres,
        &[
            ("WAYPOST_DISPATCH_LEASE_SECS", &LEASE_SECS.to_string()),
            ("WAYPOST_DISPATCH_RECONCILE_SECS", "6"),
            // No jitter margin beyond the default: on two busy cores a send can reach
            // the sandbox tens of ms after it started (CI once saw 21 arrivals in 1 s
            // when the window counted from starts); the window now holds each send's
            // place until a window after it finished, so the limit holds at the
            // sandbox whatever the latency.
        ],
    )
    .await?;
    let c = Arc::new(c);
    let mut nodes: Vec<Node> = names
        .iter()
        .map(|name| match identified {
            true => Node::identified(&c, name),
            false => Node::new(&c, name),
        })
        .collect();
    for n in nodes.iter_mut() {
        n.start(&c).await;
    }
    let sandbox_port = free_port();
    // Sends reach the provider 0 to 120 ms after they start, at random: a window
    // counted from starts let 21 (and 57 against 50) land in one second.
    let jittery = jitter_proxy(sandbox_port, 120).await;
    let channel = c.channel(&nodes[0], jittery, limit).await;
    let front = balancer(nodes.iter().map(|n| n.port).collect()).await;
    let sb = sandbox(sandbox_port, front, &channel, |sc| {
        // The provider would take far more: only Waypost holds the line.
        sc.numbers[0].throughput = 1000;
    })
    .await;
    open_windows(&c, &nodes[nodes.len() - 1], &sb).await;
    Some(SharedNumber {
        c,
        nodes,
        channel,
        sb,
    })
}

/// Waits (asking `living`) until every id is `sent` or later, then checks the
/// provider's record: each id arrived exactly once, and no 1 s window saw
/// more than `limit` arrivals. Returns the arrival times (ms) and the
/// busiest second's count.
async fn settled_within_limit(
    s: &SharedNumber,
    living: &Node,
    ids: &[String],
    limit: u32,
    within: Duration,
) -> (Vec<u64>, usize) {
    s.c.wait_all(living, ids, &["sent", "delivered", "read"], within)
        .await;
    // Anything still to come (a late resend) would come within a poll or two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = sandbox_sends(&s.c.http, &s.sb).await;
    assert_exactly_once(&sends, ids);
    let times: Vec<u64> = sends
        .iter()
        .filter(|s| s.accepted)
        .map(|s| s.at_ms)
        .collect();
    let busiest = busiest_window(&times, 1000);
    assert!(
        busiest <= limit as usize,
        "{busiest} sends in one second (limit {limit})"
    );
    (times, busiest)
}

/// Two nodes on one PostgreSQL database, one number limited to 20 messages
/// per second, 160 messages accepted through both nodes, sent through a proxy
/// that delays each by up to 120 ms. Only the node
/// holding the channel's lease sends; it is killed mid-way, and the other
/// takes the channel over once the lease expires and sends the rest. The
/// provider's own arrival times show the limit held in every 1 s window
/// across both nodes and the handover, and each message went once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_share_a_numbers_limit_and_take_over_from_a_dead_one() {
    let started = Instant::now();
    let (limit, total) = (20, 160);
    let Some(mut s) = postgres_nodes_sharing_a_number(&["node-a", "node-b"], false, limit).await
    else {
        return;
    };
    let bases = s.nodes.iter().map(Node::base).collect();
    let ids = s.c.send(bases, &s.channel, total).await;
    wait_accepted(&s.c.http, &s.sb, 50).await;
    let holder = lease_holder(&s.nodes);
    let survivor = 1 - holder;
    let taken_before = s.nodes[survivor].took_lease();
    s.nodes[holder].kill9();
    let killed_ms = now_ms();
    let at_kill = accepted_count(&s.c.http, &s.sb).await;
    assert!(at_kill < total, "the kill came too late: {at_kill}");

    let living = &s.nodes[survivor];
    let (times, busiest) =
        settled_within_limit(&s, living, &ids, limit, Duration::from_secs(40)).await;
    assert_eq!(
        living.took_lease(),
        taken_before + 1,
        "the survivor took the channel over:\n{}",
        living.lease_lines()
    );
    let after: Vec<u64> = times.iter().copied().filter(|t| *t > killed_ms).collect();
    assert!(
        after.len() >= total - at_kill,
        "the survivor sent the rest: {} after the kill",
        after.len()
    );
    // The dead node's lease had to expire first. How long after the kill that
    // was depends on when it last renewed, which a starved machine delays
    // (one CI run saw 2,144 ms against a nominal 2,667), so the time is
    // reported, not bounded here; two senders at once would show in the
    // busiest second and in the exactly-once check above. The dead node's sends
    // the proxy still held arrive up to ~120 ms after the kill (a run reported
    // 44 ms as the survivor's first send); the survivor's come seconds later.
    let first_after = after
        .iter()
        .filter(|t| **t > killed_ms + 500)
        .min()
        .expect("the survivor sent")
        - killed_ms;
    assert!(
        first_after <= LEASE_SECS * 1000 + 15_000,
        "the survivor took {first_after} ms to send after the kill"
    );
    let handovers = s.nodes.iter().map(Node::took_lease).sum::<usize>() - 1;
    eprintln!(
        "{total} messages at {limit}/s: busiest second {busiest}; {at_kill} sent before the kill of {}, \
         {handovers} lease handovers, the survivor's first send {first_after} ms after the kill; done in {:?}",
        s.nodes[holder].name,
        started.elapsed()
    );
}

/// One batch of the load as it finished: when it began (ms), and its ids.
type Batch = (u64, Vec<String>);

/// Chaos with three nodes (issue #25; `bench/chaos.sh`): three nodes, each
/// under its own node id, on one PostgreSQL database; one number limited to
/// 20 messages per second, sent through the jitter proxy; a continuous load
/// accepted through all three, a request without an answer retried on the
/// next node under the same key. The node holding the channel's lease is
/// killed; once a survivor has taken the channel over, the dead one restarts
/// under the same id and takes load again. In the end every accepted message
/// reached the provider exactly once, none is stuck, and no 1 s window at the
/// provider saw more than the limit, across the kill, the handover and the
/// restart. Nothing is bounded in time but generous waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_postgres_nodes_keep_a_numbers_limit_across_a_kill_and_restart() {
    let started = Instant::now();
    let limit = 20;
    let Some(mut s) =
        postgres_nodes_sharing_a_number(&["alpha", "beta", "gamma"], true, limit).await
    else {
        return;
    };
    let batches: Arc<Mutex<Vec<Batch>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let bases: Vec<String> = s.nodes.iter().map(Node::base).collect();
        let (c, channel, batches, stop) = (
            s.c.clone(),
            s.channel.clone(),
            batches.clone(),
            stop.clone(),
        );
        async move {
            while !stop.load(Ordering::Relaxed) {
                let began = now_ms();
                let ids = c.send(bases.clone(), &channel, limit as usize).await;
                batches.lock().unwrap().push((began, ids));
                // About the limit's rate: the limiter stays busy, the backlog small.
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
    });
    wait_accepted(&s.c.http, &s.sb, 2 * limit as usize).await;
    let holder = lease_holder(&s.nodes);
    let taken_before: Vec<usize> = s.nodes.iter().map(Node::took_lease).collect();
    s.nodes[holder].kill9();
    let killed = Instant::now();
    let at_kill = accepted_count(&s.c.http, &s.sb).await;

    // A survivor takes the channel once the dead node's lease has run out.
    let deadline = killed + Duration::from_secs(LEASE_SECS + 60);
    let taker = loop {
        let took =
            (0..s.nodes.len()).find(|&i| i != holder && s.nodes[i].took_lease() > taken_before[i]);
        if let Some(i) = took {
            break i;
        }
        let lines: Vec<_> = s.nodes.iter().map(Node::lease_lines).collect();
        assert!(
            Instant::now() < deadline,
            "no survivor took the channel over:\n{}",
            lines.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let takeover = killed.elapsed();

    s.nodes[holder].start(&s.c).await;
    let restarted_ms = now_ms();
    let restart = killed.elapsed();
    // More batches accepted (through all three nodes) after the restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    while batches
        .lock()
        .unwrap()
        .iter()
        .filter(|(began, _)| *began > restarted_ms)
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the load stalled after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let batches = std::mem::take(&mut *batches.lock().unwrap());
    let after_restart: Vec<String> = batches
        .iter()
        .filter(|(began, _)| *began > restarted_ms)
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    let ids: Vec<String> = batches.into_iter().flat_map(|(_, ids)| ids).collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "one message per idempotency key");

    let (times, busiest) =
        settled_within_limit(&s, &s.nodes[taker], &ids, limit, Duration::from_secs(120)).await;
    let sent_after_restart = times.iter().filter(|t| **t > restarted_ms).count();
    assert!(
        sent_after_restart >= after_restart.len(),
        "{sent_after_restart} sends after the restart, {} accepted",
        after_restart.len()
    );
    let handovers = s.nodes.iter().map(Node::took_lease).sum::<usize>() - 1;
    eprintln!(
        "chaos three PostgreSQL nodes: {} messages at {limit}/s accepted through 3 nodes; {} (lease holder) killed \
         after {at_kill} sends, {} took the channel {} ms after the kill, {} restarted under its id at {} ms and \
         {} more accepted; busiest second {busiest} (limit {limit}); each sent exactly once, none stuck; \
         {handovers} lease handovers; {:?} in all",
        ids.len(),
        s.nodes[holder].name,
        s.nodes[taker].name,
        takeover.as_millis(),
        s.nodes[holder].name,
        restart.as_millis(),
        after_restart.len(),
        started.elapsed()
    );
}
