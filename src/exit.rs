//! What berth's exit status says about a failure: 1 when the input was refused (a compose file,
//! an argument, a name, a conflict found before anything changed), as Docker Compose exits;
//! [`OPERATIONAL`] when berth set out to change the host and an operation failed part way (a plan
//! step, the OCI runtime), the code `docker run` gives its own failures. Scripts can tell "fix
//! your input" from "look at the host" without reading the message. An application that exits or
//! turns unhealthy while `up` waits for it is neither: that stays Compose's 1.

use crate::container::StartFailed;
use crate::execute::StepError;
use crate::runtime::RuntimeError;

/// The input was refused.
pub const BAD_INPUT: u8 = 1;

/// An operation on the host failed part way.
pub const OPERATIONAL: u8 = 125;

/// Steps of a plan failed (or were not run because of those that failed).
#[derive(Debug, thiserror::Error)]
#[error("{}", .lines.join("\n"))]
pub struct PlanFailed {
    /// One line per failed step, and the count of skipped ones.
    pub lines: Vec<String>,
    /// An operation itself failed; otherwise only dependencies did not become ready (an
    /// application that exits or turns unhealthy: Compose's 1).
    pub operational: bool,
}

/// The exit status for `err`.
pub fn code(err: &anyhow::Error) -> u8 {
    // A one-off container whose command the runtime could not start: `docker run`'s 127 (not
    // there) or 126 (not runnable).
    let not_started = err
        .chain()
        .filter_map(|c| c.downcast_ref::<StartFailed>().filter(|s| s.oneoff))
        .find_map(|s| crate::runtime::exec_failure_code(&s.detail));
    if let Some(code) = not_started {
        return code;
    }
    let operational = err.chain().any(|c| {
        c.downcast_ref::<PlanFailed>().is_some_and(|p| p.operational)
            || matches!(c.downcast_ref::<StepError>(), Some(StepError::Failed(_)))
            || c.is::<StartFailed>()
            || matches!(
                c.downcast_ref::<RuntimeError>(),
                Some(RuntimeError::Failed { .. } | RuntimeError::Spawn { .. })
            )
    });
    if operational {
        OPERATIONAL
    } else {
        BAD_INPUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_on_the_host_are_told_from_refused_input() {
        let refused = anyhow::anyhow!("no such service: \"nope\"");
        assert_eq!(code(&refused), BAD_INPUT);
        let failed = anyhow::Error::new(PlanFailed { lines: vec!["container x-1: boom".into()], operational: true });
        assert_eq!(code(&failed.context("up")), OPERATIONAL);
        let unready = PlanFailed { lines: vec!["dependency failed to start".into()], operational: false };
        assert_eq!(code(&anyhow::Error::new(unready)), BAD_INPUT, "an application that fails is Compose's 1");
        let runtime =
            RuntimeError::Failed { runtime: "runc".into(), op: "start".into(), id: "x".into(), stderr: "".into() };
        assert_eq!(code(&anyhow::Error::new(runtime)), OPERATIONAL);
        let missing = RuntimeError::Missing { detail: "runc".into() };
        assert_eq!(code(&anyhow::Error::new(missing)), BAD_INPUT);
    }

    #[test]
    fn a_one_off_command_the_runtime_could_not_start_exits_as_with_docker_run() {
        let start = |oneoff: bool, detail: &str| {
            anyhow::Error::new(StartFailed { name: "p-app-run-1".into(), oneoff, detail: detail.into() }).context("run")
        };
        let runc =
            "runc run failed: unable to start container process: exec: \"nope\": executable file not found in $PATH";
        assert_eq!(code(&start(true, runc)), 127);
        assert_eq!(code(&start(true, "exec: \"/bin/x\": stat /bin/x: no such file or directory")), 127);
        assert_eq!(code(&start(true, "exec: \"/etc/passwd\": permission denied")), 126);
        assert_eq!(
            code(&start(true, "executable file `nope` not found in $PATH: No such file or directory")),
            127,
            "crun"
        );
        // A mount that fails is no command that was not found; `start` keeps its status.
        assert_eq!(code(&start(true, "error mounting \"/x\": no such file or directory")), OPERATIONAL);
        assert_eq!(code(&start(false, runc)), OPERATIONAL);
    }
}
