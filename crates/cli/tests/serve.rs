//! `artifact serve` end to end: the real binary on a loopback port, with
//! the demo data, killed with SIGKILL mid-render and started again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::{examples, sms_request, verify_report};

/// A running `artifact serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Server {
    fn start(data_dir: &Path, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_artifact"));
        for (name, _) in std::env::vars() {
            if name.starts_with("ARTIFACT_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(examples().join("artifact.toml"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Forward the server's log, and pick the address out of it.
        let (address_tx, address_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.split("listening on ").nth(1) {
                    let _ = address_tx.send(address.trim().to_owned());
                }
                eprintln!("[serve] {line}");
            }
        });
        let base = address_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server did not report its address");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server { child, base, agent }
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let response = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        (response.status().as_u16(), json_body(response))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap();
        (response.status().as_u16(), json_body(response))
    }

    fn status(&self, request_id: &str) -> Value {
        let (code, status) = self.get(&format!("/v1/render-requests/{request_id}?company_id=demo"));
        assert_eq!(code, 200, "{status}");
        status
    }

    /// Waits until `done` holds for the status of `request_id`.
    fn wait_for(&self, request_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let status = self.status(request_id);
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{request_id}: never {what}: {status}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every recipient id with a stored artifact for `request_id`.
    fn artifact_recipients(&self, request_id: &str) -> Vec<String> {
        let mut recipients = Vec::new();
        let mut after = String::new();
        loop {
            let (code, page) =
                self.get(&format!("/v1/artifacts/demo/{request_id}?limit=100{after}"));
            assert_eq!(code, 200, "{page}");
            let artifacts = page["artifacts"].as_array().unwrap();
            if artifacts.is_empty() {
                return recipients;
            }
            for artifact in artifacts {
                recipients.push(artifact["recipient_id"].as_str().unwrap().to_owned());
            }
            after = format!("&after={}", recipients.last().unwrap());
        }
    }

    /// SIGTERM, then waits for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(mut self) {
        // SIGKILL: nothing gets to shut down cleanly.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// The body as JSON, `Null` when it is empty.
fn json_body(mut response: ureq::http::Response<ureq::Body>) -> Value {
    let text = response
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap();
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_accepted_recipient_renders_exactly_once_across_a_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &["--demo", "--batch-size", "50", "--workers", "2"],
    );

    let newsletter = std::fs::read(data.path().join("demo/newsletter-request.json")).unwrap();
    let (code, accepted) = server.post("/v1/render-requests", &newsletter);
    assert_eq!(code, 202, "{accepted}");
    let bulk: Vec<String> = (0..4).map(|n| format!("bulk-{n}")).collect();
    for id in &bulk {
        let (code, body) = server.post("/v1/render-requests", &sms_request(id, "low", 5_000));
        assert_eq!(code, 202, "{body}");
    }

    // Kill it while the first bulk request is part way through.
    server.wait_for(&bulk[0], "started", |s| {
        s["counts"]["rendered"].as_u64().unwrap_or(0) > 0
    });
    let last = server.status(&bulk[3]);
    server.kill();
    assert_ne!(last["state"], "done", "everything finished before the kill");

    let server = Server::start(data.path(), &["--batch-size", "50"]);
    let mut expected = vec![("demo-newsletter-1".to_owned(), 1_000)];
    expected.extend(bulk.iter().map(|id| (id.clone(), 5_000)));
    for (id, recipients) in &expected {
        let status = server.wait_for(id, "done", |s| {
            s["state"] != "queued" && s["state"] != "rendering"
        });
        assert_eq!(status["state"], "done", "{status}");
        // Counted once per recipient: a batch rendered before the kill and
        // again after it is recorded once.
        assert_eq!(status["counts"]["rendered"], *recipients, "{status}");
        assert_eq!(status["counts"]["failed"], 0, "{status}");
        // One artifact per recipient: the store is keyed by recipient, so a
        // batch rendered again replaced its artifacts rather than adding.
        assert_eq!(
            server.artifact_recipients(id).len(),
            *recipients,
            "{id}: artifacts lost"
        );
    }

    // The content is the demo's: profile p-00000 is Ada, and links are
    // tracked through the configured domain.
    let (code, artifact) = server.get("/v1/artifacts/demo/demo-newsletter-1/r-00000");
    assert_eq!(code, 200, "{artifact}");
    let subject = artifact["email"]["subject"].as_str().unwrap();
    assert!(subject.starts_with("Ada, "), "{subject}");
    let html = artifact["email"]["html"].as_str().unwrap();
    assert!(
        html.contains("href=\"https://t.shop.example/c/"),
        "untracked html"
    );
    let (code, sms) = server.get("/v1/artifacts/demo/bulk-0/r-000001");
    assert_eq!(code, 200, "{sms}");
    assert!(
        sms["sms"]["body"]
            .as_str()
            .unwrap()
            .starts_with("Grace, your cart"),
        "{sms}"
    );

    // Resubmitting an accepted request id renders nothing new.
    let (code, existing) = server.post("/v1/render-requests", &sms_request(&bulk[0], "low", 5_000));
    assert_eq!(code, 200, "{existing}");
    assert_eq!(existing["status"]["counts"]["rendered"], 5_000);
}

