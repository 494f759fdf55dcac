//! The worker pool: independent jobs (random cases, bundled scenarios, the
//! rows of `reparent kernel`) on N threads, their results handed back in
//! job order.
//!
//! Every job builds and tears down a sandbox of its own, so jobs share
//! nothing but the CPUs; what must not depend on the number of threads is
//! the *report*. The pool therefore numbers jobs, lets them finish in any
//! order, and releases each result only once every earlier one has been
//! released: the consumer sees exactly what a single thread would have
//! given it. A job whose result says "nothing after me matters" (a failing
//! random case) stops later jobs from starting, but never earlier ones, so
//! the first such job in job order is always seen.
//!
//! A sandbox helper dies with the thread that spawned it
//! (`PR_SET_PDEATHSIG`, see `sys::os::link_to_spawner`), so a job must own
//! its sandbox from start to end on the worker thread that runs it; every
//! job here does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// The results of the jobs, in job order (see [`ordered`]).
pub struct InOrder<'a, R> {
    rx: mpsc::Receiver<(usize, R)>,
    /// Results that finished before an earlier one.
    early: BTreeMap<usize, R>,
    next: usize,
    /// No result at or after this index is released.
    limit: &'a AtomicUsize,
    /// Set once the consumer wants nothing more: no job starts after it.
    cancelled: &'a AtomicBool,
}

impl<R> InOrder<'_, R> {
    /// The consumer wants no more results: jobs not yet started never
    /// start (those running finish). Returning from the consumer does the
    /// same.
    pub fn stop(&mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
}

impl<R> Iterator for InOrder<'_, R> {
    type Item = (usize, R);

    fn next(&mut self) -> Option<(usize, R)> {
        loop {
            // A stopping job sets the limit before its result is sent, so
            // it is known here by the time that result is.
            if self.next >= self.limit.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(r) = self.early.remove(&self.next) {
                self.next += 1;
                return Some((self.next - 1, r));
            }
            let (i, r) = self.rx.recv().ok()?;
            self.early.insert(i, r);
        }
    }
}

/// How many workers a pool runs, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workers {
    /// Worker threads (no more than there are jobs).
    pub jobs: usize,
    /// Keep each worker on a CPU of its own when there are at least as
    /// many workers as CPUs (see [`Workers::cpus`]).
    pub one_cpu_each: bool,
}

impl From<usize> for Workers {
    /// `jobs` workers, left where the scheduler puts them.
    fn from(jobs: usize) -> Workers {
        Workers { jobs, one_cpu_each: false }
    }
}

impl Workers {
    /// The CPU each worker of a pool of `count` jobs is kept on, by worker
    /// number modulo the list; empty when they are left to the scheduler.
    ///
    /// Workers are kept on one CPU each only with [`Workers::one_cpu_each`],
    /// when this thread may use more than one CPU, and when every one of
    /// those CPUs gets a worker. A worker's affinity is inherited by
    /// everything its sandboxes start — the sandbox server, the helpers,
    /// every PID 1 and node — so a case's whole chain of processes, which
    /// wake one another a few hundred times per case, runs on one CPU:
    /// no wake-up crosses CPUs, and a worker's next sandbox and its last
    /// one's teardown fill the moments its case waits. Measured on this
    /// project's 2-core VM (`check --cases 3000 --seed 42 --jobs 2`, one
    /// alternated pair): 8.4 s spread, 6.0 s kept, with 22% less CPU. With fewer workers than CPUs
    /// a worker's set-up and teardown use the idle CPUs instead, so they
    /// are not kept (`--jobs 1` on one CPU: as fast as spread, idling a
    /// core).
    pub fn cpus(&self, count: usize) -> Vec<usize> {
        if !self.one_cpu_each {
            return Vec::new();
        }
        let cpus = crate::sys::os::thread_cpus();
        if cpus.len() > 1 && self.jobs.clamp(1, count.max(1)) >= cpus.len() {
            cpus
        } else {
            Vec::new()
        }
    }
}

