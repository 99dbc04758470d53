//! State writes that could not be made for want of space, and the rule that decides when a
//! failed write may wait.
//!
//! With the state file system full, `stop`, `kill`, `rm` and `down` still do what they are for —
//! signals reach containers and host objects are torn down — and the rows catch up later: a
//! row that says "running" for a container that is gone is corrected by the next command that
//! looks at it, and a row that outlives its container is removed by the next `rm` or `down`.
//! Only writes that fail with "no space" (or "quota exceeded") may wait; any other failure is
//! an error as before. The binary tells the user what waited.

use std::sync::Mutex;

static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether `e`, or anything it was caused by, says the file system is full.
pub fn is_out_of_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) {
                return true;
            }
        }
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = err.downcast_ref::<rusqlite::Error>() {
            if f.code == rusqlite::ErrorCode::DiskFull {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// `r`, except that a failure for want of space is noted as `what` and becomes `Ok(None)`.
pub fn or_defer<T, E>(r: Result<T, E>, what: impl FnOnce() -> String) -> Result<Option<T>, E>
where
    E: std::error::Error + 'static,
{
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_out_of_space(&e) => {
            note(what());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`or_defer`] for `anyhow` results.
pub fn or_defer_any<T>(r: anyhow::Result<T>, what: impl FnOnce() -> String) -> anyhow::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.chain().any(is_out_of_space) => {
            note(what());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Notes a write that waits.
pub fn note(what: String) {
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    if !pending.contains(&what) {
        pending.push(what);
    }
}

/// The writes that waited since the last call.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lack_of_space_waits() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(or_defer(Err::<(), _>(full), || "write".into()).unwrap().is_none());
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(or_defer(Err::<(), _>(denied), || "write".into()).is_err());
        let wrapped = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EDQUOT)).context("saving leases");
        assert!(or_defer_any(Err::<(), _>(wrapped), || "leases".into()).unwrap().is_none());
        let sqlite = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(13), None);
        assert!(is_out_of_space(&sqlite));
        let notes = take();
        assert!(notes.iter().any(|n| n.starts_with("write")) && notes.iter().any(|n| n.starts_with("leases")));
    }
}
