//! Typed Dockerfile instructions: one struct per instruction, built from a parser [`Node`](crate::parser::Node)
//! with its flags validated (a flag the instruction does not take is an error naming the line), and variable
//! expansion of the instructions that take it ([`Command::expand`]).

mod expand;
mod flags;
mod mount;
mod parse;

use std::time::Duration;

pub use expand::expand_instruction;
pub use mount::{Expander, Mount, MountType, ShareMode};
pub use parse::{parse_command, parse_instruction};

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The typed instruction.
    pub instruction: Instruction,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (heredoc bodies included).
    pub end_line: usize,
    /// The instruction text after continuations were joined.
    pub original: String,
}

/// A Dockerfile instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
    /// `FROM [--platform=p] image [AS name]`.
    From(From),
    /// `ARG name[=default] ...`.
    Arg(Arg),
    /// `ENV key=value ...` or `ENV key value`.
    Env(Env),
    /// `LABEL key=value ...`.
    Label(Label),
    /// `WORKDIR path`.
    Workdir(Workdir),
    /// `USER user[:group]`.
    User(User),
    /// `COPY [flags] src... dest`.
    Copy(Copy),
    /// `ADD [flags] src... dest`.
    Add(Add),
    /// `RUN [flags] command`.
    Run(Run),
    /// `CMD command`.
    Cmd(Cmd),
    /// `ENTRYPOINT command`.
    Entrypoint(Entrypoint),
    /// `EXPOSE port[/proto] ...`.
    Expose(Expose),
    /// `VOLUME path ...` or `VOLUME ["path", ...]`.
    Volume(Volume),
    /// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
    Healthcheck(Healthcheck),
    /// `STOPSIGNAL signal`.
    StopSignal(StopSignal),
    /// `SHELL ["exe", "arg", ...]`.
    Shell(Shell),
    /// `ONBUILD instruction`.
    Onbuild(Onbuild),
    /// `MAINTAINER name` (deprecated; a `LABEL` is the modern form).
    Maintainer(Maintainer),
}

impl Instruction {
    /// The instruction keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Arg(_) => "ARG",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Shell(_) => "SHELL",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `FROM`: the start of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base: an image reference, an earlier stage's name, or `scratch` (not yet expanded).
    pub image: String,
    /// The stage name after `AS`, lower case.
    pub name: Option<String>,
    /// `--platform`, not yet expanded.
    pub platform: Option<String>,
}

/// One `ARG` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default after `=`, if any (not yet expanded).
    pub default: Option<String>,
}

/// `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The declarations, in order.
    pub args: Vec<ArgDecl>,
}

/// A `key=value` pair of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (quotes still in place until expanded).
    pub key: String,
    /// The value (quotes still in place until expanded).
    pub value: String,
    /// Written in the legacy `KEY value` form (no `=`).
    pub legacy: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The variables, in order.
    pub vars: Vec<KeyValue>,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The labels, in order.
    pub labels: Vec<KeyValue>,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workdir {
    /// The directory.
    pub path: String,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `user`, `user:group`, `uid:gid`.
    pub user: String,
}

/// A file given inline by a heredoc in `COPY`/`ADD` (`COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The file name (the heredoc delimiter).
    pub path: String,
    /// The content (tabs already stripped for `<<-`).
    pub data: String,
    /// Whether variables in the content are expanded (the delimiter was not quoted).
    pub expand: bool,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    /// Source paths (context paths or, with `from`, paths in the stage/image).
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineSource>,
    /// The destination.
    pub dest: String,
    /// `--from`: a stage name, a stage index, or an image.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Written in JSON form.
    pub json: bool,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Add {
    /// Sources: context paths, URLs, git repositories.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineSource>,
    /// The destination.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir`, if given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum`.
    pub checksum: Option<String>,
    /// `--unpack`, if given.
    pub unpack: Option<bool>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Written in JSON form.
    pub json: bool,
}

/// A heredoc attached to `RUN` (`RUN <<EOF`), given to the command as a file or as its script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The delimiter word.
    pub name: String,
    /// The body.
    pub data: String,
    /// `<<-`: strip leading tabs.
    pub chomp: bool,
}

/// A command line of `RUN`, `CMD` or `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// JSON form: the argv. Shell form: one string, to run with the stage's `SHELL`.
    pub args: Vec<String>,
    /// JSON (exec) form.
    pub json: bool,
    /// Heredoc bodies (RUN only).
    pub files: Vec<InlineFile>,
}

impl CommandLine {
    /// Whether the stage's shell must be prepended (shell form).
    pub fn prepend_shell(&self) -> bool {
        !self.json
    }
}

/// `RUN --network` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The builder's default network.
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// The usual confinement.
    Sandbox,
    /// Privileged.
    Insecure,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// `--mount` specifications.
    pub mounts: Vec<Mount>,
    /// `--network`, if given.
    pub network: Option<NetworkMode>,
    /// `--security`, if given.
    pub security: Option<Security>,
    /// `--device` specifications, as written.
    pub devices: Vec<String>,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The command.
    pub command: CommandLine,
}

/// `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint {
    /// The command (an empty JSON list clears the entrypoint).
    pub command: CommandLine,
}

/// `EXPOSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expose {
    /// `port`, `port/proto` or ranges, as written.
    pub ports: Vec<String>,
}

/// `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Mount points.
    pub paths: Vec<String>,
    /// Written in JSON form.
    pub json: bool,
}

/// The options of `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthConfig {
    /// `["CMD", argv...]` (JSON form) or `["CMD-SHELL", "command"]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD ...`.
    Check(HealthConfig),
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignal {
    /// A signal name or number.
    pub signal: String,
}

/// `SHELL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// The shell's argv prefix.
    pub shell: Vec<String>,
}

/// `ONBUILD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Onbuild {
    /// The trigger as text (what gets stored in the image), heredoc bodies appended.
    pub expression: String,
    /// The trigger instruction, parsed and validated.
    pub trigger: Box<Instruction>,
}

/// `MAINTAINER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintainer {
    /// The maintainer text.
    pub name: String,
}
