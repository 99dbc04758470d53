//! Build arguments and the variables each part of a Dockerfile sees.
//!
//! * [`BuildArgs`]: the `--build-arg` values and the build/target platforms of a build.
//! * [`GlobalScope`]: what `FROM` lines see: the platform args (`BUILDPLATFORM`, `TARGETARCH`, ...) and the
//!   global `ARG`s declared before the first `FROM` (a `--build-arg` overrides a default; a default may use
//!   earlier global args).
//! * [`StageEnv`]: what instructions inside a stage see, updated instruction by instruction with
//!   [`StageEnv::step`]. An `ARG` must be declared in the stage to be visible; declared without a default it takes
//!   the `--build-arg` value or else the global value (this is how platform args get into a stage). `ENV` wins over
//!   an `ARG` of the same name.
//!
//! The proxy args (`HTTP_PROXY`, `https_proxy`, ...) need no declaration: given as `--build-arg`, they are in
//! every `RUN`'s environment ([`StageEnv::run_env`]), but like any undeclared arg they are not expanded in the
//! Dockerfile's own words.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::instruction::{Arg, ArgDecl, Command, Instruction};
use crate::shell::{Lexer, Vars};
use crate::stages::{Dockerfile, Stage};

/// The predefined proxy args, usable without an `ARG` declaration.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The predefined platform args: always visible to `FROM`, visible in a stage once declared with `ARG`.
pub const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// An OCI platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, ...
    pub arch: String,
    /// `v7`, `v8`, or empty.
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]` (an `os` alone gets the host's architecture).
    pub fn parse(s: &str) -> Platform {
        let mut parts = s.splitn(3, '/');
        let os = parts.next().unwrap_or_default().to_string();
        let arch = parts.next().map(str::to_string).unwrap_or_else(|| Platform::host().arch);
        let variant = parts.next().unwrap_or_default().to_string();
        Platform { os, arch, variant }
    }

    /// The platform berth runs on.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "x86" => ("386", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" => ("ppc64le", ""),
            "riscv64" => ("riscv64", ""),
            "s390x" => ("s390x", ""),
            other => (other, ""),
        };
        Platform { os: "linux".to_string(), arch: arch.to_string(), variant: variant.to_string() }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The `--build-arg` values and platforms of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
    /// The platform the build runs on (`BUILD*` args).
    pub build_platform: Platform,
    /// The platform the image is for (`TARGET*` args).
    pub target_platform: Platform,
}

impl Default for BuildArgs {
    fn default() -> Self {
        BuildArgs::new()
    }
}

fn set_var(list: &mut Vec<(String, String)>, key: &str, value: String) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key.to_string(), value)),
    }
}

fn get_var<'a>(list: &'a [(String, String)], key: &str) -> Option<&'a str> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl BuildArgs {
    /// No build args; build and target platform are the host's.
    pub fn new() -> Self {
        BuildArgs { values: BTreeMap::new(), build_platform: Platform::host(), target_platform: Platform::host() }
    }

    /// Sets a `--build-arg`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// A `--build-arg` value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// All `--build-arg` values.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The platform args with their values (a `--build-arg` of the same name wins).
    pub fn platform_args(&self) -> Vec<(String, String)> {
        let (b, t) = (&self.build_platform, &self.target_platform);
        let computed = [
            ("TARGETPLATFORM", t.to_string()),
            ("TARGETOS", t.os.clone()),
            ("TARGETARCH", t.arch.clone()),
            ("TARGETVARIANT", t.variant.clone()),
            ("BUILDPLATFORM", b.to_string()),
            ("BUILDOS", b.os.clone()),
            ("BUILDARCH", b.arch.clone()),
            ("BUILDVARIANT", b.variant.clone()),
        ];
        computed.into_iter().map(|(k, v)| (k.to_string(), self.get(k).map(str::to_string).unwrap_or(v))).collect()
    }

    /// The proxy args given as `--build-arg`.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        PROXY_ARGS.iter().filter_map(|k| self.get(k).map(|v| (k.to_string(), v.to_string()))).collect()
    }

    /// The scope `FROM` lines of `dockerfile` see.
    pub fn global_scope(&self, dockerfile: &Dockerfile) -> Result<GlobalScope> {
        let lexer = dockerfile.lexer();
        let mut vars = self.platform_args();
        for cmd in &dockerfile.meta_args {
            let Instruction::Arg(arg) = &cmd.instruction else { continue };
            for decl in &arg.args {
                let value = match (self.get(&decl.name), &decl.default) {
                    (Some(v), _) => Some(v.to_string()),
                    (None, Some(default)) => Some(
                        lexer
                            .process_word(default, &vars)
                            .map_err(|e| Error::new(&dockerfile.file, cmd.start_line, cmd.end_line, e.into()))?,
                    ),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    set_var(&mut vars, &decl.name, v);
                }
            }
        }
        Ok(GlobalScope { vars })
    }
}

/// The variables visible to `FROM`: platform args and global `ARG`s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GlobalScope {
    vars: Vec<(String, String)>,
}

impl GlobalScope {
    /// A global value.
    pub fn get(&self, name: &str) -> Option<&str> {
        get_var(&self.vars, name)
    }

    /// All global values, in declaration order.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// The stage's base image (or stage name) and `--platform` with global args expanded.
    pub fn expand_from(&self, dockerfile: &Dockerfile, stage: &Stage) -> Result<(String, Option<String>)> {
        let lexer = dockerfile.lexer();
        let fail = |e: crate::shell::ShellError| Error::new(&dockerfile.file, stage.line, stage.line, e.into());
        let base = lexer.process_word(&stage.base, self).map_err(fail)?;
        let platform = stage.platform.as_deref().map(|p| lexer.process_word(p, self)).transpose().map_err(fail)?;
        Ok((base, platform))
    }
}

impl Vars for GlobalScope {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

/// The variables inside one stage, as its instructions are evaluated in order.
#[derive(Debug, Clone)]
pub struct StageEnv<'a> {
    file: String,
    lexer: Lexer,
    build_args: &'a BuildArgs,
    global: &'a GlobalScope,
    args: Vec<(String, String)>,
    declared: BTreeSet<String>,
    env: Vec<(String, String)>,
}

impl<'a> StageEnv<'a> {
    /// The start of a stage of `dockerfile` (no `ENV` yet, no `ARG` declared).
    pub fn new(dockerfile: &Dockerfile, build_args: &'a BuildArgs, global: &'a GlobalScope) -> Self {
        StageEnv {
            file: dockerfile.file.clone(),
            lexer: dockerfile.lexer(),
            build_args,
            global,
            args: Vec::new(),
            declared: BTreeSet::new(),
            env: Vec::new(),
        }
    }

    /// Starts from the base image's environment (`KEY=value` pairs from its config).
    pub fn with_base_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Self {
        for (k, v) in env {
            set_var(&mut self.env, &k, v);
        }
        self
    }

    /// Evaluates one instruction: gives it expanded and applies its effect (`ARG` declares, `ENV` sets).
    pub fn step(&mut self, cmd: &Command) -> Result<Instruction> {
        if let Instruction::Arg(arg) = &cmd.instruction {
            let mut resolved = Vec::new();
            for decl in &arg.args {
                let value = match (self.build_args.get(&decl.name), &decl.default) {
                    (Some(v), _) => Some(v.to_string()),
                    (None, Some(default)) => Some(
                        self.lexer
                            .process_word(default, &*self)
                            .map_err(|e| Error::new(&self.file, cmd.start_line, cmd.end_line, e.into()))?,
                    ),
                    (None, None) => self.global.get(&decl.name).map(str::to_string),
                };
                self.declared.insert(decl.name.clone());
                if let Some(v) = &value {
                    set_var(&mut self.args, &decl.name, v.clone());
                }
                resolved.push(ArgDecl { name: decl.name.clone(), default: value });
            }
            return Ok(Instruction::Arg(Arg { args: resolved }));
        }
        let expanded = cmd.expand(&self.file, &self.lexer, &*self)?;
        if let Instruction::Env(env) = &expanded {
            for kv in &env.vars {
                set_var(&mut self.env, &kv.key, kv.value.clone());
            }
        }
        Ok(expanded)
    }

    /// A variable as instructions see it: `ENV` first, then declared `ARG`s.
    pub fn get(&self, name: &str) -> Option<&str> {
        get_var(&self.env, name).or_else(|| get_var(&self.args, name))
    }

    /// Whether `ARG name` was declared in this stage.
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains(name)
    }

    /// The `ENV` variables (what the image's config gets).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The environment of a `RUN`: `ENV` variables, declared `ARG` values that no `ENV` shadows, and the proxy
    /// args given as `--build-arg`.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in self.args.iter().chain(self.build_args.proxy_env().iter()) {
            if get_var(&out, k).is_none() {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }
}

impl Vars for StageEnv<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

#[cfg(test)]
mod tests;
