//! One run per result path at a time: the lease `<result_path>/lease.json`.
//!
//! Two runs of one payload share every key under the result path (plan, items, rank results,
//! summary), so the second one's Initialize and Summarize would trample the first's. A run
//! therefore takes a lease on `<data_bucket>/<result_path>` before anything there changes, and
//! a second run on the same path is refused, naming the holder.
//!
//! # The object
//!
//! `lease.json` ([`LeaseRecord`]): the run id, who holds it (`local`: a process, with host, pid
//! and the pid's start time; `aws`: a Step Functions execution, with its ARN; `slurm` is
//! reserved for that engine), when it started, when it expires, and whether its holder renews
//! it (`renews`).
//!
//! # The protocol
//!
//! * **Acquire** ([`acquire`]): create the object only if absent (locally an exclusive create,
//!   on S3 a PUT with `If-None-Match: *`, via object_store's `PutMode::Create`); of two runs
//!   racing for a free path exactly one creates it. Then read it back: a store that checks the
//!   condition non-atomically (the S3 stand-ins) is caught when the other run's object is
//!   what is there.
//! * **Refuse**: when the object exists and is not this run's, the caller gets
//!   [`LeaseError::InUse`] naming the holder (exit 2 on the command line, `cai.RunInProgress`
//!   from Initialize), and nothing under the result path has been touched.
//! * **Take over**: only a lease whose holder is provably gone ([`LeaseRecord::gone`]: its
//!   expiry passed, or it names a process on this host that no longer exists), and only when
//!   asked (`--resume`, [`Takeover::IfStale`]); or any lease, when the user says its holder is
//!   gone (`--break-lease`, [`Takeover::Break`]). The replacement is a compare-and-swap on the
//!   version read (S3: `If-Match` on the ETag; locally under a folder lock, see
//!   `cai_store::Bucket::put_if_unchanged`), so of two runs taking over the same stale lease
//!   one wins and the other is refused, naming the winner. The new lease records whose it
//!   replaced (`took_over`).
//! * **Renew** ([`Lease::renew`]): a holder that renews (the local engine: every
//!   [`RENEW_EVERY`], for [`LOCAL_TTL`]) re-reads the lease and rewrites it only if it is still
//!   its own, with a compare-and-swap on the version it read: a renewal never overwrites a
//!   takeover. A renewal that finds the lease gone or someone else's reports
//!   [`LeaseError::Lost`].
//! * **Release** ([`Lease::release`], [`release_if_ours`]): delete the object only if it is
//!   still this run's. Locally that is atomic; on S3 it is a read, a compare and a delete
//!   guarded by a HEAD of the version read (object_store sends no conditional DELETE), which
//!   leaves a window of one request in which a `--break-lease` or a takeover of an expired
//!   lease could be deleted. Both need the holder to be gone or the user to say so, while the
//!   holder is in fact releasing, so the window is accepted.
//!
//! # Who takes it
//!
//! * The local engine (`cai run`, also with `--lambda-endpoint`) before it starts the
//!   execution, renewing it while the execution runs and releasing it at the end whatever the
//!   outcome. It passes its run id to Initialize in the execution input (`cai_lease.run_id`),
//!   and Initialize accepts a lease of that run id as its own.
//! * Initialize itself when no engine holds one (an execution started on AWS from the console,
//!   the API, or `cai aws run`): the lease names the execution ARN (`$$.Execution.Id`). An
//!   execution cannot renew from outside, so Initialize writes an expiry that covers the
//!   longest the execution can run ([`execution_ttl`]) and Summarize releases it. A retried
//!   Initialize of the same execution finds the lease of its own execution and adopts it
//!   (same run id). If the execution dies before Summarize (stopped, timed out), the lease
//!   stays until it expires; `cai aws run` asks Step Functions whether the named execution is
//!   still running, so `--resume` can take over as soon as it is not.
//!
//! # Clocks
//!
//! Expiry is the writer's wall clock; another host compares it with its own. Clock skew
//! between hosts shifts the moment a lease counts as expired by the skew, which is small next
//! to [`LOCAL_TTL`] on any host running NTP. A process that is paused (a suspended laptop)
//! for longer than [`LOCAL_TTL`] can find its lease taken over by `--resume`; its next
//! renewal then reports the loss.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cai_store::BlockingStore;
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::settings::RunSettings;

