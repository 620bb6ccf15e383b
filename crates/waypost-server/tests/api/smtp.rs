//! A real SMTP server process for the mail tests: `tests/smtp_sink.py`
//! (Python's aiosmtpd) writes every message it receives as JSON into a temp
//! directory, which the tests read. The Python comes from
//! `WAYPOST_TEST_SMTP_PYTHON` (set by `.ci/run`), else `python3`; without
//! aiosmtpd the mail tests skip, except under CI, where they fail.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncBufReadExt;

#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Received {
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    /// Killed on drop.
    _child: tokio::process::Child,
}

fn python() -> Option<String> {
    let python = std::env::var("WAYPOST_TEST_SMTP_PYTHON").unwrap_or_else(|_| "python3".into());
    let works = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(python);
    }
    if std::env::var("CI").is_ok() || std::env::var("WAYPOST_TEST_SMTP_PYTHON").is_ok() {
        panic!(
            "{python} cannot import aiosmtpd (.ci/run installs it and sets WAYPOST_TEST_SMTP_PYTHON)"
        );
    }
    eprintln!("skipping a mail test: no Python with aiosmtpd (set WAYPOST_TEST_SMTP_PYTHON)");
    None
}

/// A port nothing listens on right now, below Linux's ephemeral range (32768+)
/// so no other test's listener on port 0 can be given it meanwhile.
pub fn free_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    (0..1000u32)
        .map(|i| 20_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 12_000) as u16)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below 32000")
}

/// Whether a mail test can run here (and, under CI, that it must).
pub fn available() -> bool {
    python().is_some()
}

impl SmtpSink {
    pub async fn start() -> Option<Self> {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Option<Self> {
        let python = python()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP sink starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink is ready in time")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        Some(Self {
            port,
            dir,
            _child: child,
        })
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits until `n` messages have arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} mails, got {}: {:?}",
                got.len(),
                got.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The newest message to `to`, waiting for it.
    pub async fn wait_for_mail_to(&self, to: &str, subject_has: &str) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(m) = self
                .received()
                .into_iter()
                .rev()
                .find(|m| m.rcpt_tos.iter().any(|r| r == to) && m.subject.contains(subject_has))
            {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail to {to} about {subject_has:?}; got {:?}",
                self.received()
                    .iter()
                    .map(|m| &m.subject)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn url_for(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

/// Configures a test app to mail through `port`, retrying quickly.
pub fn mail_config(port: u16) -> impl FnOnce(&mut waypost_server::Config) {
    move |c| {
        c.smtp_url = Some(url_for(port).into());
        c.mail_from = Some("Waypost <noreply@waypost.test>".into());
        c.mail_poll_ms = 50;
        c.mail_retry_base_ms = 200;
    }
}

/// The one-time link in a mail's text (the first `http…` token).
pub fn link_in(mail: &Received) -> String {
    mail.text()
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .expect("a link in the mail")
        .to_owned()
}

/// The `token` query parameter of a link.
pub fn token_of(link: &str) -> String {
    url::Url::parse(link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .expect("a token in the link")
}
