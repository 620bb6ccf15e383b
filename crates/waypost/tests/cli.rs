//! The real `waypost` binary: start-up failures, configuration, migrations,
//! keys, and a serve/SIGTERM cycle on a fresh data directory.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use waypost_store::Backend;
use waypost_store::testing::TestDatabase;

fn waypost(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_waypost"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("waypost runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Exactly one non-empty stderr line, which must mention `setting`.
fn assert_one_line_error(out: &Output, stderr: &str, setting: &str) {
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(setting),
        "{stderr}"
    );
}

#[test]
fn help_lists_every_subcommand_and_version_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, _) = run(waypost(dir.path()).arg("--help"));
    assert!(out.status.success());
    for sub in ["serve", "migrate", "config", "keys", "openapi", "contacts"] {
        assert!(stdout.contains(sub), "--help lacks {sub}: {stdout}");
    }
    let (out, stdout, _) = run(waypost(dir.path()).arg("--version"));
    assert!(out.status.success());
    assert_eq!(
        stdout.trim(),
        format!("waypost {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_database_scheme_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(waypost(dir.path())
        .arg("serve")
        .env("WAYPOST_DATABASE_URL", "mysql://x"));
    assert_one_line_error(&out, &stderr, "WAYPOST_DATABASE_URL");
    assert!(stderr.contains("mysql"));
}

#[test]
fn unreachable_database_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A free port, so only the database can be what fails.
    let (out, _, stderr) = run(waypost(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "WAYPOST_DATABASE_URL",
            "postgres://waypost:pw-9d1@127.0.0.1:1/none",
        ));
    assert_one_line_error(&out, &stderr, "WAYPOST_DATABASE_URL");
    assert!(!stderr.contains("pw-9d1"), "password leaked: {stderr}");
}

#[test]
fn malformed_master_key_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(waypost(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WAYPOST_MASTER_KEY", "c2hvcnQ="));
    assert_one_line_error(&out, &stderr, "WAYPOST_MASTER_KEY");
    assert!(
        !stderr.contains("c2hvcnQ="),
        "the key must not be echoed: {stderr}"
    );
}

#[test]
fn bad_settings_and_missing_config_files_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(waypost(dir.path())
        .arg("serve")
        .env("WAYPOST_BODY_LIMIT_BYTES", "lots"));
    assert_one_line_error(&out, &stderr, "WAYPOST_BODY_LIMIT_BYTES");
    let (out, _, stderr) = run(waypost(dir.path()).args(["--config", "absent.toml", "serve"]));
    assert_one_line_error(&out, &stderr, "absent.toml");
}

#[test]
fn config_show_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("waypost.toml"),
        "listen = \"127.0.0.1:9999\"\n",
    )
    .unwrap();
    let (out, stdout, stderr) = run(waypost(dir.path())
        .args(["config", "show"])
        .env(
            "WAYPOST_DATABASE_URL",
            "postgres://app:hunter2@db.internal/waypost",
        )
        .env(
            "WAYPOST_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("listen = 127.0.0.1:9999"),
        "the file is read: {stdout}"
    );
    assert!(
        stdout.contains("database_url = postgres://app:[redacted]@db.internal/waypost"),
        "{stdout}"
    );
    assert!(stdout.contains("master_key = [redacted]"), "{stdout}");
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("AAAAAAAA"),
        "{stdout}"
    );
}

#[test]
fn operator_tokens_are_shown_once_listed_by_prefix_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(waypost(dir.path()).arg("migrate")).0.status.success());
    let (out, stdout, stderr) =
        run(waypost(dir.path()).args(["admin", "operator-token", "create", "--name", "on-call"]));
    assert!(out.status.success(), "{stderr}");
    let token = stdout.trim();
    assert!(token.starts_with("wpo_") && token.len() == 42, "{stdout}");
    assert!(stderr.contains("shown once"), "{stderr}");

    let (out, stdout, _) = run(waypost(dir.path()).args(["admin", "operator-token", "list"]));
    assert!(out.status.success());
    assert!(
        stdout.contains(&token[..10]) && stdout.contains("on-call"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&token[10..]),
        "the list shows the token: {stdout}"
    );
    let id = stdout.split('\t').next().unwrap().to_owned();
    assert!(id.starts_with("opt_"), "{stdout}");

    let revoke = ["admin", "operator-token", "revoke", id.as_str()];
    let (out, _, stderr) = run(waypost(dir.path()).args(revoke));
    assert!(out.status.success(), "{stderr}");
    let (_, stdout, _) = run(waypost(dir.path()).args(["admin", "operator-token", "list"]));
    assert!(stdout.contains("revoked"), "{stdout}");
    let (out, _, stderr) = run(waypost(dir.path()).args(revoke));
    assert_one_line_error(&out, &stderr, "operator token");
}

