//! Crash safety of the real `waypost` binary under `kill -9` (SIGKILL):
//! every accepted message reaches the provider exactly once across kills
//! and restarts (issue #6), customer webhooks pending or in flight at the
//! kill are delivered at least once under one `webhook-id` (issue #7),
//! nodes on one PostgreSQL database keep a number under its throughput
//! limit, a survivor taking the channel over when the holder dies (#6, #25,
//! `crash/nodes.rs`), a campaign sends each recipient once across kills (#19,
//! `crash/campaign.rs`), sending resumes soon after a restart and survives
//! random kills under load (#25, `crash/restart.rs`, `crash/chaos.rs`), and
//! usage is billed to Stripe once per period across kills (#23, `crash/billing.rs`).
//!
//! The sandbox runs in the test process and logs every send it accepted,
//! with `biz_opaque_callback_data` (our message id) and its arrival time;
//! the servers are child processes on ports picked up front, so a restarted
//! server is found where the sandbox sends its status webhooks.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use waypost_sandbox::{NumberConfig, RunningSandbox, Sandbox, SandboxConfig};
use waypost_store::Backend;
use waypost_store::testing::TestDatabase;

/// Recipients (each writes first, opening the 24 h window).
const USERS: usize = 20;
const SCOPES: &str = "messages:send,messages:read,channels:manage,webhooks:manage,contacts:write,templates:write,campaigns:manage";

/// Leases that move soon after a kill, and in-doubt sends settled well
/// inside a test's wait (not after the 300 s default).
const SHORT_LEASES: [(&str, &str); 2] = [
    ("WAYPOST_DISPATCH_LEASE_SECS", "2"),
    ("WAYPOST_DISPATCH_RECONCILE_SECS", "15"),
];

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn user(i: usize) -> String {
    format!("4915112345{i:03}")
}

/// One database and one working directory (holding the master key file)
/// shared by every process of a test, and the environment they all get.
struct Cluster {
    dir: tempfile::TempDir,
    /// Dropped (PostgreSQL: the database with it) when the test ends.
    _db: TestDatabase,
    env: Vec<(String, String)>,
    http: reqwest::Client,
    key: String,
}

