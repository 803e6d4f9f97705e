//! What an execution used on a batch cluster (`cai run --engine slurm`): every job it
//! submitted, how long each waited in the queue and ran, and the core-hours the cluster
//! charges (CPUs x wall), kept beside the Lambda-equivalent cost so the two can be compared
//! for the same run.

use serde::{Deserialize, Serialize};

/// The cluster side of one execution, in `summary.json` under `execution.cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterUsage {
    /// The scheduler (`slurm`).
    pub scheduler: String,
    /// Sum over the jobs of CPUs x wall hours: what an allocation is charged.
    pub core_hours: f64,
    /// Every job (or array task) the execution submitted, in submission order.
    pub jobs: Vec<ClusterJob>,
}

/// One job or array task as the scheduler and the task itself saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterJob {
    /// The scheduler's id: `ARRAY_TASK` (e.g. `1234_7`) for an array task, else the job id.
    pub job_id: String,
    /// The handler it ran (infer, summarize).
    pub handler: String,
    /// Rank, for inference.
    pub rank: Option<u64>,
    /// 1-based attempt (the Retry policy's), for inference.
    pub attempt: u32,
    /// The scheduler's last word on it (COMPLETED, FAILED, OUT_OF_MEMORY, TIMEOUT,
    /// NODE_FAIL, PREEMPTED, CANCELLED, ...).
    pub state: String,
    /// The node it ran on, once it started.
    pub node: Option<String>,
    /// CPUs allocated.
    pub cpus: u32,
    /// When the engine submitted it, Unix seconds.
    pub submitted_unix: f64,
    /// When it started (the task's own clock when it reported, else the scheduler's).
    pub started_unix: Option<f64>,
    /// When it ended.
    pub ended_unix: Option<f64>,
    /// Seconds from submission to start: the scheduler's latency plus, for array tasks
    /// held back by the array's concurrency limit, the wait for a free slot.
    pub queued_seconds: Option<f64>,
    /// Wall seconds charged: the longer of the scheduler's elapsed time (whole seconds) and
    /// the task's own measurement.
    pub wall_seconds: f64,
}

impl ClusterUsage {
    /// The usage of these jobs on `scheduler`: core-hours summed from each job's CPUs and
    /// wall seconds.
    pub fn from_jobs(scheduler: &str, jobs: Vec<ClusterJob>) -> ClusterUsage {
        let core_hours = jobs
            .iter()
            .map(|j| f64::from(j.cpus) * j.wall_seconds / 3600.0)
            .sum();
        ClusterUsage {
            scheduler: scheduler.into(),
            core_hours,
            jobs,
        }
    }

    /// Queue waits (submission to start) of the jobs that started, in seconds.
    pub fn queued_seconds(&self) -> Vec<f64> {
        self.jobs.iter().filter_map(|j| j.queued_seconds).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cpus: u32, wall: f64, queued: Option<f64>) -> ClusterJob {
        ClusterJob {
            job_id: "1_0".into(),
            handler: "infer".into(),
            rank: Some(0),
            attempt: 1,
            state: "COMPLETED".into(),
            node: Some("n1".into()),
            cpus,
            submitted_unix: 0.0,
            started_unix: None,
            ended_unix: None,
            queued_seconds: queued,
            wall_seconds: wall,
        }
    }

    #[test]
    fn core_hours_are_cpus_times_wall() {
        let u = ClusterUsage::from_jobs(
            "slurm",
            vec![job(2, 1800.0, Some(1.5)), job(1, 3600.0, None)],
        );
        assert!((u.core_hours - 2.0).abs() < 1e-12);
        assert_eq!(u.queued_seconds(), [1.5]);
        let back: ClusterUsage = serde_json::from_value(serde_json::to_value(&u).unwrap()).unwrap();
        assert_eq!(back, u);
    }
}