/// How long a lease renewed by a running process lasts without renewal.
pub const LOCAL_TTL: Duration = Duration::from_secs(120);

/// How often a running process renews its lease: four renewals per [`LOCAL_TTL`], so a slow
/// store or a busy machine may miss three before the lease lapses.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);

/// Largest lease object read (it is a few hundred bytes).
const MAX_LEASE_BYTES: u64 = 64 << 10;

/// Attempts at acquiring when the object keeps changing under us.
const ACQUIRE_ATTEMPTS: usize = 5;

/// What kind of holder a lease names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    /// A process on a host (the local engine): pid and host say who.
    Local,
    /// A Step Functions execution: its ARN says who.
    Aws,
    /// A Slurm job (reserved for that engine).
    Slurm,
}

/// The lease object, `<result_path>/lease.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The run holding the result path (the run id its results carry).
    pub run_id: String,
    /// What kind of holder it is.
    pub holder: HolderKind,
    /// The host the holder runs on (for a Lambda-held lease: the function's host, for
    /// information only).
    pub host: String,
    /// The holder's process id, for a local holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When that process started (Linux: clock ticks since boot, from `/proc/<pid>/stat`), so
    /// a reused pid is not mistaken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_started: Option<u64>,
    /// The execution (an ARN on AWS, the local execution's id otherwise), when one holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// True when the holder renews the lease while it runs and releases it itself (the local
    /// engine); false when it was written once for the execution's whole bound and Summarize
    /// releases it.
    pub renews: bool,
    /// When the lease was first taken (RFC 3339, UTC).
    pub started: String,
    /// Same, in Unix seconds.
    pub started_unix: u64,
    /// When it lapses unless renewed (RFC 3339, UTC).
    pub expires: String,
    /// Same, in Unix seconds.
    pub expires_unix: u64,
    /// `<data_bucket>/<result_path>`.
    pub result: String,
    /// The run whose lease this one replaced (taken over or broken), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<String>,
    /// The cai that wrote it.
    pub cai_version: String,
}

impl LeaseRecord {
    /// Who holds it, for messages: `pid 1234 on host h`, `execution arn:...`.
    pub fn holder_text(&self) -> String {
        match (self.pid, &self.execution) {
            (Some(pid), _) => format!("pid {pid} on host {}", self.host),
            (None, Some(e)) if self.holder == HolderKind::Aws => format!("execution {e}"),
            (None, Some(e)) => format!("execution {e} on host {}", self.host),
            (None, None) => format!("host {}", self.host),
        }
    }

    /// Why its holder is provably gone, or `None` while it may still be running: the expiry
    /// passed, or the pid it names on this host no longer exists (or is another process).
    pub fn gone(&self, now_unix: u64) -> Option<String> {
        if now_unix >= self.expires_unix {
            return Some(format!("its lease expired at {}", self.expires));
        }
        if let (HolderKind::Local, Some(pid)) = (self.holder, self.pid) {
            if self.host == this_host() && !process_alive(pid, self.pid_started) {
                return Some(format!("process {pid} no longer exists on {}", self.host));
            }
        }
        None
    }

    /// Whether this lease is the one a run with `run_id` (started by execution `execution`)
    /// holds: the same run id, or, for a lease an execution wrote itself, the same execution
    /// (a retried Initialize).
    pub fn is_held_by(&self, run_id: &str, execution: Option<&str>) -> bool {
        self.run_id == run_id
            || (!self.renews && execution.is_some() && self.execution.as_deref() == execution)
    }

    fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).expect("a lease serializes"))
    }
}

/// Who is taking a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    /// The kind of holder.
    pub kind: HolderKind,
    /// Its host.
    pub host: String,
    /// Its pid (a local process).
    pub pid: Option<u32>,
    /// Its execution, if any.
    pub execution: Option<String>,
    /// Whether it renews the lease while it runs.
    pub renews: bool,
    /// How long the lease lasts from now (or from a renewal).
    pub ttl: Duration,
}

impl Holder {
    /// This process, renewing every [`RENEW_EVERY`] for [`LOCAL_TTL`]: the local engine.
    pub fn this_process() -> Holder {
        Holder {
            kind: HolderKind::Local,
            host: this_host(),
            pid: Some(std::process::id()),
            execution: None,
            renews: true,
            ttl: LOCAL_TTL,
        }
    }

