//! Variable expansion of typed instructions.
//!
//! Expanded: `ADD`, `COPY` (sources, destination, `--from`, `--chown`, `--chmod`, `--checksum`, and the bodies of
//! heredoc sources whose delimiter was not quoted), `ENV`, `LABEL` (keys and values), `EXPOSE` (each argument may
//! become several), `FROM` (image and `--platform`), `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, `ARG` (names and
//! defaults) and the values of `RUN --mount`. Left as written: `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`,
//! `HEALTHCHECK` (the shell expands those at run time), `ONBUILD` (expanded when the trigger runs) and
//! `MAINTAINER`.

use super::*;
use crate::error::{Error, ErrorKind};
use crate::shell::{Lexer, Vars};

impl Command {
    /// This instruction with its variables expanded from `env`, using `lexer` (built with the Dockerfile's escape
    /// character); errors name `file` and this instruction's line.
    pub fn expand(&self, file: &str, lexer: &Lexer, env: &dyn Vars) -> Result<Instruction, Error> {
        expand_instruction(&self.instruction, lexer, env)
            .map_err(|k| Error::new(file, self.start_line, self.end_line, k))
    }
}

/// `instruction` with its variables expanded from `env`.
pub fn expand_instruction(instruction: &Instruction, lexer: &Lexer, env: &dyn Vars) -> Result<Instruction, ErrorKind> {
    let word = |w: &str| -> Result<String, ErrorKind> { Ok(lexer.process_word(w, env)?) };
    let opt = |w: &Option<String>| -> Result<Option<String>, ErrorKind> { w.as_deref().map(word).transpose() };
    let all = |ws: &[String]| -> Result<Vec<String>, ErrorKind> { ws.iter().map(|w| word(w)).collect() };
    let kvs = |kvs: &[KeyValue]| -> Result<Vec<KeyValue>, ErrorKind> {
        kvs.iter().map(|kv| Ok(KeyValue { key: word(&kv.key)?, value: word(&kv.value)?, legacy: kv.legacy })).collect()
    };
    let inline = |srcs: &[InlineSource]| -> Result<Vec<InlineSource>, ErrorKind> {
        let mut raw = Lexer::new(lexer.escape());
        raw.skip_process_quotes = true;
        srcs.iter()
            .map(|s| {
                let data = if s.expand { raw.process_word(&s.data, env)? } else { s.data.clone() };
                Ok(InlineSource { data, ..s.clone() })
            })
            .collect()
    };
    Ok(match instruction {
        Instruction::From(f) => {
            Instruction::From(From { image: word(&f.image)?, name: f.name.clone(), platform: opt(&f.platform)? })
        }
        Instruction::Arg(a) => Instruction::Arg(Arg {
            args: a
                .args
                .iter()
                .map(|d| Ok(ArgDecl { name: word(&d.name)?, default: opt(&d.default)? }))
                .collect::<Result<_, ErrorKind>>()?,
        }),
        Instruction::Env(e) => Instruction::Env(Env { vars: kvs(&e.vars)? }),
        Instruction::Label(l) => Instruction::Label(Label { labels: kvs(&l.labels)? }),
        Instruction::Workdir(w) => Instruction::Workdir(Workdir { path: word(&w.path)? }),
        Instruction::User(u) => Instruction::User(User { user: word(&u.user)? }),
        Instruction::StopSignal(s) => Instruction::StopSignal(StopSignal { signal: word(&s.signal)? }),
        Instruction::Volume(v) => Instruction::Volume(Volume { paths: all(&v.paths)?, json: v.json }),
        Instruction::Expose(e) => {
            let mut ports = Vec::new();
            for p in &e.ports {
                ports.extend(lexer.process_words(p, env)?);
            }
            Instruction::Expose(Expose { ports })
        }
        Instruction::Copy(c) => Instruction::Copy(Copy {
            sources: all(&c.sources)?,
            inline: inline(&c.inline)?,
            dest: word(&c.dest)?,
            from: opt(&c.from)?,
            chown: opt(&c.chown)?,
            chmod: opt(&c.chmod)?,
            ..c.clone()
        }),
        Instruction::Add(a) => Instruction::Add(Add {
            sources: all(&a.sources)?,
            inline: inline(&a.inline)?,
            dest: word(&a.dest)?,
            chown: opt(&a.chown)?,
            chmod: opt(&a.chmod)?,
            checksum: opt(&a.checksum)?,
            ..a.clone()
        }),
        Instruction::Run(r) => {
            let expand = |v: &str| word(v);
            let mounts = r.mounts.iter().map(|m| Mount::parse(&m.raw, Some(&expand))).collect::<Result<_, _>>()?;
            Instruction::Run(Run { mounts, ..r.clone() })
        }
        other => other.clone(),
    })
}
