//! The threads of reads that may scan a tenant's resources (filtered or
//! sorted lists, a group's whole member list). They run at a lower CPU
//! priority than the async workers (point reads), the blocking pool (other
//! reads) and the writer, so that when one tenant's searches fill the CPU,
//! every tenant's lookups and writes — what an identity provider's sync
//! waits on — still get it first. With idle cores the priority changes
//! nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use scimitar_store::{StoreError, StoreResult};

/// The niceness of a scan thread (Linux; 0 is the default, 19 the lowest):
/// about a tenth of a normal thread's share of a busy CPU.
#[cfg(target_os = "linux")]
const NICENESS: i32 = 10;

type Task = Box<dyn FnOnce() + Send>;

/// Threads started on demand, up to `max`; a task waits in the queue when
/// all are busy.
pub(crate) struct ScanThreads {
    queue: mpsc::Sender<Task>,
    shared: Arc<Shared>,
    max: usize,
}

struct Shared {
    tasks: Mutex<mpsc::Receiver<Task>>,
    /// Threads waiting for a task.
    idle: AtomicUsize,
    /// Tasks sent and not yet taken.
    pending: AtomicUsize,
    started: AtomicUsize,
}

impl ScanThreads {
    pub(crate) fn new(max: usize) -> Self {
        let (queue, tasks) = mpsc::channel();
        ScanThreads {
            queue,
            shared: Arc::new(Shared {
                tasks: Mutex::new(tasks),
                idle: AtomicUsize::new(0),
                pending: AtomicUsize::new(0),
                started: AtomicUsize::new(0),
            }),
            max,
        }
    }

    /// Runs `task` on a scan thread.
    pub(crate) fn run(&self, task: impl FnOnce() + Send + 'static) -> StoreResult<()> {
        let pending = self.shared.pending.fetch_add(1, Ordering::SeqCst) + 1;
        if pending > self.shared.idle.load(Ordering::SeqCst) && self.shared.started.load(Ordering::SeqCst) < self.max {
            self.start()?;
        }
        self.queue
            .send(Box::new(task))
            .map_err(|_| StoreError::Internal("the scan threads have stopped".into()))
    }

    fn start(&self) -> StoreResult<()> {
        let n = self.shared.started.fetch_add(1, Ordering::SeqCst);
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(format!("scimitar-sqlite-scan-{n}"))
            .spawn(move || work(&shared))
            .map(drop)
            .map_err(|e| {
                self.shared.started.fetch_sub(1, Ordering::SeqCst);
                StoreError::Internal(format!("cannot start a scan thread: {e}"))
            })
    }
}

fn work(shared: &Shared) {
    #[cfg(target_os = "linux")]
    {
        // Linux gives each thread its own niceness (PRIO_PROCESS with a
        // thread id). Failing to lower it is harmless.
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS);
    }
    loop {
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let task = match shared.tasks.lock() {
            Ok(tasks) => tasks.recv(),
            Err(_) => return,
        };
        shared.idle.fetch_sub(1, Ordering::SeqCst);
        // The store is gone when its queue is.
        let Ok(task) = task else { return };
        shared.pending.fetch_sub(1, Ordering::SeqCst);
        // A panicking read answers its caller with an error (its result
        // channel is dropped); the thread carries on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    /// Tasks run concurrently up to the maximum, on threads of lower
    /// priority, and a panicking task leaves its thread working.
    #[test]
    fn runs_tasks_on_low_priority_threads() {
        let threads = ScanThreads::new(3);
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(std::sync::Barrier::new(3));
        for _ in 0..3 {
            let (tx, gate) = (tx.clone(), gate.clone());
            threads
                .run(move || {
                    // All three at once, or this waits forever.
                    gate.wait();
                    #[cfg(target_os = "linux")]
                    let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
                    #[cfg(not(target_os = "linux"))]
                    let nice = NICE_ELSEWHERE;
                    tx.send(nice).unwrap();
                })
                .unwrap();
        }
        for _ in 0..3 {
            let nice = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("three at once");
            #[cfg(target_os = "linux")]
            assert_eq!(nice, NICENESS);
            let _ = nice;
        }
        threads.run(|| panic!("a failing read")).unwrap();
        let tx2 = tx.clone();
        threads.run(move || tx2.send(0).unwrap()).unwrap();
        assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok());
        assert!(threads.shared.started.load(Ordering::SeqCst) <= 3);
    }

    #[cfg(not(target_os = "linux"))]
    const NICE_ELSEWHERE: i32 = 0;
}