/// Runs `job(0)` .. `job(count - 1)` on `jobs` threads and gives `consume`
/// their results in job order. Once a result for which `stops` is true is
/// known, no job after it starts, and none after it is released (whatever
/// started already is run and dropped). When `consume` returns, jobs not yet
/// started are not started, and the pool waits for those running.
pub fn ordered<R: Send, O>(
    count: usize,
    jobs: impl Into<Workers>,
    job: impl Fn(usize) -> R + Sync,
    stops: impl Fn(&R) -> bool + Sync,
    consume: impl FnOnce(&mut InOrder<'_, R>) -> O,
) -> O {
    run(count, jobs.into(), job, None::<fn(usize)>, stops, consume)
}

/// [`ordered`], where each worker claims its next job before it runs the
/// current one and calls `ahead` with that next job's index first, on the
/// thread that will run it: a job can be prepared while the one before it
/// runs (`sys::client::build_ahead`). Which worker runs which job changes;
/// the results, and what is released, do not.
///
/// Jobs must not wait for one another: a job claimed ahead does not start
/// until the one before it on its worker ends.
pub fn ordered_ahead<R: Send, O>(
    count: usize,
    jobs: impl Into<Workers>,
    job: impl Fn(usize) -> R + Sync,
    ahead: impl Fn(usize) + Sync,
    stops: impl Fn(&R) -> bool + Sync,
    consume: impl FnOnce(&mut InOrder<'_, R>) -> O,
) -> O {
    run(count, jobs.into(), job, Some(ahead), stops, consume)
}

fn run<R: Send, O>(
    count: usize,
    workers: Workers,
    job: impl Fn(usize) -> R + Sync,
    ahead: Option<impl Fn(usize) + Sync>,
    stops: impl Fn(&R) -> bool + Sync,
    consume: impl FnOnce(&mut InOrder<'_, R>) -> O,
) -> O {
    let next = AtomicUsize::new(0);
    // Jobs at or after this index do not start.
    let limit = AtomicUsize::new(count);
    let cancelled = AtomicBool::new(false);
    let cpus = workers.cpus(count);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for w in 0..workers.jobs.clamp(1, count.max(1)) {
            let tx = tx.clone();
            let cpu = (!cpus.is_empty()).then(|| cpus[w % cpus.len()]);
            let (next, limit, cancelled, job, ahead, stops) = (&next, &limit, &cancelled, &job, ahead.as_ref(), &stops);
            scope.spawn(move || {
                // Only speed depends on it: should the kernel refuse, the
                // worker runs wherever it is put.
                if let Some(cpu) = cpu {
                    let _ = crate::sys::os::bind_thread_to_cpu(cpu);
                }
                let open = |i: usize| i < limit.load(Ordering::SeqCst) && !cancelled.load(Ordering::SeqCst);
                let mut claimed = None;
                loop {
                    let i = claimed.take().unwrap_or_else(|| next.fetch_add(1, Ordering::SeqCst));
                    if !open(i) {
                        break;
                    }
                    // With `ahead`, the next job is claimed now and run
                    // after job `i`: a claimed job is run unless the limit
                    // or a cancellation passes it by.
                    if let Some(ahead) = ahead {
                        let upcoming = next.fetch_add(1, Ordering::SeqCst);
                        if open(upcoming) {
                            ahead(upcoming);
                        }
                        claimed = Some(upcoming);
                    }
                    let r = job(i);
                    if stops(&r) {
                        limit.fetch_min(i + 1, Ordering::SeqCst);
                    }
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
                // The sandboxes this thread made ahead or closed in the
                // background are gone before the pool returns.
                crate::sys::client::finish_thread();
            });
        }
        drop(tx);
        let mut results = InOrder { rx, early: BTreeMap::new(), next: 0, limit: &limit, cancelled: &cancelled };
        let out = consume(&mut results);
        results.stop();
        drop(results);
        out
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use super::*;

    /// A latch the jobs wait on, so that they finish in the order a test
    /// needs without any sleep. The deadline only turns a bug that never
    /// opens it into a failure.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        cv: Condvar,
    }

    impl Gate {
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.cv.notify_all();
        }

        fn wait(&self) {
            let open = self.open.lock().unwrap();
            let (_open, timeout) = self.cv.wait_timeout_while(open, Duration::from_secs(10), |open| !*open).unwrap();
            assert!(!timeout.timed_out(), "the gate never opened");
        }
    }

    #[test]
    fn jobs_named_ahead_run_on_the_worker_that_named_them_and_results_stay_in_order() {
        for jobs in [1, 3] {
            let named: Mutex<Vec<(usize, std::thread::ThreadId)>> = Mutex::default();
            let ran: Mutex<Vec<(usize, std::thread::ThreadId)>> = Mutex::default();
            let got: Vec<(usize, usize)> = ordered_ahead(
                20,
                jobs,
                |i| {
                    ran.lock().unwrap().push((i, std::thread::current().id()));
                    i * 2
                },
                |i| named.lock().unwrap().push((i, std::thread::current().id())),
                |r| *r == 14,
                |r| r.collect(),
            );
            assert_eq!(got, (0..=7).map(|i| (i, i * 2)).collect::<Vec<_>>(), "jobs {jobs}");
            let ran = ran.into_inner().unwrap();
            for (i, t) in named.into_inner().unwrap() {
                // A job named ahead is run by the worker that named it, or
                // not at all (passed by the stop at job 7).
                match ran.iter().find(|(j, _)| *j == i) {
                    Some((_, by)) => assert_eq!(*by, t, "job {i} (jobs {jobs})"),
                    None => assert!(i > 7, "job {i} was named and never run (jobs {jobs})"),
                }
            }
        }
    }

    #[test]
    fn results_come_in_job_order_whatever_order_they_finish_in() {
        for jobs in [2, 5] {
            // Job 0 finishes last: it waits until job 1 is done, which
            // another worker runs.
            let one_done = Gate::default();
            let got: Vec<(usize, usize)> = ordered(
                10,
                jobs,
                |i| {
                    match i {
                        0 => one_done.wait(),
                        1 => one_done.open(),
                        _ => {}
                    }
                    i * i
                },
                |_| false,
                |r| r.collect(),
            );
            assert_eq!(got, (0..10).map(|i| (i, i * i)).collect::<Vec<_>>(), "jobs={jobs}");
        }
        let got: Vec<(usize, usize)> = ordered(10, 1, |i| i * i, |_| false, |r| r.collect());
        assert_eq!(got, (0..10).map(|i| (i, i * i)).collect::<Vec<_>>(), "jobs=1");
    }

    #[test]
    fn a_stopping_job_stops_later_ones_but_every_earlier_one_is_seen() {
        let started = AtomicUsize::new(0);
        // Six workers: jobs 0..3 wait until the stopping job 4 is done, so
        // it finishes first and the earlier ones after it.
        let stopper_done = Gate::default();
        let got: Vec<usize> = ordered(
            1000,
            6,
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                if i < 4 {
                    stopper_done.wait();
                }
                i
            },
            |&i| {
                if i == 4 {
                    stopper_done.open();
                }
                i == 4 || i == 6
            },
            |r| r.map(|(_, i)| i).collect(),
        );
        assert_eq!(got, [0, 1, 2, 3, 4], "nothing after the first stopping job is released");
        assert!(started.load(Ordering::SeqCst) < 20, "jobs kept starting after a stop");
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_pool() {
        let started = AtomicUsize::new(0);
        // Jobs after the third wait until the consumer has what it wants.
        let consumed = Gate::default();
        let first: Vec<usize> = ordered(
            1000,
            2,
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                if i >= 3 {
                    consumed.wait();
                }
                i
            },
            |_| false,
            |r| {
                let first = r.by_ref().take(3).map(|(_, i)| i).collect();
                r.stop();
                consumed.open();
                first
            },
        );
        assert_eq!(first, [0, 1, 2]);
        // 0, 1 and 2, and the one job each of the two workers had begun.
        assert!(started.load(Ordering::SeqCst) <= 5, "jobs kept starting after the consumer stopped");
    }

    /// With `one_cpu_each` and a worker for every CPU, each worker runs on
    /// one CPU and together they cover them all; without it, or with fewer
    /// workers than CPUs, every worker keeps the CPUs of the thread that
    /// made the pool. (Each job waits until all have started, so each
    /// worker runs exactly one.)
    #[test]
    fn workers_are_kept_on_a_cpu_each_only_when_every_cpu_gets_one() {
        let all = crate::sys::os::thread_cpus();
        assert!(!all.is_empty(), "sched_getaffinity");
        let seen = |w: Workers| -> Vec<Vec<usize>> {
            let barrier = std::sync::Barrier::new(w.jobs);
            ordered(
                w.jobs,
                w,
                |_| {
                    barrier.wait();
                    crate::sys::os::thread_cpus()
                },
                |_| false,
                |r| r.map(|(_, cpus)| cpus).collect(),
            )
        };
        let n = all.len();
        let kept = seen(Workers { jobs: n, one_cpu_each: true });
        if n > 1 {
            assert!(kept.iter().all(|c| c.len() == 1), "one CPU each: {kept:?}");
            let mut got: Vec<usize> = kept.iter().map(|c| c[0]).collect();
            got.sort_unstable();
            assert_eq!(got, all, "every CPU gets a worker");
            assert_eq!(seen(Workers { jobs: n - 1, one_cpu_each: true }), vec![all.clone(); n - 1], "fewer workers");
        } else {
            // One CPU: nothing to choose between.
            assert_eq!(kept, vec![all.clone()]);
        }
        assert_eq!(seen(Workers { jobs: n, one_cpu_each: false }), vec![all.clone(); n], "left to the scheduler");
        assert_eq!(crate::sys::os::thread_cpus(), all, "the caller's own CPUs are untouched");
    }
}