    /// An execution that holds the lease for `ttl` without renewing it (Initialize on its own,
    /// released by Summarize). An ARN or a Lambda environment makes it an `aws` holder.
    pub fn execution(execution: Option<String>, ttl: Duration) -> Holder {
        let on_aws = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || execution
                .as_deref()
                .is_some_and(|e| e.starts_with("arn:aws:states:"));
        Holder {
            kind: if on_aws {
                HolderKind::Aws
            } else {
                HolderKind::Local
            },
            host: this_host(),
            pid: None,
            execution,
            renews: false,
            ttl,
        }
    }

    fn record(&self, run_id: &str, result: &str, took_over: Option<String>) -> LeaseRecord {
        let now = now_unix();
        let expires = now.saturating_add(self.ttl.as_secs());
        LeaseRecord {
            run_id: run_id.to_string(),
            holder: self.kind,
            host: self.host.clone(),
            pid: self.pid,
            pid_started: self.pid.and_then(process_start),
            execution: self.execution.clone(),
            renews: self.renews,
            started: rfc3339(now),
            started_unix: now,
            expires: rfc3339(expires),
            expires_unix: expires,
            result: result.to_string(),
            took_over,
            cai_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// When an existing lease of another run may be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// Never: refuse.
    Never,
    /// When its holder is provably gone ([`LeaseRecord::gone`]): `--resume`.
    IfStale,
    /// Whatever its state (`--break-lease`): the lease of this run id only when `Some` (the one
    /// the user was shown, or that a caller found gone by other means), any lease when `None`.
    Break(Option<String>),
}

/// Why a lease could not be taken, renewed or released.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds the result path.
    #[error("{}", in_use_text(result, current, gone.as_deref()))]
    InUse {
        /// `<data_bucket>/<result_path>`.
        result: String,
        /// The holder's lease.
        current: Box<LeaseRecord>,
        /// Why its holder is provably gone, if it is.
        gone: Option<String>,
    },
    /// The lease object is there but is not a lease cai wrote.
    #[error("{result} is locked by {result}/lease.json, which is not a lease cai wrote ({reason}); remove it, or rerun with --break-lease")]
    Unreadable {
        /// `<data_bucket>/<result_path>`.
        result: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This run's lease was taken over (or removed) while it ran.
    #[error("the lease on {result} is no longer this run's: {}", match current {
        Some(c) => format!("run {} ({}) took it over at {}", c.run_id, c.holder_text(), c.started),
        None => "it was removed".to_string(),
    })]
    Lost {
        /// `<data_bucket>/<result_path>`.
        result: String,
        /// Whoever holds it now.
        current: Option<Box<LeaseRecord>>,
    },
    /// The store failed.
    #[error("lease on {result}: {message}")]
    Store {
        /// `<data_bucket>/<result_path>`.
        result: String,
        /// The store's error.
        message: String,
    },
}

fn in_use_text(result: &str, c: &LeaseRecord, gone: Option<&str>) -> String {
    match gone {
        None => format!(
            "result path {result} is in use by run {} ({}, started {}, lease valid until {}); \
             wait for it, use another result_path, or --break-lease if it is gone",
            c.run_id,
            c.holder_text(),
            c.started,
            c.expires
        ),
        Some(why) => format!(
            "result path {result} is held by run {} ({}, started {}), which is gone: {why}; \
             rerun with --resume to take it over and keep the ranks it finished, or \
             --break-lease to discard it",
            c.run_id,
            c.holder_text(),
            c.started
        ),
    }
}

/// A lease this run holds.
#[derive(Debug, Clone)]
pub struct Lease {
    store: BlockingStore,
    bucket: String,
    key: String,
    result: String,
    record: LeaseRecord,
    ttl: Duration,
}

/// What [`acquire`] got.
#[derive(Debug, Clone)]
pub struct Acquired {
    /// The lease, now this run's.
    pub lease: Lease,
    /// The lease it replaced (taken over or broken), with why its holder was gone if it was.
    pub took_over: Option<(LeaseRecord, Option<String>)>,
    /// True when the lease was already this run's (an engine's lease seen by Initialize, or a
    /// retried Initialize of the same execution).
    pub adopted: bool,
}

impl Lease {
    /// The lease as last written or read.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// The run id it is held under.
    pub fn run_id(&self) -> &str {
        &self.record.run_id
    }

