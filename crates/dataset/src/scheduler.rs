//! `--shard auto`: which of N shards this process is, read from the environment of the
//! scheduler that started it — a Kubernetes Indexed Job or a Slurm job array — so that one
//! command line serves every worker.

use std::str::FromStr;

use crate::error::{DatasetError, Result};
use crate::listing::Shard;

/// Kubernetes sets this to the pod's index in an Indexed Job (`0..completions`).
pub const KUBERNETES_INDEX: &str = "JOB_COMPLETION_INDEX";
/// Kubernetes does not tell a pod how many indexes there are: the Job manifest sets this to
/// its `completions`.
pub const KUBERNETES_SHARDS: &str = "FEATX_SHARDS";
/// Slurm sets this to the array task's id.
pub const SLURM_TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
/// Slurm sets this to the number of tasks in the array.
pub const SLURM_TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// Slurm sets this to the array's first task id (`--array=1-8` starts at 1).
pub const SLURM_TASK_MIN: &str = "SLURM_ARRAY_TASK_MIN";
/// Slurm sets this to the array's last task id.
pub const SLURM_TASK_MAX: &str = "SLURM_ARRAY_TASK_MAX";
/// Slurm sets this to the step between task ids (`--array=0-14:2`).
pub const SLURM_TASK_STEP: &str = "SLURM_ARRAY_TASK_STEP";

/// What every scheduler error names, so that a missing variable is easy to spot.
const LOOKED_FOR: &str = "JOB_COMPLETION_INDEX with FEATX_SHARDS (Kubernetes Indexed Job), \
                          or SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT and \
                          SLURM_ARRAY_TASK_MIN (Slurm job array)";

/// The value of `--shard`: a fixed slice `I/N`, or `auto` to ask the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// `--shard I/N`.
    Fixed(Shard),
    /// `--shard auto`.
    Auto,
}

impl FromStr for ShardSpec {
    type Err = DatasetError;

    fn from_str(s: &str) -> Result<Self> {
        if s == "auto" {
            Ok(ShardSpec::Auto)
        } else {
            s.parse().map(ShardSpec::Fixed)
        }
    }
}

/// Where a shard came from, for the message that says which one a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSource {
    /// Given on the command line.
    Fixed,
    /// A Kubernetes Indexed Job's pod.
    Kubernetes,
    /// A Slurm job array's task (its id).
    Slurm {
        /// `SLURM_ARRAY_TASK_ID`.
        task_id: usize,
    },
}

impl std::fmt::Display for ShardSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardSource::Fixed => write!(f, "--shard"),
            ShardSource::Kubernetes => write!(f, "Kubernetes Indexed Job ({KUBERNETES_INDEX})"),
            ShardSource::Slurm { task_id } => write!(f, "Slurm array task {task_id}"),
        }
    }
}

impl ShardSpec {
    /// The shard, taking `auto` from this process's environment.
    pub fn resolve(self) -> Result<(Shard, ShardSource)> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// The shard, taking `auto` from `env` (a variable's value by name).
    pub fn resolve_with(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Shard, ShardSource)> {
        match self {
            ShardSpec::Fixed(shard) => Ok((shard, ShardSource::Fixed)),
            ShardSpec::Auto => from_scheduler(&env),
        }
    }
}

fn fail(reason: String) -> DatasetError {
    DatasetError::Scheduler {
        reason,
        looked_for: LOOKED_FOR,
    }
}

/// A variable's value as a number; `None` when unset or empty.
fn number(env: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| fail(format!("{name}={v:?} is not a whole number"))),
    }
}

fn required(env: &impl Fn(&str) -> Option<String>, name: &str, why: &str) -> Result<usize> {
    number(env, name)?.ok_or_else(|| fail(format!("{name} is not set ({why})")))
}

fn from_scheduler(env: &impl Fn(&str) -> Option<String>) -> Result<(Shard, ShardSource)> {
    let kubernetes = number(env, KUBERNETES_INDEX)?;
    let slurm = number(env, SLURM_TASK_ID)?;
    match (kubernetes, slurm) {
        (Some(k), Some(s)) => Err(fail(format!(
            "both {KUBERNETES_INDEX}={k} and {SLURM_TASK_ID}={s} are set: unset the one that \
             does not belong to this job"
        ))),
        (Some(index), None) => kubernetes_shard(env, index),
        (None, Some(task_id)) => slurm_shard(env, task_id),
        (None, None) => Err(fail("no scheduler index is set".into())),
    }
}

fn kubernetes_shard(
    env: &impl Fn(&str) -> Option<String>,
    index: usize,
) -> Result<(Shard, ShardSource)> {
    let count = required(
        env,
        KUBERNETES_SHARDS,
        "the Job manifest must set it to spec.completions",
    )?;
    if index >= count {
        return Err(fail(format!(
            "{KUBERNETES_INDEX}={index} is not below {KUBERNETES_SHARDS}={count}: set \
             FEATX_SHARDS to the Job's completions"
        )));
    }
    Ok((Shard { index, count }, ShardSource::Kubernetes))
}