#[test]
fn a_high_priority_request_overtakes_a_bulk_low_one() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &["--demo", "--batch-size", "100", "--workers", "1"],
    );
    let (code, body) = server.post("/v1/render-requests", &sms_request("bulk", "low", 50_000));
    assert_eq!(code, 202, "{body}");
    server.wait_for("bulk", "started", |s| s["state"] == "rendering");

    let (code, body) = server.post("/v1/render-requests", &sms_request("urgent", "high", 1));
    assert_eq!(code, 202, "{body}");
    server.wait_for("urgent", "done", |s| s["state"] == "done");
    let bulk = server.status("bulk");
    assert_eq!(
        bulk["state"], "rendering",
        "the bulk request finished first: {bulk}"
    );
    assert_eq!(
        server.status("urgent")["response_metadata"],
        json!({"batch": "urgent"})
    );
}

#[test]
fn sigterm_finishes_in_flight_batches_and_a_restart_renders_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--demo", "--batch-size", "200"]);
    let (code, body) = server.post("/v1/render-requests", &sms_request("bulk", "low", 40_000));
    assert_eq!(code, 202, "{body}");
    server.wait_for("bulk", "started", |s| {
        s["counts"]["rendered"].as_u64().unwrap_or(0) > 0
    });
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");

    let server = Server::start(data.path(), &[]);
    let before = server.status("bulk");
    assert_ne!(
        before["state"], "done",
        "nothing was left for the restart: {before}"
    );
    let status = server.wait_for("bulk", "done", |s| s["state"] == "done");
    assert_eq!(status["counts"]["rendered"], 40_000, "{status}");
    assert_eq!(server.artifact_recipients("bulk").len(), 40_000);
}