#[test]
fn migrate_status_then_migrate_then_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(waypost(dir.path()).args(["migrate", "--status"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("pending"), "{stdout}");
    let (out, stdout, stderr) = run(waypost(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("is current"), "{stdout}");

    let (out, stdout, stderr) = run(waypost(dir.path()).args(["keys", "rotate"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("added data key v2"), "{stdout}");
    let (out, stdout, _) = run(waypost(dir.path()).args(["keys", "list"]));
    assert!(out.status.success());
    assert!(
        stdout.contains("data key v1") && stdout.contains("data key v2  (current"),
        "{stdout}"
    );
    let (out, stdout, stderr) = run(waypost(dir.path()).args(["keys", "reencrypt"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("on data key v2"), "{stdout}");

    // The key file now guards the database: another key is refused at start.
    let (out, _, stderr) = run(waypost(dir.path()).args(["keys", "list"]).env(
        "WAYPOST_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ));
    assert_one_line_error(&out, &stderr, "WAYPOST_MASTER_KEY");
}

#[test]
fn serve_on_a_fresh_directory_then_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    serve_then_sigterm(
        dir.path(),
        waypost(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]),
    );
    let data = dir.path().join("waypost-data");
    assert!(data.join("waypost.db").is_file());
}

#[tokio::test]
async fn serve_on_a_fresh_postgres_database_then_sigterm_exits_zero() {
    let Some(db) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = waypost(dir.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("WAYPOST_DATABASE_URL", &db.url);
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || serve_then_sigterm(&path, &mut cmd))
        .await
        .unwrap();
    assert!(
        !dir.path().join("waypost-data").join("waypost.db").exists(),
        "no SQLite file when PostgreSQL is used"
    );
}

/// Starts `serve`, checks the key file and `/readyz`, sends SIGTERM, expects exit 0.
fn serve_then_sigterm(dir: &std::path::Path, cmd: &mut Command) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        assert!(Instant::now() < deadline, "no `listening` line: {seen:?}");
        let line = lines.next().expect("log line").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).expect("logs are JSON lines");
        seen.push(line.clone());
        if event["message"] == "listening" {
            break event["address"].as_str().unwrap().to_owned();
        }
    };
    let backup_lines = seen
        .iter()
        .filter(|l| l.contains("back this file up"))
        .count();
    assert_eq!(
        backup_lines, 1,
        "one line tells the operator to back up the key: {seen:?}"
    );

    let key = dir.join("waypost-data").join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(key_text.trim().len(), 44, "32 bytes in base64");

    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
    let all = seen.join("\n") + &rest.join("\n");
    assert!(
        !all.contains(key_text.trim()),
        "the master key never appears in logs"
    );
}

/// One HTTP/1.1 exchange over a fresh connection; returns the raw answer.
fn http(address: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn secrets_never_reach_the_logs() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let password = "silver-otter-meadow-4417";
    let wrong = "wrong-guess-password-9";
    let mut bootstrap = waypost(dir.path())
        .args([
            "admin",
            "bootstrap",
            "--email",
            "ana@example.com",
            "--workspace",
            "Acme",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    bootstrap
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = bootstrap.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(password),
        "a piped password is not echoed"
    );
    let (out, key, stderr) = run(waypost(dir.path()).args([
        "admin",
        "api-key",
        "create",
        "--workspace",
        "Acme",
        "--scopes",
        "audit:read",
    ]));
    assert!(out.status.success(), "{stderr}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("wp_live_"));

    let mut child = waypost(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WAYPOST_LOG_LEVEL", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logs = Vec::new();
    let address = loop {
        let line = lines.next().expect("log line").unwrap();
        logs.push(line.clone());
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "listening"
        {
            break event["address"].as_str().unwrap().to_owned();
        }
    };
    let login = |pw: &str| {
        let body = format!(r#"{{"email":"ana@example.com","password":"{pw}"}}"#);
        http(
            &address,
            &format!(
                "POST /v1/auth/login?token=query-secret-1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert!(login(wrong).starts_with("HTTP/1.1 401"));
    let ok = login(password);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let cookie = ok
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: waypost_session="))
        .unwrap();
    let session_token = cookie.split(';').next().unwrap().to_owned();
    let audit = http(
        &address,
        &format!(
            "GET /v1/audit-events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\nconnection: close\r\n\r\n"
        ),
    );
    assert!(audit.starts_with("HTTP/1.1 200"), "{audit}");
    let me = http(
        &address,
        &format!(
            "GET /v1/auth/me HTTP/1.1\r\nhost: x\r\ncookie: waypost_session={session_token}\r\nconnection: close\r\n\r\n"
        ),
    );
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    logs.extend(lines.map_while(Result::ok));
    assert!(child.wait().unwrap().success());
    let all = logs.join("\n");
    assert!(
        all.contains("\"route\":\"/v1/auth/login\""),
        "requests are logged: {all}"
    );
    for (what, secret) in [
        ("password", password),
        ("wrong password", wrong),
        ("API key", &key[8..]),
        ("session token", &session_token),
        ("query string", "query-secret-1"),
    ] {
        assert!(!all.contains(secret), "{what} leaked into the logs");
    }
}

#[test]
fn audit_verify_exits_one_when_the_log_was_edited() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut bootstrap = waypost(dir.path())
        .args([
            "admin",
            "bootstrap",
            "--email",
            "ana@example.com",
            "--workspace",
            "Acme",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    bootstrap
        .stdin
        .take()
        .unwrap()
        .write_all(b"silver-otter-meadow-4417\n")
        .unwrap();
    assert!(bootstrap.wait().unwrap().success());
    let (out, stdout, stderr) = run(waypost(dir.path()).args(["audit", "checkpoint"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("signed"), "{stdout}");
    let (out, stdout, _) =
        run(waypost(dir.path()).args(["audit", "verify", "--workspace", "Acme"]));
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("ok "), "{stdout}");

    let db = dir.path().join("waypost-data/waypost.db");
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); c.executescript(\"DROP TRIGGER audit_events_write_once; \
             UPDATE audit_events SET action = 'forged' WHERE seq = 1;\"); c.commit()",
            db.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let (out, stdout, stderr) = run(waypost(dir.path()).args(["audit", "verify"]));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN") && stdout.contains("seq 1"),
        "{stdout}"
    );
    assert_one_line_error(&out, &stderr, "audit chain");
}

#[test]
fn serve_can_run_the_sandbox_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = waypost(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox",
            "--sandbox-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut number, mut token) = (None, None, None);
    while token.is_none() {
        let line = lines.next().expect("sandbox details on stdout").unwrap();
        if let Some(rest) = line.trim().strip_prefix("base URL:") {
            base = Some(
                rest.split_whitespace()
                    .next()
                    .unwrap()
                    .trim_start_matches("http://")
                    .to_owned(),
            );
        } else if let Some(rest) = line.trim().strip_prefix("number ") {
            number = Some(rest.split_whitespace().next().unwrap().to_owned());
        } else if let Some(rest) = line.trim().strip_prefix("access token:") {
            token = Some(rest.trim().to_owned());
        }
    }
    let body = r#"{"messaging_product":"whatsapp","to":"447911123456","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}"#;
    let answer = http(
        base.as_deref().unwrap(),
        &format!(
            "POST /v21.0/{}/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            number.unwrap(),
            token.unwrap(),
            body.len()
        ),
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("wamid."),
        "{answer}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// `waypost webhooks verify` accepts the Standard Webhooks reference vector and
/// refuses a changed body, with exit status 1 and one line saying why.
#[test]
fn webhooks_verify_checks_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let verify = |body: &str| {
        let mut child = waypost(dir.path())
            .args([
                "webhooks",
                "verify",
                "--secret",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "--id",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "--timestamp",
                "1614265330",
                "--signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                "--ignore-time",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stderr)
    };
    let (out, stderr) = verify(r#"{"test": 2432232314}"#);
    assert!(out.status.success(), "{stderr}");
    let (out, stderr) = verify(r#"{"test": 2432232315}"#);
    assert_one_line_error(&out, &stderr, "does not verify");
}

#[test]
fn retention_run_reports_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(waypost(dir.path()).args(["retention", "run", "--dry-run"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("would remove"), "{stdout}");
    for kind in [
        "message_content",
        "message_metadata",
        "inbound_records",
        "delivery_attempts",
        "customer_events",
        "shield_scans",
        "sessions",
        "idempotency_records",
        "audit_events",
    ] {
        assert!(stdout.contains(kind), "{kind} missing: {stdout}");
    }
    let (out, stdout, stderr) = run(waypost(dir.path()).args(["retention", "run"]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("removed 0 record(s) in all"), "{stdout}");
    // A period shorter than the audit promise is refused with one line.
    let (out, _, stderr) = run(waypost(dir.path())
        .args(["retention", "run"])
        .env("WAYPOST_AUDIT_RETENTION_DAYS", "30"));
    assert_one_line_error(&out, &stderr, "WAYPOST_AUDIT_RETENTION_DAYS");
}

/// The README's tour on `serve --demo`: the customer's question, injected
/// through the sandbox, is read back with its text through the messages API
/// (the demo workspace keeps content for 7 days).
#[test]
fn demo_tour_reads_the_customers_question() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = waypost(dir.path())
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut sandbox, mut key, mut control, mut owner) = (None, None, None, None, None);
    while control.is_none() {
        let line = lines.next().expect("the tour on stdout").unwrap();
        if let Some(rest) = line.strip_prefix("Waypost demo: API on http://") {
            let (a, s) = rest.split_once(", sandbox provider on http://").unwrap();
            api = Some(a.to_owned());
            sandbox = Some(s.trim_end_matches('/').to_owned());
        } else if let Some(rest) = line.strip_prefix("API key (new on every start): ") {
            key = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("Owner's member id: ") {
            owner = Some(rest.trim().to_owned());
        } else if line.contains("/_sandbox/inbound") {
            let after = line.split("Bearer ").nth(1).unwrap();
            control = Some(after.split('\'').next().unwrap().to_owned());
        }
    }
    let (api, sandbox, key) = (api.unwrap(), sandbox.unwrap(), key.unwrap());
    let body = r#"{"from":"4915123456789","message":{"type":"text","text":{"body":"Hi, is my order on its way?"}}}"#;
    let answer = http(
        &sandbox,
        &format!(
            "POST /_sandbox/inbound HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            control.unwrap(),
            body.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = http(
            &api,
            &format!(
                "GET /v1/messages?direction=inbound HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\nconnection: close\r\n\r\n"
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        if answer.contains(r#""content":{"text":{"body":"Hi, is my order on its way?"}}"#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the question never showed: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The inbox: the conversation shows the question, is assigned to the owner and closed.
    let call = |method: &str, path: &str| -> serde_json::Value {
        let answer = http(
            &api,
            &format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
        );
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{method} {path}: {answer}"
        );
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    };
    let inbox = call("GET", "/v1/conversations");
    let conversation = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    let history = call("GET", &format!("/v1/conversations/{conversation}/messages"));
    assert_eq!(
        history["data"][0]["content"]["text"]["body"],
        "Hi, is my order on its way?"
    );
    let owner = owner.expect("the owner's member id is printed");
    let body = format!(r#"{{"member_id":"{owner}"}}"#);
    let answer = http(
        &api,
        &format!(
            "POST /v1/conversations/{conversation}/assign HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        answer.contains(&format!(r#""assignee_id":"{owner}""#)),
        "{answer}"
    );
    let closed = call("POST", &format!("/v1/conversations/{conversation}/close"));
    assert_eq!(closed["status"], "closed");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// `serve --demo` with TLS (1.3 only): the tour prints `https://` and the
/// sandbox's webhooks reach the server over TLS, so the customer's question
/// can be read back.
#[test]
fn demo_over_tls_prints_https_and_receives_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut child = waypost(dir.path())
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-listen",
            "127.0.0.1:0",
        ])
        .env("WAYPOST_TLS_CERT", &cert_path)
        .env("WAYPOST_TLS_KEY", &key_path)
        .env("WAYPOST_TLS_MIN_VERSION", "1.3")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut sandbox, mut key, mut control) = (None, None, None, None);
    while control.is_none() {
        let line = lines.next().expect("the tour on stdout").unwrap();
        if let Some(rest) = line.strip_prefix("Waypost demo: API on ") {
            let (a, s) = rest.split_once(", sandbox provider on http://").unwrap();
            api = Some(a.to_owned());
            sandbox = Some(s.trim_end_matches('/').to_owned());
        } else if let Some(rest) = line.strip_prefix("API key (new on every start): ") {
            key = Some(rest.trim().to_owned());
        } else if line.contains("/_sandbox/inbound") {
            let after = line.split("Bearer ").nth(1).unwrap();
            control = Some(after.split('\'').next().unwrap().to_owned());
        }
    }
    let (api, sandbox, key) = (api.unwrap(), sandbox.unwrap(), key.unwrap());
    assert!(api.starts_with("https://localhost:"), "{api}");
    let body =
        r#"{"from":"4915123456789","message":{"type":"text","text":{"body":"Hi over TLS"}}}"#;
    let answer = http(
        &sandbox,
        &format!(
            "POST /_sandbox/inbound HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            control.unwrap(),
            body.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let page: serde_json::Value = client
                .get(format!("{api}/v1/messages?direction=inbound"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("the API answers over TLS")
                .json()
                .await
                .unwrap();
            if page["data"][0]["content"]["text"]["body"] == "Hi over TLS" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook never arrived: {page}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn contacts_import_reports_every_outcome_and_is_idempotent_per_key() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut bootstrap = waypost(dir.path())
        .args([
            "admin",
            "bootstrap",
            "--email",
            "imp@example.com",
            "--workspace",
            "Acme",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    bootstrap
        .stdin
        .take()
        .unwrap()
        .write_all(b"silver-otter-meadow-4417\n")
        .unwrap();
    assert!(bootstrap.wait().unwrap().success());
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "phone,name,tags,consent_marketing,consent_source,consent_captured_at,consent_text\n\
         +4915123450001,Ada,vip,yes,web,2026-11-01,I agree\n\
         +4915123450002,Bo,,yes,,,\n\
         12,Cy,,,,,\n\
         +4915123450001,Ada again,,,,,\n",
    )
    .unwrap();
    let import = [
        "contacts",
        "import",
        "contacts.csv",
        "--workspace",
        "Acme",
        "--key",
        "k1",
    ];
    let (out, stdout, stderr) = run(waypost(dir.path()).args(import));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("completed: 4 rows")
            && stdout.contains("2 created, 0 updated, 1 invalid number, 0 invalid, 1 duplicate, 1 with consent recorded"),
        "{stdout}"
    );
    // Numbers never reach the output.
    assert!(!stdout.contains("4915123450001") && !stderr.contains("4915123450001"));
    let (out, stdout, _) = run(waypost(dir.path()).args(import));
    assert!(out.status.success());
    assert!(
        stdout.contains("already imported with this key"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("bad.csv"),
        "phone,favourite_colour\n+4915123450009,red\n",
    )
    .unwrap();
    let (out, _, stderr) =
        run(waypost(dir.path()).args(["contacts", "import", "bad.csv", "--workspace", "Acme"]));
    assert!(!out.status.success());
    assert!(stderr.contains("favourite_colour"), "{stderr}");
    let (out, _, stderr) = run(waypost(dir.path()).args([
        "contacts",
        "import",
        "contacts.csv",
        "--workspace",
        "Nope",
    ]));
    assert!(!out.status.success());
    assert!(stderr.contains("--workspace"), "{stderr}");
}

#[test]
fn admin_user_unlock_reset_mfa_and_reset_link_are_audited() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut bootstrap = waypost(dir.path())
        .args([
            "admin",
            "bootstrap",
            "--email",
            "ana@example.com",
            "--workspace",
            "Acme",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = bootstrap.stdin.as_mut().unwrap();
    stdin.write_all(b"silver-otter-meadow-4417\n").unwrap();
    assert!(bootstrap.wait().unwrap().success());

    let user = |verb: &str, email: &str| {
        run(waypost(dir.path()).args(["admin", "user", verb, "--email", email]))
    };
    let (out, stdout, stderr) = user("reset-link", "Ana@Example.com");
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout
            .trim()
            .starts_with("http://127.0.0.1:8080/reset?token="),
        "{stdout}"
    );
    assert!(stderr.contains("valid 30 minutes"), "{stderr}");
    let (out, stdout, stderr) = user("unlock", "ana@example.com");
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("unlocked usr_"), "{stdout}");
    let (out, stdout, stderr) = user("reset-mfa", "ana@example.com");
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("TOTP was off, 0 passkey(s)"), "{stdout}");
    let (out, _, stderr) = user("unlock", "nobody@example.com");
    assert_one_line_error(&out, &stderr, "No account uses this address");

    let db = dir.path().join("waypost-data/waypost.db");
    let actions = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); print(' '.join(r[0] for r in c.execute('SELECT action FROM audit_events ORDER BY seq')))",
            db.display()
        ))
        .output()
        .unwrap();
    let actions = String::from_utf8_lossy(&actions.stdout);
    for action in [
        "auth.password_reset_requested",
        "auth.unlocked_by_operator",
        "mfa.reset_by_operator",
    ] {
        assert!(actions.contains(action), "{action} missing: {actions}");
    }
}