    /// `<data_bucket>/<result_path>`.
    pub fn result(&self) -> &str {
        &self.result
    }

    /// Extends the lease by its time to live from now, if it is still this run's: a
    /// compare-and-swap on the version read, so it never overwrites a takeover.
    pub fn renew(&mut self) -> Result<(), LeaseError> {
        for _ in 0..ACQUIRE_ATTEMPTS {
            let Some((current, e_tag)) = self.read_current()? else {
                return Err(self.lost(None));
            };
            if current.run_id != self.record.run_id {
                return Err(self.lost(Some(current)));
            }
            let mut renewed = current.clone();
            let expires = now_unix().saturating_add(self.ttl.as_secs());
            renewed.expires_unix = expires;
            renewed.expires = rfc3339(expires);
            if self.replace(&renewed, &e_tag)? {
                self.record = renewed;
                return Ok(());
            }
        }
        Err(self.store_error("the lease kept changing while it was renewed"))
    }

    /// Deletes the lease if it is still this run's; `Ok(false)` when it is not (nothing is
    /// deleted then).
    pub fn release(self) -> Result<bool, LeaseError> {
        release_run(
            &self.store,
            &self.bucket,
            &self.key,
            &self.result,
            &self.record.run_id,
        )
    }

    fn read_current(&self) -> Result<Option<(LeaseRecord, String)>, LeaseError> {
        match read_versioned(&self.store, &self.bucket, &self.key, &self.result)? {
            None => Ok(None),
            Some((Ok(r), e_tag)) => Ok(Some((r, e_tag))),
            Some((Err(_), _)) => Err(self.lost(None)),
        }
    }

    fn replace(&self, record: &LeaseRecord, e_tag: &str) -> Result<bool, LeaseError> {
        self.store
            .bucket(&self.bucket)
            .and_then(|b| b.put_if_unchanged(&self.key, record.to_bytes(), e_tag))
            .map_err(|e| self.store_error(e))
    }

    fn lost(&self, current: Option<LeaseRecord>) -> LeaseError {
        LeaseError::Lost {
            result: self.result.clone(),
            current: current.map(Box::new),
        }
    }

    fn store_error(&self, e: impl std::fmt::Display) -> LeaseError {
        LeaseError::Store {
            result: self.result.clone(),
            message: e.to_string(),
        }
    }
}

/// Takes the lease on `<bucket>/<result_path>` for run `run_id` (see the module docs): creates
/// it if absent, adopts it if it is already this run's, replaces another run's only as
/// `takeover` allows, and otherwise refuses with [`LeaseError::InUse`].
pub fn acquire(
    store: &BlockingStore,
    bucket: &str,
    result_path: &str,
    run_id: &str,
    holder: &Holder,
    takeover: &Takeover,
) -> Result<Acquired, LeaseError> {
    let key = layout::lease_key(result_path);
    let result = format!("{bucket}/{result_path}");
    let store_error = |e: &dyn std::fmt::Display| LeaseError::Store {
        result: result.clone(),
        message: e.to_string(),
    };
    let b = store.bucket(bucket).map_err(|e| store_error(&e))?;
    let held = |record: LeaseRecord| Lease {
        store: store.clone(),
        bucket: bucket.to_string(),
        key: key.clone(),
        result: result.clone(),
        record,
        ttl: holder.ttl,
    };
    for _ in 0..ACQUIRE_ATTEMPTS {
        let mine = holder.record(run_id, &result, None);
        if b.put_if_absent(&key, mine.to_bytes())
            .map_err(|e| store_error(&e))?
        {
            // Read back: only this run's object may be there now.
            return match read_versioned(store, bucket, &key, &result)? {
                Some((Ok(r), _)) if r == mine => Ok(Acquired {
                    lease: held(mine),
                    took_over: None,
                    adopted: false,
                }),
                Some((Ok(other), _)) => Err(LeaseError::InUse {
                    gone: other.gone(now_unix()),
                    current: Box::new(other),
                    result,
                }),
                _ => continue,
            };
        }
        let Some((current, e_tag)) = read_versioned(store, bucket, &key, &result)? else {
            continue; // released between the create and the read: try again
        };
        let current = match current {
            Ok(c) => c,
            // Not a lease cai wrote: only --break-lease replaces it.
            Err(_) if *takeover == Takeover::Break(None) => {
                let replacement = holder.record(run_id, &result, None);
                if b.put_if_unchanged(&key, replacement.to_bytes(), &e_tag)
                    .map_err(|e| store_error(&e))?
                {
                    return Ok(Acquired {
                        lease: held(replacement),
                        took_over: None,
                        adopted: false,
                    });
                }
                continue;
            }
            Err(reason) => return Err(LeaseError::Unreadable { result, reason }),
        };
        if current.is_held_by(run_id, holder.execution.as_deref()) {
            return Ok(Acquired {
                lease: held(current),
                took_over: None,
                adopted: true,
            });
        }
        let gone = current.gone(now_unix());
        let allowed = match takeover {
            Takeover::Never => false,
            Takeover::IfStale => gone.is_some(),
            Takeover::Break(None) => true,
            Takeover::Break(Some(id)) => *id == current.run_id,
        };
        if !allowed {
            return Err(LeaseError::InUse {
                result,
                current: Box::new(current),
                gone,
            });
        }
        let replacement = holder.record(run_id, &result, Some(current.run_id.clone()));
        if b.put_if_unchanged(&key, replacement.to_bytes(), &e_tag)
            .map_err(|e| store_error(&e))?
        {
            return Ok(Acquired {
                lease: held(replacement),
                took_over: Some((current, gone)),
                adopted: false,
            });
        }
        // Someone else replaced or released it first: look again.
    }
    Err(LeaseError::Store {
        result: result.clone(),
        message: format!("{result}/lease.json kept changing; try again"),
    })
}

