//! Local archives `ADD` unpacks: tar, plain or compressed with gzip or zstd (read in-process) or
//! bzip2 or xz (through the `bzip2`/`xz` tools, when installed).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::error::{io_err, Result};

/// Whether the file starts like a tar archive or a compressed stream `ADD` unpacks.
pub fn is_archive(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 512];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    Ok(compression(head).is_some() || (n >= 262 && &head[257..262] == b"ustar"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn compression(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(b"BZh") {
        Some(Compression::Bzip2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Compression::Xz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// Unpacks a (maybe compressed) tar archive into `dest`.
pub fn unpack(src: &Path, dest: &Path) -> Result<()> {
    let mut head = [0u8; 8];
    let n = File::open(src).and_then(|mut f| f.read(&mut head)).map_err(io_err("read", src))?;
    let file = File::open(src).map_err(io_err("read", src))?;
    let reader: Box<dyn Read> = match compression(&head[..n]) {
        None => Box::new(file),
        Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some(Compression::Zstd) => Box::new(zstd::Decoder::new(file).map_err(io_err("read", src))?),
        Some(c) => {
            let tool = if c == Compression::Bzip2 { "bzip2" } else { "xz" };
            let mut child = std::process::Command::new(tool)
                .args(["-dc"])
                .stdin(file)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| io_err("decompress", src)(io::Error::new(e.kind(), format!("`{tool}` is needed: {e}"))))?;
            let out = child.stdout.take().expect("piped");
            let mut archive = tar::Archive::new(out);
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.unpack(dest).map_err(io_err("unpack", src))?;
            child.wait().map_err(io_err("decompress", src))?;
            return Ok(());
        }
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.unpack(dest).map_err(io_err("unpack", src))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_tar_archives_are_recognised_and_unpacked() {
        let d = tempfile::tempdir().unwrap();
        let tgz = d.path().join("a.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&tgz).unwrap(), flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        t.append_data(&mut h, "dir/f.txt", &b"abc"[..]).unwrap();
        t.into_inner().unwrap().finish().unwrap();
        let plain = d.path().join("plain.txt");
        std::fs::write(&plain, "not an archive").unwrap();
        assert!(is_archive(&tgz).unwrap());
        assert!(!is_archive(&plain).unwrap());
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(&tgz, &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("dir/f.txt")).unwrap(), "abc");
    }
}