/// `artifact loadgen` in JSON mode, its summary parsed.
fn loadgen(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_artifact"))
        .arg("loadgen")
        .args([
            "--profiles",
            "200",
            "--recipients",
            "20",
            "--json",
            "--drain",
            "60s",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn loadgen_renders_in_process_and_reports_every_request() {
    let summary = loadgen(&[
        "--mix",
        "sms=1,receipt=1",
        "--closed",
        "2",
        "--requests",
        "6",
        "--duration",
        "60s",
    ]);
    let totals = &summary["totals"];
    assert_eq!(totals["requests_offered"], 6, "{summary}");
    assert_eq!(totals["requests_completed"], 6, "{summary}");
    assert_eq!(totals["recipients_completed"], 120, "{summary}");
    assert_eq!(summary["errors"], json!({}), "{summary}");
    assert!(summary["renders_per_second"].as_f64().unwrap() > 0.0);
    assert!(summary["peak_rss_mib"].as_f64().unwrap() > 1.0);
}

#[test]
fn loadgen_drives_a_running_service_over_http() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let summary = loadgen(&[
        "--target",
        &server.base,
        "--mix",
        "newsletter",
        "--priorities",
        "high=1,low=1",
        "--rate",
        "200/s",
        "--duration",
        "1s",
    ]);
    let totals = &summary["totals"];
    let offered = totals["requests_offered"].as_u64().unwrap();
    // 200 renders/s in requests of 20 recipients, for a second.
    assert!((9..=11).contains(&offered), "{summary}");
    assert_eq!(
        totals["requests_completed"].as_u64(),
        Some(offered),
        "{summary}"
    );
    assert_eq!(summary["errors"], json!({}), "{summary}");
    let lanes: Vec<&str> = summary["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lane| lane["lane"].as_str().unwrap())
        .collect();
    assert!(
        lanes.iter().all(|lane| ["high", "low"].contains(lane)),
        "{lanes:?}"
    );
    // The service's own memory, read from its /metrics.
    assert!(summary["peak_rss_mib"].as_f64().unwrap() > 1.0, "{summary}");
}

/// `artifact worker --lane canary` in its own process, on the data dir of a
/// running `serve` that mirrors everything.
struct LaneWorker(Child);

impl LaneWorker {
    fn start(data_dir: &Path, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_artifact"))
            .args(["worker", "--lane", "canary", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }
}

impl Drop for LaneWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `artifact canary verify --format json` on `data_dir`: its report and
/// whether it passed.
fn verify(data_dir: &Path) -> (Value, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(["canary", "verify", "--format", "json", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    verify_report(&output)
}

/// Polls verification until `pairs` pairs are compared.
fn verify_when_rendered(data_dir: &Path, pairs: u64) -> (Value, bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (report, passed) = verify(data_dir);
        if report["pairs"] == pairs
            && report["missing_canary"]
                .as_array()
                .is_some_and(Vec::is_empty)
        {
            return (report, passed);
        }
        assert!(
            Instant::now() < deadline,
            "the canary never caught up: {report}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_canary_in_another_process_is_verified_against_production() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--demo", "--canary-sample", "1"]);
    // Version 2 of the SMS template differs in its last words.
    let (code, v1) = server.get("/v1/companies/demo/templates/sms?version=1");
    assert_eq!(code, 200, "{v1}");
    let mut v2 = v1.clone();
    let body = v1["parts"]["sms"].as_str().unwrap();
    v2["parts"]["sms"] = json!(format!("{body} Reply STOP to opt out."));
    let response = server
        .agent
        .put(&format!("{}/v1/companies/demo/templates/sms", server.base))
        .header("content-type", "application/json")
        .send(serde_json::to_vec(&json!({"channel": "sms", "parts": v2["parts"]})).unwrap())
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);

    let pinned = |id: &str| {
        let mut request: Value = serde_json::from_slice(&sms_request(id, "normal", 20)).unwrap();
        request["channel_settings"]["template"]["version"] = json!(1);
        serde_json::to_vec(&request).unwrap()
    };
    // An identical candidate: nothing differs, verification passes.
    let identical = LaneWorker::start(data.path(), &[]);
    let (code, reply) = server.post("/v1/render-requests", &pinned("canary-1"));
    assert_eq!(code, 202, "{reply}");
    let (report, passed) = verify_when_rendered(data.path(), 20);
    assert!(passed, "{report}");
    assert_eq!(
        (&report["identical"], &report["unexpected"]),
        (&json!(20), &json!(0))
    );
    drop(identical);

    // The candidate renders version 2: every SMS differs in its body only.
    let metrics_address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let candidate = LaneWorker::start(
        data.path(),
        &[
            "--template-version",
            "sms=2",
            "--metrics-listen",
            &metrics_address,
        ],
    );
    let (code, reply) = server.post("/v1/render-requests", &pinned("canary-2"));
    assert_eq!(code, 202, "{reply}");
    let (report, passed) = verify_when_rendered(data.path(), 40);
    assert!(!passed, "{report}");
    assert_eq!(report["unexpected"], 20, "{report}");
    assert_eq!(report["by_part"]["sms"], 20, "{report}");
    assert!(
        report["diffs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|diff| diff["key"]["request_id"] == "canary-2")
    );
    let diff = &report["diffs"][0]["parts"][0];
    assert!(
        diff["canary"]
            .as_str()
            .unwrap()
            .ends_with("Reply STOP to opt out."),
        "{diff}"
    );
    let (code, metrics) = {
        let response = server
            .agent
            .get(&format!("http://{metrics_address}/metrics"))
            .call()
            .unwrap();
        let code = response.status().as_u16();
        (code, response.into_body().read_to_string().unwrap())
    };
    assert_eq!(code, 200);
    assert!(
        metrics.contains("artifact_lane_recipients_total{lane=\"canary\",outcome=\"rendered\"} 20"),
        "{metrics}"
    );
    drop(candidate);

    // The failing verdict alerts: a webhook, an HTML report, Prometheus figures.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/canary", hook.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = hook.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut chunk = [0; 4096];
        // Headers, then as many body bytes as content-length says.
        let complete = |request: &[u8]| {
            let text = String::from_utf8_lossy(request);
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                return false;
            };
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            body.len() >= length
        };
        while !complete(&request) {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the webhook request ended early");
            request.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let (html, metrics) = (
        data.path().join("report.html"),
        data.path().join("canary.prom"),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(["canary", "verify", "--max-unexpected", "5", "--data-dir"])
        .arg(data.path())
        .arg("--html")
        .arg(&html)
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--webhook", &hook_url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("40 pairs compared"), "{stdout}");
    assert!(
        stdout.contains("FAIL: 20 unexpected > 5 allowed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ ") && stdout.contains("Reply STOP to opt out."),
        "{stdout}"
    );
    let request = received.join().unwrap();
    assert!(request.starts_with("POST /canary"), "{request}");
    let (_, body) = request.split_once("\r\n\r\n").unwrap();
    let verdict: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (&verdict["unexpected"], &verdict["max_unexpected"]),
        (&json!(20), &json!(5))
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("<span class=\"ins\">") && html.contains("Reply STOP"),
        "{html}"
    );
    let metrics = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        metrics.contains("artifact_canary_unexpected 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("artifact_canary_differing{part=\"sms\"} 20"),
        "{metrics}"
    );
}