/// The lease on `<bucket>/<result_path>`, if there is one: `Ok(Err(reason))` inside when the
/// object is not a lease cai wrote.
pub fn read(
    store: &BlockingStore,
    bucket: &str,
    result_path: &str,
) -> Result<Option<Result<LeaseRecord, String>>, LeaseError> {
    let result = format!("{bucket}/{result_path}");
    Ok(read_versioned(store, bucket, &layout::lease_key(result_path), &result)?.map(|(r, _)| r))
}

/// Releases the lease on `<bucket>/<result_path>` if run `run_id` holds it (Summarize, for a
/// lease its execution's Initialize took); `Ok(false)` when it does not.
pub fn release_if_ours(
    store: &BlockingStore,
    bucket: &str,
    result_path: &str,
    run_id: &str,
) -> Result<bool, LeaseError> {
    let result = format!("{bucket}/{result_path}");
    release_run(
        store,
        bucket,
        &layout::lease_key(result_path),
        &result,
        run_id,
    )
}

fn release_run(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
    result: &str,
    run_id: &str,
) -> Result<bool, LeaseError> {
    let store_error = |e: &dyn std::fmt::Display| LeaseError::Store {
        result: result.to_string(),
        message: e.to_string(),
    };
    let Some((Ok(current), e_tag)) = read_versioned(store, bucket, key, result)? else {
        return Ok(false);
    };
    if current.run_id != run_id {
        return Ok(false);
    }
    store
        .bucket(bucket)
        .and_then(|b| b.delete_if_unchanged(key, &e_tag))
        .map_err(|e| store_error(&e))
}

/// The lease object and the version read; `None` when absent.
#[allow(clippy::type_complexity)]
fn read_versioned(
    store: &BlockingStore,
    bucket: &str,
    key: &str,
    result: &str,
) -> Result<Option<(Result<LeaseRecord, String>, String)>, LeaseError> {
    let got = store
        .bucket(bucket)
        .and_then(|b| b.get_versioned(key, MAX_LEASE_BYTES));
    let (bytes, e_tag) = match got {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(LeaseError::Store {
                result: result.to_string(),
                message: e.to_string(),
            })
        }
    };
    let e_tag = e_tag.ok_or_else(|| LeaseError::Store {
        result: result.to_string(),
        message: format!("{bucket}/{key}: the store reports no entity tag"),
    })?;
    let record = serde_json::from_slice::<LeaseRecord>(&bytes).map_err(|e| e.to_string());
    Ok(Some((record, e_tag)))
}

