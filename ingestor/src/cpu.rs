//! Catch-up's CPU work, kept away from live chains.
//!
//! Parsing a range answer of thousands of logs, checking their blooms and encoding their
//! records takes milliseconds at a time. Run on the runtime's workers, it holds up every
//! other task: another chain's `newHeads` notification, its answer and its delivery report
//! wait until a worker is free and polls the I/O driver again. [`offload`] runs such a step
//! on a small pool of threads at a lower scheduling priority (`nice` +10). The workers
//! stay free for I/O, and when the cores are busy the kernel runs a live chain's work first.
//! Small steps (a live block) run in place: a hand-off would cost more than the work.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

/// Steps weighing at least this much (bytes of text, or about that in logs) are offloaded.
pub const HEAVY: usize = 64 << 10;

/// How much lower the pool's threads run than the rest of the service.
const NICE: libc::c_int = 10;

/// Jobs waiting for a pool thread; when full, a step runs in place.
const QUEUE: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// The pool: started on first use, one thread per core, for the life of the process.
fn pool() -> Option<&'static SyncSender<Job>> {
    static POOL: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    POOL.get_or_init(start).as_ref()
}

fn start() -> Option<SyncSender<Job>> {
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut started = 0;
    for i in 0..threads {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ethhook-cpu-{i}"))
            .spawn(move || work(&rx));
        if spawned.is_ok() {
            started += 1;
        }
    }
    // No thread could start: every step runs in place.
    (started > 0).then_some(tx)
}

fn work(rx: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Lowers the calling thread's priority by [`NICE`] from the one it inherited (Linux: a
/// thread's own nice value, at most 19). Best effort: where it is not allowed, the pool
/// still keeps the runtime's workers free.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; no memory is shared.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let inherited = libc::getpriority(libc::PRIO_PROCESS, tid);
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (inherited + NICE).min(19));
    }
}

/// Runs `f`, a step of about `weight` bytes of work: in place when it is small, else on
/// the low-priority pool while the calling task waits without holding its worker. A panic
/// in `f` is resumed in the caller, as if it had run in place.
pub async fn offload<R, F>(weight: usize, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let Some(pool) = pool().filter(|_| weight >= HEAVY) else {
        return f();
    };
    let (tx, rx) = oneshot::channel::<Result<R, Box<dyn Any + Send>>>();
    let job: Job = Box::new(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    match pool.try_send(job) {
        Ok(()) => {}
        // Saturated or gone: run it here (the job owns `f`; take it back by running it).
        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job(),
    }
    match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => resume_unwind(panic),
        // The job is dropped unrun only if its thread died, which `catch_unwind` prevents.
        Err(_) => resume_unwind(Box::new("a CPU pool thread lost a job")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_steps_run_in_place_and_heavy_ones_on_the_pool() {
        let here = std::thread::current().id();
        let small = offload(10, move || std::thread::current().id()).await;
        assert_eq!(small, here);
        let heavy = offload(HEAVY, || std::thread::current().name().map(str::to_owned)).await;
        assert!(
            heavy
                .as_deref()
                .is_some_and(|n| n.starts_with("ethhook-cpu-")),
            "ran on {heavy:?}"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn pool_threads_run_at_a_lower_priority() {
        let nice = offload(HEAVY, || {
            // SAFETY: reads the calling thread's nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        })
        .await;
        // SAFETY: as above, for the test's own thread.
        let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        assert_eq!(nice, (here + NICE).min(19));
    }

    #[tokio::test]
    async fn a_panic_in_the_pool_reaches_the_caller() {
        let caught = tokio::spawn(offload(HEAVY, || -> u8 { panic!("boom") })).await;
        let panic = caught.expect_err("the panic must come back").into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
    }
}
