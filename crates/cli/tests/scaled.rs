//! The scaled-out mode under faults, with the real binaries: an API
//! process (`serve --workers 0`) and worker processes sharing NATS
//! JetStream and PostgreSQL. A worker is SIGKILLed mid-run; the NATS server
//! is killed and started again; PostgreSQL becomes unreachable for 10 s.
//! Every time, every recipient is rendered exactly once (one artifact row
//! per recipient, counts added once) and nothing is dead-lettered.
//!
//! They use this machine's PostgreSQL (`ARTIFACT_TEST_POSTGRES_URL`) and
//! NATS (`ARTIFACT_TEST_NATS_URL`), or a `nats-server` of their own where
//! the test restarts it. Where a server cannot be reached they say they
//! were skipped, except in CI (`CI` set), where they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::{examples, sms_request, verify_report};

const COMPANY: &str = "demo";

fn postgres_url() -> String {
    std::env::var("ARTIFACT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn nats_url() -> String {
    std::env::var("ARTIFACT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// `host:port` of a URL like `scheme://user@host:port/db`.
fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Whether both servers answer; says so and returns `false` when they do
/// not, outside CI. In CI a missing server fails the test.
fn servers_reachable(test: &str) -> bool {
    for url in [postgres_url(), nats_url()] {
        let address = host_port(&url);
        let reachable = address
            .parse()
            .ok()
            .and_then(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok())
            .is_some();
        if !reachable {
            assert!(
                std::env::var_os("CI").is_none(),
                "{url} must be reachable in CI"
            );
            eprintln!("skipped {test}: {url} is not reachable");
            return false;
        }
    }
    true
}

/// The names one test's processes share: its own PostgreSQL schema and
/// NATS stream, so tests do not see each other's data.
struct Deployment {
    name: String,
    queue: String,
    store: String,
}

impl Deployment {
    fn new(test: &str, queue: String, store: String) -> Self {
        Self {
            name: format!("f_{test}_{}", std::process::id()),
            queue,
            store,
        }
    }

    /// The binary with this deployment's settings: small SMS batches, so a
    /// kill lands mid-run, and a short lease, so a dead worker's batches
    /// come back within seconds.
    fn command(&self, store: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_artifact"));
        for (name, _) in std::env::vars() {
            if name.starts_with("ARTIFACT_") {
                command.env_remove(name);
            }
        }
        command
            .env("RUST_LOG", "warn")
            .env("ARTIFACT_QUEUE", &self.queue)
            .env("ARTIFACT_STORE", store)
            .env("ARTIFACT_POSTGRES_SCHEMA", &self.name)
            .env("ARTIFACT_NATS_NAME", &self.name)
            .env("ARTIFACT_NATS_SMS_BATCH_SIZE", "500")
            .env("ARTIFACT_NATS_LEASE_TIMEOUT", "3s")
            .env("ARTIFACT_NATS_RETRY_BACKOFF", "500ms");
        command
    }

    fn sql<T>(&self, query: &str, read: impl FnOnce(&[tokio_postgres::Row]) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("SET search_path = {}", self.name))
                .await
                .unwrap();
            let rows = client.query(query, &[]).await.unwrap();
            read(&rows)
        })
    }

    fn count(&self, query: &str) -> i64 {
        self.sql(query, |rows| rows[0].get(0))
    }

    fn drop_schema(&self) {
        self.sql(
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            |_| (),
        );
    }
}

/// A child process, killed when dropped, its log forwarded with a label.
struct Process {
    child: Child,
}

impl Process {
    fn spawn(label: &str, mut command: Command) -> (Process, mpsc::Receiver<String>) {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let label = label.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{label}] {line}");
                let _ = lines_tx.send(line);
            }
        });
        (Process { child }, lines)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The API process, without workers, with the demo company seeded.
struct Api {
    _process: Process,
    base: String,
    agent: ureq::Agent,
}