/// How long an execution-held lease must last: the longest the execution can run. Each rank
/// is bounded by its attempts (`1 + retry.max_attempts`, each at most `timeout_seconds`) and
/// the backoff between them, plus the throttling retries the definition allows (6 delays of
/// at most 60 s) and one more Lambda timeout of slack; ranks run in waves of at most
/// [`ASSUMED_CONCURRENCY`] (fewer when `max_concurrency` says so): Initialize cannot see the
/// account's Lambda concurrency, which bounds the Map (and to which `cai aws run` lowers
/// `max_concurrency`), so it assumes the smallest default quota; Initialize, Summarize and the
/// failure handler are Lambdas of at most 15 minutes with 3 retries each; plus a margin.
/// Capped at Step Functions' longest execution (one year).
///
/// The estimate errs long on purpose: an expiry that passed while the execution still runs
/// would let `--resume` take over a live run, while one that lasts too long only keeps a
/// crashed execution's lease in place, which `cai aws run --resume` sees through anyway (it
/// asks Step Functions whether the execution still runs) and `--break-lease` removes.
pub fn execution_ttl(run: &RunSettings, ranks_with_data: u64) -> Duration {
    const LAMBDA_MAX: u64 = 900;
    let r = &run.retry;
    let attempts = 1 + r.max_attempts;
    let mut backoff = 0f64;
    let mut delay = r.interval_seconds as f64;
    for _ in 0..r.max_attempts {
        let d = r
            .max_delay_seconds
            .map_or(delay, |cap| delay.min(cap as f64));
        backoff += d;
        delay *= r.backoff_rate.max(1.0);
    }
    let throttling = 6 * 60;
    let per_rank = attempts * run.timeout_seconds + backoff.ceil() as u64 + throttling + LAMBDA_MAX;
    let concurrency = match run.max_concurrency {
        0 => ASSUMED_CONCURRENCY,
        n => n.min(ASSUMED_CONCURRENCY),
    };
    let waves = ranks_with_data.div_ceil(concurrency).max(1);
    let bookkeeping = 2 * 4 * LAMBDA_MAX;
    let margin = 15 * 60;
    let secs = waves
        .saturating_mul(per_rank)
        .saturating_add(bookkeeping + margin)
        .min(365 * 24 * 3600);
    Duration::from_secs(secs)
}

/// Concurrent Lambda invocations an execution's lease assumes at most: the concurrency quota
/// AWS gives new accounts (10; the usual default is 1,000).
pub const ASSUMED_CONCURRENCY: u64 = 10;

/// A run id unique enough to tell executions apart under one result path: start time in
/// nanoseconds and the process id.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This machine's host name.
pub fn this_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it (or
    // truncates, which the search for NUL below tolerates).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` exists and, when `started` is known, is the same process (not a
/// later one that reused the pid).
pub fn process_alive(pid: u32, started: Option<u64>) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let exists = unsafe { libc::kill(pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    match (started, process_start(pid)) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`);
/// `None` where there is no `/proc` or the process has gone (a zombie still has it).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: start after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Unix seconds as RFC 3339 UTC (`2025-01-31T12:00:00Z`).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id();
        let started = process_start(pid);
        assert!(started.is_some());
        assert!(process_alive(pid, started));
        assert!(!process_alive(pid, started.map(|s| s + 1)));
        assert!(!process_alive(u32::MAX, None));
    }

    #[test]
    fn an_execution_lease_covers_the_longest_run() {
        let run = crate::Payload::parse(
            r#"{"bucket":"bkt","S3_object_name":"m","batch_size":1,"result_path":"r","data_bucket":"bkt","data_prefix":"p"}"#,
        )
        .unwrap()
        .settings;
        // 3 attempts of 900 s, 1 + 2 s of backoff, throttling and one Lambda of slack.
        let per_rank = 3 * 900 + 3 + 360 + 900;
        let fixed = 8 * 900 + 900;
        assert_eq!(execution_ttl(&run, 10).as_secs(), per_rank + fixed);
        assert_eq!(execution_ttl(&run, 100).as_secs(), 10 * per_rank + fixed);
        let five = RunSettings {
            max_concurrency: 5,
            ..run.clone()
        };
        assert_eq!(execution_ttl(&five, 100).as_secs(), 20 * per_rank + fixed);
        let thousand = RunSettings {
            max_concurrency: 1000,
            ..run.clone()
        };
        assert_eq!(
            execution_ttl(&thousand, 100).as_secs(),
            10 * per_rank + fixed
        );
        let one_at_a_time = RunSettings {
            max_concurrency: 1,
            ..run
        };
        assert_eq!(
            execution_ttl(&one_at_a_time, 100_000).as_secs(),
            365 * 24 * 3600
        );
    }
}