fn slurm_shard(
    env: &impl Fn(&str) -> Option<String>,
    task_id: usize,
) -> Result<(Shard, ShardSource)> {
    let count = required(env, SLURM_TASK_COUNT, "Slurm sets it for job arrays")?;
    let min = required(env, SLURM_TASK_MIN, "Slurm sets it for job arrays")?;
    let step = number(env, SLURM_TASK_STEP)?.unwrap_or(1);
    let contiguous = format!(
        "submit the array as one range, e.g. --array={min}-{}",
        min + count.saturating_sub(1)
    );
    if count == 0 || step == 0 {
        return Err(fail(format!(
            "{SLURM_TASK_COUNT}={count} and {SLURM_TASK_STEP}={step} must be at least 1"
        )));
    }
    if let Some(max) = number(env, SLURM_TASK_MAX)?
        && max.checked_sub(min) != Some((count - 1) * step)
    {
        return Err(fail(format!(
            "the array {min}..={max} with {count} tasks is not a range with step {step}: {contiguous}"
        )));
    }
    let index = task_id
        .checked_sub(min)
        .filter(|offset| offset % step == 0)
        .map(|offset| offset / step)
        .filter(|&index| index < count)
        .ok_or_else(|| {
            fail(format!(
                "{SLURM_TASK_ID}={task_id} is not one of the {count} tasks from \
                 {SLURM_TASK_MIN}={min} in steps of {step}: {contiguous}"
            ))
        })?;
    if let Some(n) = number(env, KUBERNETES_SHARDS)?
        && n != count
    {
        return Err(fail(format!(
            "{KUBERNETES_SHARDS}={n} disagrees with {SLURM_TASK_COUNT}={count}"
        )));
    }
    Ok((Shard { index, count }, ShardSource::Slurm { task_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(vars: &[(&str, &str)]) -> Result<(Shard, ShardSource)> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ShardSpec::Auto
            .resolve_with(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn shard(index: usize, count: usize) -> Shard {
        Shard { index, count }
    }

    #[test]
    fn auto_and_fixed_specs_parse() {
        assert_eq!("auto".parse::<ShardSpec>().unwrap(), ShardSpec::Auto);
        assert_eq!(
            "1/3".parse::<ShardSpec>().unwrap(),
            ShardSpec::Fixed(shard(1, 3))
        );
        assert!("Auto".parse::<ShardSpec>().is_err());
        let fixed = ShardSpec::Fixed(shard(2, 5))
            .resolve_with(|_| None)
            .unwrap();
        assert_eq!(fixed, (shard(2, 5), ShardSource::Fixed));
    }

    #[test]
    fn kubernetes_indexed_jobs_give_index_and_count() {
        let got = auto(&[("JOB_COMPLETION_INDEX", "3"), ("FEATX_SHARDS", "8")]).unwrap();
        assert_eq!(got, (shard(3, 8), ShardSource::Kubernetes));
        let err = auto(&[("JOB_COMPLETION_INDEX", "3")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FEATX_SHARDS is not set"), "{err}");
        let err = auto(&[("JOB_COMPLETION_INDEX", "8"), ("FEATX_SHARDS", "8")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JOB_COMPLETION_INDEX=8 is not below FEATX_SHARDS=8"),
            "{err}"
        );
        let err = auto(&[("JOB_COMPLETION_INDEX", "x"), ("FEATX_SHARDS", "8")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"x\" is not a whole number"), "{err}");
    }

    #[test]
    fn slurm_arrays_count_from_their_first_task_in_steps() {
        let slurm = |id: &str, min: &str, max: &str, step: &str| {
            auto(&[
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", min),
                ("SLURM_ARRAY_TASK_MAX", max),
                ("SLURM_ARRAY_TASK_STEP", step),
            ])
        };
        assert_eq!(
            slurm("0", "0", "3", "1").unwrap(),
            (shard(0, 4), ShardSource::Slurm { task_id: 0 })
        );
        assert_eq!(slurm("4", "1", "4", "1").unwrap().0, shard(3, 4));
        assert_eq!(slurm("16", "10", "16", "2").unwrap().0, shard(3, 4));
        for (id, min, max, step) in [
            ("5", "1", "4", "1"),    // beyond the last task
            ("0", "1", "4", "1"),    // before the first
            ("11", "10", "16", "2"), // between steps
            ("3", "0", "7", "1"),    // a list, not a range (0,1,2,7)
        ] {
            let err = slurm(id, min, max, step).unwrap_err().to_string();
            assert!(err.contains("--array="), "{id} {min}-{max}:{step}: {err}");
        }
        // Without MAX and STEP (older Slurm) the range is taken as contiguous.
        let bare = auto(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ]);
        assert_eq!(bare.unwrap().0, shard(2, 3));
        let err = auto(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_MIN is not set"), "{err}");
        let err = auto(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("FEATX_SHARDS", "4"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("FEATX_SHARDS=4 disagrees"), "{err}");
    }

    #[test]
    fn a_missing_or_ambiguous_environment_names_what_was_looked_for() {
        for vars in [
            &[][..],
            &[
                ("JOB_COMPLETION_INDEX", "1"),
                ("FEATX_SHARDS", "2"),
                ("SLURM_ARRAY_TASK_ID", "1"),
            ][..],
        ] {
            let err = auto(vars).unwrap_err();
            assert!(matches!(err, DatasetError::Scheduler { .. }), "{err}");
            let text = err.to_string();
            for name in [
                "JOB_COMPLETION_INDEX",
                "FEATX_SHARDS",
                "SLURM_ARRAY_TASK_ID",
                "SLURM_ARRAY_TASK_COUNT",
                "SLURM_ARRAY_TASK_MIN",
            ] {
                assert!(text.contains(name), "{text}");
            }
        }
    }
}