impl Api {
    fn start(deployment: &Deployment, data_dir: &Path) -> Api {
        let mut command = deployment.command(&deployment.store);
        command
            .arg("serve")
            .arg("--config")
            .arg(examples().join("artifact.toml"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--workers", "0", "--demo"]);
        let (process, lines) = Process::spawn("serve", command);
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("serve did not report its address");
            if let Some(address) = line.split("listening on ").nth(1) {
                break address.trim().to_owned();
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Api {
            _process: process,
            base,
            agent,
        }
    }

    fn submit(&self, body: &[u8]) {
        let response = self
            .agent
            .post(&format!("{}/v1/render-requests", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }

    fn status(&self, request_id: &str) -> Value {
        let mut response = self
            .agent
            .get(&format!(
                "{}/v1/render-requests/{request_id}?company_id={COMPANY}",
                self.base
            ))
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Recipients rendered so far, over `requests`.
    fn rendered(&self, requests: &[String]) -> u64 {
        requests
            .iter()
            .map(|id| self.status(id)["counts"]["rendered"].as_u64().unwrap())
            .sum()
    }

    fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Api) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(Instant::now() < deadline, "never {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `test`'s deployment on `queue` and this machine's PostgreSQL, its schema
/// fresh, and its API process with the demo company (in a data dir that
/// lives as long as the returned one).
fn deploy(test: &str, queue: String) -> (Deployment, tempfile::TempDir, Api) {
    let deployment = Deployment::new(test, queue, postgres_url());
    deployment.drop_schema();
    let data = tempfile::tempdir().unwrap();
    let api = Api::start(&deployment, data.path());
    (deployment, data, api)
}

fn worker(deployment: &Deployment, store: &str, label: &str) -> Process {
    worker_with(deployment, store, label, &[])
}

fn worker_with(deployment: &Deployment, store: &str, label: &str, args: &[&str]) -> Process {
    let mut command = deployment.command(store);
    command
        .arg("worker")
        .arg("--config")
        .arg(examples().join("artifact.toml"))
        .args(["--workers", "2"])
        .args(args);
    Process::spawn(label, command).0
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Recipients a worker process rendered, read from its `/metrics`.
fn rendered_by(metrics: &str) -> u64 {
    let Ok(mut response) = ureq::get(metrics).call() else {
        return 0;
    };
    let text = response.body_mut().read_to_string().unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("artifact_recipients_total{outcome=\"rendered\"} "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

fn submit_all(api: &Api, requests: usize, recipients: usize) -> Vec<String> {
    (0..requests)
        .map(|n| {
            let id = format!("bulk-{n}");
            api.submit(&sms_request(&id, "normal", recipients));
            id
        })
        .collect()
}

/// Every request done, each recipient counted once, one artifact per
/// recipient, no dead letter.
fn assert_exactly_once(api: &Api, deployment: &Deployment, requests: &[String], each: u64) {
    api.wait_until("finished every request", Duration::from_secs(300), |api| {
        requests.iter().all(|id| api.status(id)["state"] == "done")
    });
    for id in requests {
        let status = api.status(id);
        assert_eq!(status["counts"]["rendered"], each, "{status}");
        assert_eq!(status["counts"]["failed"], 0, "{status}");
    }
    let total = each as i64 * requests.len() as i64;
    let artifacts = deployment
        .count("SELECT count(*) FROM artifacts WHERE company_id = 'demo' AND lane = 'production'");
    assert_eq!(artifacts, total, "artifact rows");
    assert_eq!(deployment.count("SELECT count(*) FROM dead_letters"), 0);
}

#[test]
fn three_workers_render_100k_recipients_exactly_once_when_one_is_killed() {
    let test = "kill";
    if !servers_reachable(test) {
        return;
    }
    let (deployment, _data, api) = deploy(test, nats_url());
    let requests = submit_all(&api, 10, 10_000);
    // The victim starts alone: while its workers are the only ones, each
    // request keeps a batch waiting for them, so they are never idle, and
    // the kill lands mid-batch.
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics = format!("http://{listen}/metrics");
    let mut victim = worker_with(
        &deployment,
        &deployment.store,
        "worker-3",
        &["--metrics-listen", &listen],
    );
    api.wait_until("worker-3 rendered 2,000", Duration::from_secs(120), |_| {
        rendered_by(&metrics) >= 2_000
    });
    let steady = [
        worker(&deployment, &deployment.store, "worker-1"),
        worker(&deployment, &deployment.store, "worker-2"),
    ];
    // SIGKILL: its leased batches are delivered again once their lease ends.
    victim.kill();
    assert_exactly_once(&api, &deployment, &requests, 10_000);
    // What the victim held was leased again by the others.
    let redelivered = deployment.count("SELECT count(*) FROM batches WHERE attempts > 1");
    assert!(redelivered >= 1, "the kill landed between batches");
    // Stopped first: a process still at work would hold the schema's locks.
    drop((steady, api));
    deployment.drop_schema();
}

/// A NATS server of the test's own, on a free port with its own store, so
/// the test may kill and restart it.
struct OwnNats {
    binary: &'static str,
    port: u16,
    dir: tempfile::TempDir,
    process: Option<Process>,
}

impl OwnNats {
    fn start() -> Option<OwnNats> {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "nats-server",
        ]
        .into_iter()
        .find(|path| Command::new(path).arg("--version").output().is_ok())?;
        let mut nats = OwnNats {
            binary,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            process: None,
        };
        nats.run();
        Some(nats)
    }

    fn run(&mut self) {
        let mut command = Command::new(self.binary);
        command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .arg("-l")
            .arg(self.dir.path().join("nats.log"));
        self.process = Some(Process::spawn("nats", command).0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn restart(&mut self) {
        // SIGKILL: the server gets no chance to tidy up.
        self.process.take().unwrap().kill();
        std::thread::sleep(Duration::from_secs(2));
        self.run();
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// A TCP proxy to PostgreSQL that can cut every connection and refuse new
/// ones: the database unreachable, as a network partition makes it.
struct Partition {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Partition {
    fn to(target: String) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (cut_flag, open_list) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut_flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut open = open_list.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                drop(open);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Partition { port, cut, open }
    }

    fn url(&self) -> String {
        let url = postgres_url();
        url.replace(&host_port(&url), &format!("127.0.0.1:{}", self.port))
    }

    fn cut_for(&self, how_long: Duration) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        std::thread::sleep(how_long);
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buffer = [0; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
fn workers_ride_out_a_nats_restart_and_10s_without_postgres() {
    let test = "outage";
    if !servers_reachable(test) {
        return;
    }
    let Some(mut nats) = OwnNats::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server must be installed in CI"
        );
        eprintln!("skipped {test}: no nats-server binary to run and restart");
        return;
    };
    let partition = Partition::to(host_port(&postgres_url()));
    let (deployment, _data, api) = deploy(test, nats.url());
    let requests = submit_all(&api, 10, 5_000);
    let workers = [
        worker(&deployment, &partition.url(), "worker-1"),
        worker(&deployment, &partition.url(), "worker-2"),
    ];
    api.wait_until("rendered 5,000", Duration::from_secs(120), |api| {
        api.rendered(&requests) >= 5_000
    });
    nats.restart();
    let after_restart = api.rendered(&requests);
    api.wait_until(
        "rendered more after the NATS restart",
        Duration::from_secs(120),
        |api| api.rendered(&requests) >= after_restart + 5_000,
    );
    partition.cut_for(Duration::from_secs(10));
    assert_exactly_once(&api, &deployment, &requests, 5_000);
    drop((workers, api));
    deployment.drop_schema();
}

/// `canary verify` of the scaled-out lanes, as JSON, and whether it passed.
fn verify(deployment: &Deployment) -> (Value, bool) {
    let output = deployment
        .command(&deployment.store)
        .args(["canary", "verify", "--format", "json"])
        .output()
        .unwrap();
    verify_report(&output)
}

#[test]
fn a_canary_lane_worker_renders_the_mirror_from_postgres() {
    let test = "canary";
    if !servers_reachable(test) {
        return;
    }
    let (deployment, _data, api) = deploy(test, nats_url());
    // Production workers mirror: in the scaled-out mode they are elsewhere.
    let production = worker_with(
        &deployment,
        &deployment.store,
        "worker",
        &["--canary-sample", "1"],
    );
    let mut command = deployment.command(&deployment.store);
    command
        .arg("worker")
        .arg("--config")
        .arg(examples().join("artifact.toml"))
        .args(["--lane", "canary"]);
    let canary = Process::spawn("canary", command).0;
    let requests = submit_all(&api, 1, 20);
    assert_exactly_once(&api, &deployment, &requests, 20);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (report, passed) = loop {
        let (report, passed) = verify(&deployment);
        if report["pairs"] == 20 && report["missing_canary"] == json!([]) {
            break (report, passed);
        }
        assert!(
            Instant::now() < deadline,
            "the canary never caught up: {report}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(passed, "{report}");
    assert_eq!(report["identical"], 20, "{report}");
    drop((production, canary, api));
    deployment.drop_schema();
}

/// The scaled-out commands refuse what they cannot do, naming it, before
/// reaching any server.
#[test]
fn scaled_out_commands_name_what_is_missing() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "serve",
                "--queue",
                "nats://127.0.0.1:4222",
                "--data-dir",
                dir,
            ],
            "--queue needs --store",
        ),
        (
            &[
                "serve",
                "--store",
                "postgres://x@127.0.0.1/db",
                "--data-dir",
                dir,
            ],
            "--store needs --queue",
        ),
        (
            &[
                "serve",
                "--sink",
                "nats",
                "--data-dir",
                dir,
                "--listen",
                "127.0.0.1:0",
            ],
            "--sink nats: the artifacts stream is on the scaled-out mode's --queue",
        ),
        (
            &[
                "worker",
                "--queue",
                "http://x",
                "--store",
                "postgres://x@h/db",
            ],
            "expected nats://host:port",
        ),
        (&["db", "migrate"], "give the database: --store"),
        (&["nats", "setup"], "give the broker: --queue"),
    ];
    for (args, reason) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_artifact"));
        for (name, _) in std::env::vars() {
            if name.starts_with("ARTIFACT_") {
                command.env_remove(name);
            }
        }
        let output = command.args(args).env("RUST_LOG", "warn").output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
