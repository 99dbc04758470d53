//! Container log files: Docker's `json-file` format, one JSON object per line
//! (`{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}`), rotated by size
//! (`container.log` → `container.log.1` → ... up to `max-file` files). Lines longer than 16 KiB
//! are split, like Docker does; a last line without a newline is written when the stream ends.
//! `logging.driver` `json-file` (the default) and `local` both write this log; `none` keeps
//! nothing (attached clients still see the output); `syslog` and `journald` write it and send
//! each line to the host's log service too (see [`super::forward`]).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::container::{ContainerConfig, LogOptions};

/// Output stream of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (or the terminal).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

const MAX_LINE: usize = 16 * 1024;

/// The logging driver a container was made with (`logging.driver` of its service), `json-file`
/// when its service names none.
pub fn driver(config: &ContainerConfig) -> &str {
    config.service.get("logging").and_then(|l| l.get("driver")).and_then(|d| d.as_str()).unwrap_or("json-file")
}

/// Whether the container's output is kept, to be read by `logs` (not with the `none` driver).
pub fn readable(config: &ContainerConfig) -> bool {
    driver(config) != "none"
}

/// Appends log lines to a container's log file, rotating it.
pub struct LogWriter {
    path: PathBuf,
    /// None with the `none` driver: nothing is written.
    file: Option<File>,
    size: u64,
    opts: LogOptions,
    partial: [Vec<u8>; 2],
    /// Where each line goes besides the file (`syslog`, `journald`).
    forward: Option<super::forward::Forwarder>,
}

