//! The attach protocol between a container's monitor and a client (`berth run` in the foreground),
//! over the Unix socket `attach.sock` in the container's run directory (mode 0600).
//!
//! Every message is a frame: one kind byte, a big-endian `u32` length, then the payload.
//! Monitor → client: `STDOUT`/`STDERR` output, `EXIT` (payload: `i32` exit code) as the last frame.
//! Client → monitor: `STDIN` data, `STDIN_CLOSE` (end of input), `RESIZE` (`u16` rows, `u16` cols).

use std::io::{self, Read, Write};

/// Input for the container.
pub const STDIN: u8 = 0;
/// Container standard output (or terminal output).
pub const STDOUT: u8 = 1;
/// Container standard error.
pub const STDERR: u8 = 2;
/// The container exited; the payload is its exit code.
pub const EXIT: u8 = 3;
/// The client's input ended.
pub const STDIN_CLOSE: u8 = 4;
/// The client's terminal size changed.
pub const RESIZE: u8 = 5;

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Reads one frame; `None` at end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 16 * 1024 * 1024 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "attach frame too large"));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Splits complete frames off the front of `buf` (for non-blocking readers).
pub fn take_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 5 {
            break;
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        let frame: Vec<u8> = buf.drain(..5 + len).collect();
        out.push((frame[0], frame[5..].to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDOUT, b"hello").unwrap();
        write_frame(&mut buf, EXIT, &7i32.to_be_bytes()).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, 7i32.to_be_bytes().to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut partial = buf[..7].to_vec();
        assert_eq!(take_frames(&mut partial), vec![]);
        partial.extend_from_slice(&buf[7..]);
        assert_eq!(take_frames(&mut partial).len(), 2);
        assert!(partial.is_empty());
    }
}
