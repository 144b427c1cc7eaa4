//! Running the real `rampart` binary.
//!
//! Logs are read as JSON lines from stderr (tests set `RAMPART_LOGGING_FORMAT=json`);
//! every line is kept so tests can assert on what was — and was not — logged. Waiting
//! is event-driven: a test waits for a log message, never for a fixed time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// A running `rampart` process.
pub struct Rampart {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
    ended: Arc<std::sync::atomic::AtomicUsize>,
}

/// How long any wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

impl Rampart {
    /// Spawns `bin` with `args` and exactly `env` (plus PATH and HOME).
    pub fn spawn(bin: &Path, args: &[&str], env: &BTreeMap<String, String>) -> Self {
        let mut command = Command::new(bin);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn rampart");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        let ended = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for (stream, sink) in [
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                Arc::clone(&lines),
            ),
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                Arc::clone(&stdout_lines),
            ),
        ] {
            let Some(stream) = stream else { continue };
            let changed = Arc::clone(&changed);
            let ended = Arc::clone(&ended);
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    sink.lock().unwrap().push(line);
                    changed.notify_waiters();
                }
                ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                changed.notify_waiters();
            });
        }
        Self {
            child,
            lines,
            stdout: stdout_lines,
            changed,
            ended,
        }
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// All output so far, stderr then stdout, as one string.
    pub fn all_output(&self) -> String {
        let mut text = self.stderr().join("\n");
        text.push('\n');
        text.push_str(&self.stdout().join("\n"));
        text
    }

    /// Waits until some stderr JSON log line satisfies `predicate`; returns it.
    pub async fn wait_for_log(
        &self,
        predicate: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_for(|lines, _| {
            lines
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| predicate(v))
        })
        .await
    }

    /// Waits until some stdout line contains `needle`; returns it.
    pub async fn wait_for_stdout(&self, needle: &str) -> String {
        self.wait_for(|_, out| out.iter().find(|l| l.contains(needle)).cloned())
            .await
    }

    async fn wait_for<T>(&self, find: impl Fn(&[String], &[String]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            {
                let err = self.lines.lock().unwrap();
                let out = self.stdout.lock().unwrap();
                if let Some(found) = find(&err, &out) {
                    return found;
                }
            }
            let exited = self.ended.load(std::sync::atomic::Ordering::SeqCst) == 2;
            if exited || tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "the expected output never came (process exited or timed out); stderr so far:\n{}\nstdout:\n{}",
                    self.stderr().join("\n"),
                    self.stdout().join("\n")
                );
            }
        }
    }

    /// Waits for the "rampart is listening" log line and returns the address.
    pub async fn listening(&self) -> SocketAddr {
        let line = self
            .wait_for_log(|v| v["message"] == "rampart is listening")
            .await;
        line["addr"]
            .as_str()
            .expect("addr field")
            .parse()
            .expect("socket address")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process is running")
    }

    /// A memory figure of the running process from `/proc/<pid>/status`, in KiB:
    /// `VmHWM` (peak resident set), `VmRSS` (resident now), …
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Sends SIGHUP.
    pub fn hangup(&self) {
        self.signal(rustix::process::Signal::HUP);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = self.child.id().expect("process is running");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).expect("send signal");
    }

    /// Waits for the process to exit (bounded by [`WAIT`]) and returns its status
    /// once its output is fully read.
    pub async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("rampart did not exit in time")
            .expect("wait for rampart")
    }
}

/// Runs `bin` to completion and returns (exit code, stdout, stderr).
pub async fn run(
    bin: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
) -> (i32, String, String) {
    let output = tokio::time::timeout(
        WAIT,
        Command::new(bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("command timed out")
    .expect("run command");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