impl LogWriter {
    /// Opens (appending) the log file at `path`.
    pub fn open(path: &Path, opts: LogOptions) -> io::Result<LogWriter> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        // Logs hold what containers print, secrets included: root's alone.
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            opts,
            partial: [Vec::new(), Vec::new()],
            forward: None,
        })
    }

    /// The writer of a container's log at `path`, as its logging driver asks: the `none`
    /// driver's discards everything (and makes no file); `syslog`'s and `journald`'s send each
    /// line on too, when the host's socket can be reached.
    pub fn for_container(
        path: &Path,
        config: &ContainerConfig,
        source: super::forward::Source,
    ) -> io::Result<LogWriter> {
        if readable(config) {
            let mut w = LogWriter::open(path, config.log)?;
            let target = super::forward::target(&config.service).ok().flatten();
            w.forward = target.and_then(|t| super::forward::Forwarder::connect(t, source));
            return Ok(w);
        }
        Ok(LogWriter {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            opts: config.log,
            partial: [Vec::new(), Vec::new()],
            forward: None,
        })
    }

    /// Writes what a stream produced: complete lines now, the rest when its line ends.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl + 1;
            self.record(stream, &buf[start..end])?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.record(stream, &buf[start..start + MAX_LINE])?;
            start += MAX_LINE;
        }
        self.partial[idx] = buf[start..].to_vec();
        Ok(())
    }

    /// Writes unfinished lines (at the end of the streams).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                self.record(stream, &rest)?;
            }
        }
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    fn record(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let now = crate::state::now_nanos();
        if let Some(f) = &self.forward {
            f.send(stream, line, now);
        }
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": stream.name(),
            "time": format_rfc3339(now),
        });
        let mut text = entry.to_string();
        text.push('\n');
        if self.opts.max_size > 0 && self.size > 0 && self.size + text.len() as u64 > self.opts.max_size {
            self.rotate()?;
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(text.as_bytes())?;
        }
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.opts.max_file.max(1);
        if keep == 1 {
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        // Absent until the log has rotated that often; one that stays is replaced by the rename below.
        let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
        for i in (1..keep - 1).rev() {
            // Absent files are the usual case before the log has rotated that often.
            let _ = std::fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = Some(OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

/// `container.log.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One line of a log file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct LogEntry {
    /// The text, with its newline when it had one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

impl LogEntry {
    /// The timestamp in Unix nanoseconds.
    pub fn nanos(&self) -> i64 {
        parse_rfc3339(&self.time).unwrap_or(0)
    }
}

/// Every entry of a container's log files, oldest first.
pub fn read_all(path: &Path, max_file: u32) -> Vec<LogEntry> {
    let mut out = Vec::new();
    for i in (1..max_file.max(1)).rev() {
        if let Ok(f) = File::open(rotated(path, i)) {
            read_lines(BufReader::new(f), &mut out);
        }
    }
    if let Ok(f) = File::open(path) {
        read_lines(BufReader::new(f), &mut out);
    }
    out
}

fn read_lines(r: impl BufRead, out: &mut Vec<LogEntry>) {
    for line in r.lines().map_while(Result::ok) {
        if let Ok(e) = serde_json::from_str(&line) {
            out.push(e);
        }
    }
}

/// Follows the current log file from its end (or from `offset`), across rotations.
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pending: Vec<u8>,
}

impl LogFollower {
    /// Starts following `path` at its current end.
    pub fn at_end(path: &Path) -> LogFollower {
        let mut f = LogFollower { path: path.to_path_buf(), file: None, ino: 0, pending: Vec::new() };
        if let Ok(mut file) = File::open(path) {
            // A file that cannot seek is read from its start: old lines again, nothing lost.
            let _ = file.seek(SeekFrom::End(0));
            f.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
            f.file = Some(file);
        }
        f
    }

    /// New complete entries since the last call.
    pub fn poll(&mut self) -> Vec<LogEntry> {
        let mut out = Vec::new();
        self.drain(&mut out);
        // Rotated (or created): finish the old file above, then continue with the new one.
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if current.is_some() && current != Some(self.ino) {
            if let Ok(file) = File::open(&self.path) {
                self.ino = current.unwrap_or(0);
                self.file = Some(file);
                self.pending.clear();
                self.drain(&mut out);
            }
        }
        out
    }

    fn drain(&mut self, out: &mut Vec<LogEntry>) {
        let Some(f) = self.file.as_mut() else { return };
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        self.pending.extend_from_slice(&buf);
        while let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            if let Ok(e) = serde_json::from_slice(&line) {
                out.push(e);
            }
        }
    }
}

/// Formats Unix nanoseconds as RFC 3339 in UTC with nine fractional digits.
pub fn format_rfc3339(nanos: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Parses RFC 3339 (`2024-01-02T03:04:05[.fff][Z|±hh:mm]`) into Unix nanoseconds; a space may
/// stand for the `T`, and a time without an offset is UTC.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let mut text = s.replacen(' ', "T", 1);
    let (_, clock) = text.split_once(['T', 't'])?;
    if !clock.contains(['Z', 'z', '+', '-']) {
        text.push('Z');
    }
    let t = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        let t = 1_700_000_000_123_456_789;
        let s = format_rfc3339(t);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20+01:00"), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    }

    #[test]
    fn lines_partials_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path, LogOptions { max_size: 300, max_file: 3 }).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nworld").unwrap();
        w.flush().unwrap();
        let e = read_all(&path, 3);
        let got: Vec<(&str, &str)> = e.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(got, vec![("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "world")]);
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "max-file 3 keeps three files");
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        }
        let e = read_all(&path, 3);
        assert_eq!(e.last().unwrap().log, "line 39\n");
        let nums: Vec<usize> = e.iter().filter_map(|e| e.log.trim().strip_prefix("line ")?.parse().ok()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "oldest first, in order: {nums:?}");
    }

    #[test]
    fn the_none_driver_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = |driver: Option<&str>| ContainerConfig {
            log: LogOptions::default(),
            service: match driver {
                Some(d) => serde_json::json!({"image": "x", "logging": {"driver": d}}),
                None => serde_json::json!({"image": "x"}),
            },
            ..ContainerConfig::default()
        };
        assert_eq!(driver(&config(None)), "json-file");
        for (d, kept) in [(None, true), (Some("json-file"), true), (Some("local"), true), (Some("none"), false)] {
            let path = dir.path().join(format!("{d:?}.log"));
            let cfg = config(d);
            assert_eq!(readable(&cfg), kept, "{d:?}");
            let mut w = LogWriter::for_container(&path, &cfg, Default::default()).unwrap();
            w.write(Stream::Stdout, b"hello\nrest").unwrap();
            w.flush().unwrap();
            assert_eq!(read_all(&path, 3).len(), if kept { 2 } else { 0 }, "{d:?}");
            assert_eq!(path.exists(), kept, "{d:?}");
        }
    }

    #[test]
    fn follower_crosses_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = LogWriter::open(&path, LogOptions { max_size: 200, max_file: 2 }).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        let mut f = LogFollower::at_end(&path);
        let mut seen = Vec::new();
        for i in 0..10 {
            w.write(Stream::Stdout, format!("n{i}\n").as_bytes()).unwrap();
            seen.extend(f.poll().into_iter().map(|e| e.log));
        }
        assert_eq!(seen, (0..10).map(|i| format!("n{i}\n")).collect::<Vec<_>>());
    }
}