impl Cluster {
    async fn new(backend: Backend, env: &[(&str, &str)]) -> Option<Self> {
        let db = TestDatabase::create(backend).await?;
        let mut all: Vec<(String, String)> = [
            ("WAYPOST_DATABASE_URL", db.url.as_str()),
            ("WAYPOST_RATE_LIMIT_API_KEY_PER_MINUTE", "1000000"),
            ("WAYPOST_RATE_LIMIT_IP_PER_MINUTE", "1000000"),
            ("WAYPOST_CHANNEL_ALLOW_PRIVATE_TARGETS", "true"),
            ("WAYPOST_MAX_CONNECTIONS_PER_IP", "100000"),
            ("WAYPOST_DISPATCH_POLL_MS", "20"),
            ("WAYPOST_DISPATCH_REQUEST_TIMEOUT_SECS", "5"),
            ("WAYPOST_DISPATCH_RETRY_BASE_MS", "200"),
            ("WAYPOST_DISPATCH_RETRY_MAX_SECS", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut c = Self {
            dir: tempfile::tempdir().unwrap(),
            _db: db,
            env: all,
            http: reqwest::Client::new(),
            key: String::new(),
        };
        c.key = c.bootstrap();
        Some(c)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_waypost"));
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// A workspace, its owner and an API key, through the CLI.
    fn bootstrap(&self) -> String {
        use std::io::Write;
        let mut boot = self
            .command()
            .args([
                "admin",
                "bootstrap",
                "--email",
                "ops@example.com",
                "--workspace",
                "Acme",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        boot.stdin
            .take()
            .unwrap()
            .write_all(b"silver-otter-meadow-4417\n")
            .unwrap();
        let out = boot.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self
            .command()
            .args(["admin", "api-key", "create", "--workspace", "Acme"])
            .args(["--scopes", SCOPES])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    async fn api(
        &self,
        node: &Node,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", node.base()))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A sandbox channel whose provider will listen on `sandbox_port`; returns its id.
    async fn channel(&self, node: &Node, sandbox_port: u16, mps: u32) -> String {
        let n = NumberConfig::default();
        let (status, v) = self
            .api(
                node,
                "POST",
                "/v1/channels",
                Some(json!({
                    "name": "Sandbox", "provider": "sandbox",
                    "phone_number_id": n.id, "waba_id": n.waba_id,
                    "access_token": n.access_token, "app_secret": n.app_secret,
                    "verify_token": n.verify_token,
                    "base_url": format!("http://127.0.0.1:{sandbox_port}"),
                    "api_version": "v21.0", "throughput_mps": mps,
                })),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Accepts `count` texts spread over the recipients, alternating between
    /// the nodes at `bases`. Like a careful client, it retries a request that
    /// got no answer (the node was killed) with the same `Idempotency-Key`,
    /// on the next node; every message must end `202`. Returns the message ids.
    async fn send(
        self: &Arc<Self>,
        bases: Vec<String>,
        channel: &str,
        count: usize,
    ) -> Vec<String> {
        let mut set = tokio::task::JoinSet::new();
        let run = now_ms();
        for worker in 0..8 {
            let (c, bases, channel) = (self.clone(), bases.clone(), channel.to_owned());
            set.spawn(async move {
                let mut ids = Vec::new();
                for i in (worker..count).step_by(8) {
                    let deadline = Instant::now() + Duration::from_secs(40);
                    let body = json!({"channel_id": channel, "to": format!("+{}", user(i % USERS)),
                        "type": "text", "text": {"body": format!("Your order {i} has shipped.")}});
                    let mut attempt = 0;
                    let id = loop {
                        let base = &bases[(i + attempt) % bases.len()];
                        attempt += 1;
                        let res = c
                            .http
                            .post(format!("{base}/v1/messages"))
                            .bearer_auth(&c.key)
                            .header("idempotency-key", format!("crash-{run}-{i}"))
                            .json(&body)
                            .send()
                            .await;
                        let answer = match res {
                            Ok(r) => Some((r.status().as_u16(), r.json::<Value>().await)),
                            Err(_) => None,
                        };
                        match answer {
                            Some((202, Ok(v))) => break v["id"].as_str().unwrap().to_owned(),
                            Some((status, v)) if status < 500 => {
                                panic!("message {i}: {status} {v:?}")
                            }
                            _ => {}
                        }
                        assert!(Instant::now() < deadline, "message {i} never accepted");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    };
                    ids.push(id);
                }
                ids
            });
        }
        let mut ids = Vec::new();
        while let Some(part) = set.join_next().await {
            ids.extend(part.unwrap());
        }
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), count, "one message per idempotency key");
        ids
    }

    /// Every outbound message's status, read through the API page by page.
    async fn statuses(&self, node: &Node) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut after = String::new();
        loop {
            let (status, page) = self
                .api(
                    node,
                    "GET",
                    &format!("/v1/messages?direction=outbound&limit=500{after}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            for m in page["data"].as_array().unwrap() {
                out.insert(
                    m["id"].as_str().unwrap().to_owned(),
                    m["status"].as_str().unwrap().to_owned(),
                );
            }
            match page["next_cursor"].as_str() {
                Some(c) => after = format!("&after={c}"),
                None => return out,
            }
        }
    }

    /// Waits until every message in `ids` has one of the `wanted` statuses.
    async fn wait_all(&self, node: &Node, ids: &[String], wanted: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let statuses = self.statuses(node).await;
            let open: Vec<_> = ids
                .iter()
                .filter(|id| {
                    !statuses
                        .get(*id)
                        .is_some_and(|s| wanted.contains(&s.as_str()))
                })
                .collect();
            if open.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let sample: Vec<_> = open
                    .iter()
                    .take(5)
                    .map(|id| (id, statuses.get(*id)))
                    .collect();
                panic!(
                    "{} messages never reached {wanted:?}, e.g. {sample:?}",
                    open.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A message's status history, oldest first.
    async fn history(&self, node: &Node, id: &str) -> Vec<String> {
        let (status, v) = self
            .api(node, "GET", &format!("/v1/messages/{id}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A `waypost serve` child process on a fixed port; restartable.
struct Node {
    name: &'static str,
    /// `WAYPOST_NODE_ID`, kept across restarts (unset: a new identity per start).
    node_id: Option<&'static str>,
    port: u16,
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Node {
    fn new(c: &Cluster, name: &'static str) -> Self {
        Self {
            name,
            node_id: None,
            port: free_port(),
            child: None,
            log: c.dir.path().join(format!("{name}.log")),
        }
    }

    /// A node whose `WAYPOST_NODE_ID` is its name.
    fn identified(c: &Cluster, name: &'static str) -> Self {
        let mut node = Self::new(c, name);
        node.node_id = Some(name);
        node
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the node (appending to its log) and waits for `/readyz`.
    async fn start(&mut self, c: &Cluster) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = c.command();
        if let Some(id) = self.node_id {
            cmd.env("WAYPOST_NODE_ID", id);
        }
        let child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = c
                .http
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never ready:\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no drain, no lease release.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let status = child.wait().unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "{} died of SIGKILL", self.name);
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The node's log lines about channel leases and slow statements.
    fn lease_lines(&self) -> String {
        self.logs()
            .lines()
            .filter(|l| l.contains("lease") || l.contains("slow statement"))
            .map(|l| l.chars().take(300).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn took_lease(&self) -> usize {
        self.logs()
            .matches("took the channel's sending lease")
            .count()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The in-process sandbox, its status webhooks aimed at `server_port`.
async fn sandbox(
    sandbox_port: u16,
    server_port: u16,
    channel: &str,
    change: impl FnOnce(&mut SandboxConfig),
) -> RunningSandbox {
    let mut sc = SandboxConfig {
        listen: ([127, 0, 0, 1], sandbox_port).into(),
        ..SandboxConfig::default()
    };
    sc.numbers[0].webhook_url = Some(format!(
        "http://127.0.0.1:{server_port}/webhooks/whatsapp/{channel}"
    ));
    // Like Meta, keep retrying webhooks while the server is down (up to ~50 s here).
    sc.webhooks.retry_base_ms = 100;
    // Retries keep coming every second while a node restarts, however long that
    // takes on a loaded machine (doubling alone waits 25 s after a 12 s outage).
    sc.webhooks.retry_max_ms = 1_000;
    sc.webhooks.max_attempts = 60;
    change(&mut sc);
    Sandbox::start(sc).await.expect("sandbox starts")
}

/// One send the sandbox received.
#[derive(Debug)]
struct Send {
    message_id: String,
    accepted: bool,
    code: Option<i64>,
    at_ms: u64,
}

async fn sandbox_sends(http: &reqwest::Client, sb: &RunningSandbox) -> Vec<Send> {
    let log: Value = http
        .get(format!("{}/_sandbox/log?limit=100000", sb.base_url()))
        .bearer_auth(sb.control_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log["sends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Send {
            message_id: s["biz_opaque_callback_data"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            accepted: matches!(s["outcome"].as_str(), Some("accepted" | "response_lost")),
            code: s["code"].as_i64(),
            at_ms: s["received_at_ms"].as_u64().unwrap(),
        })
        .collect()
}

async fn accepted_count(http: &reqwest::Client, sb: &RunningSandbox) -> usize {
    sandbox_sends(http, sb)
        .await
        .iter()
        .filter(|s| s.accepted)
        .count()
}

async fn wait_accepted(http: &reqwest::Client, sb: &RunningSandbox, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = accepted_count(http, sb).await;
        if got >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "the provider got {got} of {n} sends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each recipient writes to the business number; waits until all are stored.
async fn open_windows(c: &Cluster, node: &Node, sb: &RunningSandbox) {
    for i in 0..USERS {
        let res = c
            .http
            .post(format!("{}/_sandbox/inbound", sb.base_url()))
            .bearer_auth(sb.control_token())
            .json(&json!({"from": user(i), "message": {"type": "text", "text": {"body": "hi"}}}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = c
            .api(
                node,
                "GET",
                "/v1/messages?direction=inbound&limit=500",
                None,
            )
            .await;
        if page["data"].as_array().is_some_and(|d| d.len() == USERS) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "inbound messages not stored: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One node sending for a sandbox number whose recipients have all written.
struct OneNode {
    c: Arc<Cluster>,
    node: Node,
    channel: String,
    sb: RunningSandbox,
}

/// The common start of the single-node kill tests: a cluster with `env`, one
/// node, a channel limited to `mps` messages per second, its sandbox (as
/// `change` sets it up, e.g. with slow answers) and the 24 h windows open.
async fn one_node_sending(
    backend: Backend,
    env: &[(&str, &str)],
    mps: u32,
    change: impl FnOnce(&mut SandboxConfig),
) -> Option<OneNode> {
    let c = Arc::new(Cluster::new(backend, env).await?);
    let mut node = Node::new(&c, "node");
    node.start(&c).await;
    let sandbox_port = free_port();
    let channel = c.channel(&node, sandbox_port, mps).await;
    let sb = sandbox(sandbox_port, node.port, &channel, change).await;
    open_windows(&c, &node, &sb).await;
    Some(OneNode {
        c,
        node,
        channel,
        sb,
    })
}

/// Every id reached the provider exactly once, and nothing else did.
fn assert_exactly_once(sends: &[Send], ids: &[String]) {
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sends.iter().filter(|s| s.accepted) {
        *per_id.entry(s.message_id.as_str()).or_default() += 1;
    }
    let lost: Vec<_> = ids
        .iter()
        .filter(|id| !per_id.contains_key(id.as_str()))
        .collect();
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        lost.is_empty(),
        "{} accepted messages never reached the provider: {lost:?}",
        lost.len()
    );
    assert!(
        twice.is_empty(),
        "{} messages reached the provider more than once: {twice:?}",
        twice.len()
    );
    assert_eq!(
        per_id.len(),
        ids.len(),
        "the provider got sends nobody accepted"
    );
    let throttled = sends.iter().filter(|s| s.code == Some(130429)).count();
    assert_eq!(throttled, 0, "the number's throughput limit was provoked");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(waypost_store::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(waypost_store::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    dispatch_sends_each_message_once_across_kill_9,
    webhook_deliveries_survive_kill_9_at_least_once,
);

/// The campaign sender under `kill -9` (issue #19).
#[path = "crash/campaign.rs"]
mod campaign;

/// Sending resumes at once after a restart (issue #25).
#[path = "crash/restart.rs"]
mod restart;

/// Random kills under a continuous load (issue #25; `bench/chaos.sh`).
#[path = "crash/chaos.rs"]
mod chaos;

/// Nodes sharing a number's limit, killed and restarted (issues #6, #25).
#[path = "crash/nodes.rs"]
mod nodes;

/// Usage reporting to Stripe under `kill -9` (issue #23).
#[path = "crash/billing.rs"]
mod billing;

/// 300 messages; the provider answers after up to 600 ms, so many sends are
/// in flight when the server is killed, twice; it restarts on the same
/// database and port. Sends the provider took but whose answer died with
/// the process are in doubt: the status webhooks carrying their id settle
/// them; the others go again after the reconciliation period.
async fn dispatch_sends_each_message_once_across_kill_9(backend: Backend) {
    let started = Instant::now();
    let Some(OneNode {
        c,
        mut node,
        channel,
        sb,
    }) = one_node_sending(backend, &SHORT_LEASES, 80, |sc| {
        sc.faults.latency = 1.0;
        sc.faults.latency_ms = 600;
    })
    .await
    else {
        return;
    };

    let total = 300;
    let sending = tokio::spawn({
        let (c, bases, channel) = (c.clone(), vec![node.base()], channel.clone());
        async move { c.send(bases, &channel, total).await }
    });
    let mut kills = Vec::new();
    for threshold in [40, 140] {
        wait_accepted(&c.http, &sb, threshold).await;
        node.kill9();
        kills.push((now_ms(), accepted_count(&c.http, &sb).await));
        node.start(&c).await;
    }
    let ids = sending.await.unwrap();
    c.wait_all(
        &node,
        &ids,
        &["sent", "delivered", "read"],
        Duration::from_secs(45),
    )
    .await;
    // Anything still to come (a late resend) would come within a poll or two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = sandbox_sends(&c.http, &sb).await;
    assert_exactly_once(&sends, &ids);
    // Sends that reached the provider within its longest answer time before
    // a kill: most of their answers died with the process.
    let in_flight: Vec<usize> = kills
        .iter()
        .map(|(at, _)| {
            sends
                .iter()
                .filter(|s| s.accepted && s.at_ms + 600 > *at && s.at_ms <= *at)
                .count()
        })
        .collect();
    for ((_, at_kill), cut) in kills.iter().zip(&in_flight) {
        assert!(
            *at_kill < total && *cut > 0,
            "each kill hit mid-dispatch: {kills:?} {in_flight:?}"
        );
    }
    assert_eq!(
        node.took_lease(),
        3,
        "one lease per start:\n{}",
        node.logs()
    );
    eprintln!(
        "{backend:?}: {total} messages; kills after {:?} provider sends, {in_flight:?} of them possibly in doubt; settled in {:?}",
        kills.iter().map(|k| k.1).collect::<Vec<_>>(),
        started.elapsed()
    );
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// Which arrival of this `webhook-id` it was (1-based).
    nth: usize,
    started: Instant,
    /// When the receiver's answer was ready, and whether it was 2xx.
    answered: Option<(Instant, bool)>,
}

/// A customer's webhook endpoint. Until [`Receiver::relent`] the first
/// arrival of each `webhook-id` is refused (503) and the second is answered
/// 200 after `hang` (so it is in flight for a while); afterwards, and for
/// later arrivals, 200 at once.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    hang: Duration,
    strict: Arc<std::sync::atomic::AtomicBool>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = header("webhook-id");
    let (index, nth) = {
        let mut got = r.got.lock().unwrap();
        let nth = got.iter().filter(|d| d.id == id).count() + 1;
        got.push(Delivery {
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            id,
            body,
            nth,
            started: Instant::now(),
            answered: None,
        });
        (got.len() - 1, nth)
    };
    let strict = r.strict.load(std::sync::atomic::Ordering::SeqCst);
    let ok = nth > 1 || !strict;
    if nth == 2 && strict {
        tokio::time::sleep(r.hang).await;
    }
    r.got.lock().unwrap()[index].answered = Some((Instant::now(), ok));
    if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    }
}

impl Receiver {
    async fn start(hang: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            url: format!(
                "http://127.0.0.1:{}/hook",
                listener.local_addr().unwrap().port()
            ),
            got: Default::default(),
            hang,
            strict: Arc::new(true.into()),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn relent(&self) {
        self.strict
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Requests whose answer is not ready yet.
    fn hanging(&self) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.answered.is_none())
            .count()
    }
}

/// `(type, message_id)` of a delivery's body.
fn event_key(d: &Delivery) -> (String, String) {
    let v: Value = serde_json::from_str(&d.body).unwrap();
    (
        v["type"].as_str().unwrap().to_owned(),
        v["data"]["message_id"].as_str().unwrap_or("").to_owned(),
    )
}

/// Message events go to a local endpoint that refuses each first attempt and
/// holds each second one open; the server is killed while second attempts
/// are in flight and retries are pending, then restarted. Every event must
/// be acknowledged by the receiver in the end (the ones cut by the kill are
/// delivered again once their lease expires), every request must verify,
/// and one event never arrives under two `webhook-id`s.
async fn webhook_deliveries_survive_kill_9_at_least_once(backend: Backend) {
    let started = Instant::now();
    let Some(c) = Cluster::new(
        backend,
        &[
            ("WAYPOST_WEBHOOK_ALLOW_HTTP", "true"),
            ("WAYPOST_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
            (
                "WAYPOST_WEBHOOK_RETRY_SCHEDULE_SECS",
                "[1, 1, 1, 1, 1, 1, 1, 1]",
            ),
            ("WAYPOST_WEBHOOK_RETRY_JITTER_PERCENT", "0"),
            // The lease on a delivery outlives the timeout (2 × timeout + 30 s).
            ("WAYPOST_WEBHOOK_TIMEOUT_SECS", "1"),
            ("WAYPOST_WEBHOOK_POLL_INTERVAL_MS", "50"),
            ("WAYPOST_DISPATCH_LEASE_SECS", "2"),
            // A send still in flight at the kill is in doubt; it is settled well
            // inside the wait below, not after the 300 s default.
            ("WAYPOST_DISPATCH_RECONCILE_SECS", "6"),
        ],
    )
    .await
    else {
        return;
    };
    let c = Arc::new(c);
    let mut node = Node::new(&c, "node");
    node.start(&c).await;
    let receiver = Receiver::start(Duration::from_millis(700)).await;
    let (status, endpoint) = c
        .api(
            &node,
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": receiver.url, "event_types": ["message.queued", "message.sent", "message.delivered", "message.read"]})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let sandbox_port = free_port();
    let channel = c.channel(&node, sandbox_port, 80).await;
    let sb = sandbox(sandbox_port, node.port, &channel, |_| {}).await;
    open_windows(&c, &node, &sb).await;

    let ids = c.send(vec![node.base()], &channel, 40).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.hanging() < 10 {
        assert!(Instant::now() < deadline, "second attempts never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{backend:?}: killing at {:?}", started.elapsed());
    node.kill9();
    let killed = Instant::now();
    let cut = receiver.hanging();
    receiver.relent();
    node.start(&c).await;

    // Every status change wrote its event in the same transaction: the
    // statuses in the history are the events to deliver. (A `delivered` the
    // provider retried past its `read` is rightly not applied, so not expected.)
    c.wait_all(&node, &ids, &["read"], Duration::from_secs(30))
        .await;
    let mut expected = BTreeSet::new();
    for id in &ids {
        for status in c.history(&node, id).await {
            if ["queued", "sent", "delivered", "read"].contains(&status.as_str()) {
                expected.insert((format!("message.{status}"), id.clone()));
            }
        }
    }
    assert!(expected.len() >= 3 * ids.len(), "{expected:?}");
    eprintln!("{backend:?}: all read at {:?}", started.elapsed());

    // Acknowledged: answered 2xx while the server was alive to read the answer.
    let acknowledged = |d: &Delivery| {
        d.answered
            .is_some_and(|(at, ok)| ok && (at < killed || d.started > killed))
    };
    let deadline = Instant::now() + Duration::from_secs(50);
    loop {
        let done: BTreeSet<_> = receiver
            .deliveries()
            .iter()
            .filter(|d| acknowledged(d))
            .map(event_key)
            .collect();
        let missing: Vec<_> = expected.difference(&done).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let first = missing[0];
            let tries: Vec<_> = receiver
                .deliveries()
                .into_iter()
                .filter(|d| &event_key(d) == first)
                .map(|d| {
                    let since = |t: Instant| {
                        t.saturating_duration_since(killed).as_millis() as i64
                            - killed.saturating_duration_since(t).as_millis() as i64
                    };
                    (
                        d.nth,
                        since(d.started),
                        d.answered.map(|(t, ok)| (since(t), ok)),
                    )
                })
                .collect();
            panic!(
                "{} events never acknowledged after the kill, e.g. {first:?}, tried (nth, ms from kill, answer): {tries:?}",
                missing.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let got = receiver.deliveries();
    let key = waypost_crypto::webhook::WebhookKey::parse(&secret).unwrap();
    let mut ids_of: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for d in &got {
        key.verify(&d.id, &d.timestamp, &d.signature, d.body.as_bytes(), None)
            .unwrap_or_else(|e| panic!("delivery {} does not verify: {e}", d.id));
        ids_of.entry(event_key(d)).or_default().insert(d.id.clone());
    }
    for (event, webhook_ids) in &ids_of {
        assert_eq!(webhook_ids.len(), 1, "{event:?} arrived under several ids");
    }
    let redelivered = got
        .iter()
        .filter(|d| d.started > killed && d.nth > 2)
        .count();
    let pending_at_kill = expected.len()
        - got
            .iter()
            .filter(|d| d.answered.is_some_and(|(at, ok)| ok && at < killed))
            .map(event_key)
            .collect::<BTreeSet<_>>()
            .len();
    assert!(
        cut >= 10 && redelivered >= cut,
        "cut {cut}, redelivered {redelivered}"
    );
    assert!(
        pending_at_kill > cut,
        "pending at the kill: {pending_at_kill}"
    );
    eprintln!(
        "{backend:?}: {} events, {pending_at_kill} unacknowledged at the kill ({cut} in flight), {} requests, settled in {:?}",
        expected.len(),
        got.len(),
        started.elapsed()
    );
}
