//! Child processes that cannot outlive the test or command that started them.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// [`wait_for`] with a check that can also fail: its error ends the wait at once (what is
/// waited for can no longer happen, e.g. the process that would do it exited).
pub fn wait_for_or_fail<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check().with_context(|| format!("while waiting for {what}"))? {
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

/// How many lines of a process's log a failure shows.
pub const TAIL_LINES: usize = 40;

/// Set by the panic hook [`Managed::spawn`] installs: some thread of this process panicked
/// (in a test binary, a test failed).
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Whether any thread of this process panicked since its first [`Managed::spawn`]: what
/// something dropped outside the failing test (a broker shared by a test binary, dropped
/// at exit) asks before printing its log.
pub fn any_panicked() -> bool {
    PANICKED.load(Ordering::Relaxed)
}

/// Records panics in [`any_panicked`], then runs the hook that was installed before.
fn record_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::Relaxed);
            previous(info);
        }));
    });
}

/// Whether test folders are kept (`ETHHOOK_KEEP_TEST_DIRS` is set).
pub fn keep_test_dirs() -> bool {
    std::env::var_os("ETHHOOK_KEEP_TEST_DIRS").is_some()
}

/// A running child process; killed (SIGKILL) and reaped on drop. Its output goes to a log
/// file. When it is dropped by a panicking thread (a failing test), the last
/// [`TAIL_LINES`] lines of that log go to stderr first ([`Managed::print_tail`]).
pub struct Managed {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// An error carries the log's tail already ([`Managed::ensure_running`]).
    tail_shown: bool,
}

impl Managed {
    /// Spawns `cmd` with stdout and stderr appended to `log`. On Linux the child also gets
    /// SIGKILL if the spawning thread dies, so a crashed test leaves no process behind.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Self> {
        record_panics();
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
            tail_shown: false,
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

    /// Fails when the process has exited, naming its exit status and its log's tail (then
    /// not printed again on drop): what a wait on something only this process would do
    /// checks, so that it fails at once.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        let status: Option<ExitStatus> = match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => bail!("{} was already stopped", self.name),
        };
        match status {
            None => Ok(()),
            Some(status) => {
                self.tail_shown = true;
                bail!(
                    "{} exited ({status}); last {TAIL_LINES} lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(TAIL_LINES)
                )
            }
        }
    }

    /// Prints the last [`TAIL_LINES`] lines of the log to stderr, under a header naming the
    /// process and the log's path (and whether its folder is kept).
    pub fn print_tail(&self) {
        let kept = if keep_test_dirs() {
            "kept"
        } else {
            "removed with its folder; set ETHHOOK_KEEP_TEST_DIRS=1 to keep it"
        };
        eprintln!(
            "--- {} (last {TAIL_LINES} lines of {}, {kept})\n{}",
            self.name,
            self.log.display(),
            self.log_tail(TAIL_LINES)
        );
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
        if std::thread::panicking() && !self.tail_shown {
            self.print_tail();
        }
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
