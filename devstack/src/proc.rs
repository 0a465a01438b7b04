//! Child processes that cannot outlive the test or command that started them.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `check` until it returns `Some`, failing after `deadline` with `what` in the error.
/// This waits for a condition, it does not sleep and hope.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, deadline: Duration) -> anyhow::Result<()> {
    wait_for(
        &format!("127.0.0.1:{port} to accept connections"),
        deadline,
        || TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()),
    )
}

/// A running child process; killed (SIGKILL) and reaped on drop. Its output goes to a log
/// file, printed by [`Managed::log_tail`] when a test needs it.
pub struct Managed {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Managed {
    /// Spawns `cmd` with stdout and stderr appended to `log`. On Linux the child also gets
    /// SIGKILL if the spawning thread dies, so a crashed test leaves no process behind.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // Own process group: a terminal's Ctrl-C reaches only the parent, which stops its
        // children in order. SAFETY: setpgid and prctl are async-signal-safe syscalls.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain syscall on our own child's pid.
            unsafe {
                libc::kill(pid as i32, signal);
            }
        }
    }

    /// Waits for exit up to `deadline`; returns the exit code (None if killed by a signal).
    pub fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<Option<i32>> {
        let child = self.child.as_mut().context("already reaped")?;
        let status = wait_for(&format!("{} to exit", self.name), deadline, || {
            child.try_wait().ok().flatten()
        })?;
        self.child = None;
        Ok(status.code())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<_> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The whole output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU seconds (user + system) process `pid` has used so far (Linux `/proc`).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command's closing parenthesis, from the 3rd: utime is the 14th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}
