//! From parser nodes to typed instructions: argument counts, flags, heredoc sources, stage names.

use regex::Regex;

use super::flags::{parse_interval, FlagType, Flags};
use super::*;
use crate::error::{Error, ErrorKind};
use crate::parser::{parse_heredoc, Node};

/// The typed instruction of `node`, errors located in `file`.
pub fn parse_command(file: &str, node: &Node) -> Result<Command, Error> {
    let instruction = parse_instruction(node).map_err(|k| Error::new(file, node.start_line, node.end_line, k))?;
    Ok(Command { instruction, start_line: node.start_line, end_line: node.end_line, original: node.original.clone() })
}

fn syntax<T>(msg: impl Into<String>) -> Result<T, ErrorKind> {
    Err(ErrorKind::syntax(msg))
}

fn exactly_one(node: &Node, what: &str) -> Result<String, ErrorKind> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => syntax(format!("{what} requires exactly one argument")),
    }
}

fn no_flags(node: &Node) -> Result<(), ErrorKind> {
    Flags::parse(&node.name, &node.flags, &[]).map(|_| ())
}

/// The typed instruction of `node`.
pub fn parse_instruction(node: &Node) -> Result<Instruction, ErrorKind> {
    use FlagType::*;
    Ok(match &*node.name {
        "from" => {
            let flags = Flags::parse("from", &node.flags, &[("platform", String)])?;
            let name = match node.args.as_slice() {
                [_] => None,
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    let lower = name.to_lowercase();
                    if !stage_name_regex().is_match(&lower) {
                        return syntax(format!(
                            "invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"
                        ));
                    }
                    Some(lower)
                }
                _ => return syntax("FROM requires either one or three arguments"),
            };
            Instruction::From(From { image: node.args[0].clone(), name, platform: flags.string("platform") })
        }
        "arg" => {
            no_flags(node)?;
            if node.args.is_empty() {
                return syntax("ARG requires at least one argument");
            }
            let mut args = Vec::new();
            for a in &node.args {
                let decl = match a.split_once('=') {
                    Some(("", _)) => return syntax("ARG names can not be blank"),
                    Some((k, v)) => ArgDecl { name: k.to_string(), default: Some(v.to_string()) },
                    None => ArgDecl { name: a.clone(), default: None },
                };
                args.push(decl);
            }
            Instruction::Arg(Arg { args })
        }
        "env" => {
            no_flags(node)?;
            Instruction::Env(Env { vars: key_values(node, "ENV")? })
        }
        "label" => {
            no_flags(node)?;
            Instruction::Label(Label { labels: key_values(node, "LABEL")? })
        }
        "workdir" => {
            let path = exactly_one(node, "WORKDIR")?;
            no_flags(node)?;
            Instruction::Workdir(Workdir { path })
        }
        "user" => {
            let user = exactly_one(node, "USER")?;
            no_flags(node)?;
            Instruction::User(User { user })
        }
        "stopsignal" => {
            let signal = exactly_one(node, "STOPSIGNAL")?;
            no_flags(node)?;
            Instruction::StopSignal(StopSignal { signal })
        }
        "maintainer" => {
            let name = exactly_one(node, "MAINTAINER")?;
            no_flags(node)?;
            Instruction::Maintainer(Maintainer { name })
        }
        "copy" => {
            let spec = [
                ("chown", String),
                ("from", String),
                ("chmod", String),
                ("link", Bool),
                ("exclude", Strings),
                ("parents", Bool),
            ];
            let flags = Flags::parse("copy", &node.flags, &spec)?;
            let (sources, inline, dest) = sources_and_dest(node, "COPY")?;
            Instruction::Copy(Copy {
                sources,
                inline,
                dest,
                from: flags.string("from"),
                chown: flags.string("chown"),
                chmod: flags.string("chmod"),
                link: flags.bool("link").unwrap_or(false),
                parents: flags.bool("parents").unwrap_or(false),
                exclude: flags.strings("exclude"),
                json: node.json,
            })
        }
        "add" => {
            let spec = [
                ("chown", String),
                ("chmod", String),
                ("link", Bool),
                ("keep-git-dir", Bool),
                ("checksum", String),
                ("unpack", Bool),
                ("exclude", Strings),
            ];
            let flags = Flags::parse("add", &node.flags, &spec)?;
            let (sources, inline, dest) = sources_and_dest(node, "ADD")?;
            Instruction::Add(Add {
                sources,
                inline,
                dest,
                chown: flags.string("chown"),
                chmod: flags.string("chmod"),
                link: flags.bool("link").unwrap_or(false),
                keep_git_dir: flags.bool("keep-git-dir"),
                checksum: flags.string("checksum"),
                unpack: flags.bool("unpack"),
                exclude: flags.strings("exclude"),
                json: node.json,
            })
        }
        "run" => {
            let spec = [("mount", Strings), ("network", String), ("security", String), ("device", Strings)];
            let flags = Flags::parse("run", &node.flags, &spec)?;
            let network = match flags.string("network").as_deref() {
                None => None,
                Some("default") => Some(NetworkMode::Default),
                Some("none") => Some(NetworkMode::None),
                Some("host") => Some(NetworkMode::Host),
                Some(other) => return syntax(format!("invalid network mode \"{other}\"")),
            };
            let security = match flags.string("security").as_deref() {
                None => None,
                Some("sandbox") => Some(Security::Sandbox),
                Some("insecure") => Some(Security::Insecure),
                Some(other) => return syntax(format!("security \"{other}\" is not valid")),
            };
            let mounts = flags.strings("mount").iter().map(|m| Mount::parse(m, None)).collect::<Result<_, _>>()?;
            Instruction::Run(Run {
                command: command_line(node),
                mounts,
                network,
                security,
                devices: flags.strings("device"),
            })
        }
        "cmd" => {
            no_flags(node)?;
            Instruction::Cmd(Cmd { command: command_line(node) })
        }
        "entrypoint" => {
            no_flags(node)?;
            Instruction::Entrypoint(Entrypoint { command: command_line(node) })
        }
        "shell" => {
            no_flags(node)?;
            if node.args.is_empty() {
                return syntax("SHELL requires at least one argument");
            }
            if !node.json {
                return syntax(format!("SHELL requires the arguments to be in JSON form: {}", node.original.trim()));
            }
            Instruction::Shell(Shell { shell: node.args.clone() })
        }
        "expose" => {
            if node.args.is_empty() {
                return syntax("EXPOSE requires at least one argument");
            }
            no_flags(node)?;
            Instruction::Expose(Expose { ports: node.args.clone() })
        }
        "volume" => {
            if node.args.is_empty() {
                return syntax("VOLUME requires at least one argument");
            }
            no_flags(node)?;
            let mut paths = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return syntax("VOLUME specified can not be an empty string");
                }
                paths.push(v.to_string());
            }
            Instruction::Volume(Volume { paths, json: node.json })
        }
        "healthcheck" => Instruction::Healthcheck(healthcheck(node)?),
        "onbuild" => {
            no_flags(node)?;
            let Some(sub) = &node.sub else { return syntax("ONBUILD requires at least one argument") };
            match sub.name.as_str() {
                "onbuild" => return syntax("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
                "from" | "maintainer" => {
                    return syntax(format!("{} isn't allowed as an ONBUILD trigger", sub.name.to_uppercase()))
                }
                _ => {}
            }
            let mut sub = (**sub).clone();
            sub.heredocs = node.heredocs.clone();
            let trigger = Box::new(parse_instruction(&sub)?);
            let mut expression = onbuild_prefix().replace(&node.original, "").into_owned();
            for doc in &node.heredocs {
                expression.push('\n');
                expression.push_str(&doc.content);
                expression.push_str(&doc.name);
            }
            Instruction::Onbuild(Onbuild { expression, trigger })
        }
        other => return Err(ErrorKind::UnknownInstruction(other.to_uppercase())),
    })
}

fn stage_name_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-z][a-z0-9\-_.]*$").unwrap_or_else(|e| panic!("{e}")))
}

fn onbuild_prefix() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)^\s*ONBUILD\s*").unwrap_or_else(|e| panic!("{e}")))
}

fn key_values(node: &Node, what: &str) -> Result<Vec<KeyValue>, ErrorKind> {
    if node.args.is_empty() {
        return syntax(format!("{what} requires at least one argument"));
    }
    if node.args.len() % 3 != 0 {
        return syntax(format!("Bad input to {what}, too many arguments"));
    }
    let mut out = Vec::new();
    for kv in node.args.chunks(3) {
        if kv[0].is_empty() {
            return syntax(format!("{what} names can not be blank"));
        }
        out.push(KeyValue { key: kv[0].clone(), value: kv[1].clone(), legacy: kv[2].is_empty() });
    }
    Ok(out)
}

type SourcesAndDest = (Vec<String>, Vec<InlineSource>, String);

fn sources_and_dest(node: &Node, what: &str) -> Result<SourcesAndDest, ErrorKind> {
    let Some((dest, srcs)) = node.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return syntax(format!(
            "{what} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    };
    if parse_heredoc(dest)?.is_some() {
        return syntax(format!("{what} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match parse_heredoc(src)? {
            Some(doc) => {
                let body = node.heredocs.iter().find(|h| h.name == doc.name);
                let mut data = body.map(|h| h.content.clone()).unwrap_or_default();
                if doc.chomp {
                    data = crate::parser::chomp_heredoc_content(&data);
                }
                inline.push(InlineSource { path: doc.name, data, expand: doc.expand });
            }
            None => sources.push(src.clone()),
        }
    }
    Ok((sources, inline, dest.clone()))
}

fn command_line(node: &Node) -> CommandLine {
    let files = node
        .heredocs
        .iter()
        .map(|h| InlineFile { name: h.name.clone(), data: h.content.clone(), chomp: h.chomp })
        .collect();
    CommandLine { args: node.args.clone(), json: node.json, files }
}

fn healthcheck(node: &Node) -> Result<Healthcheck, ErrorKind> {
    let Some((typ, rest)) = node.args.split_first() else {
        return syntax("HEALTHCHECK requires at least one argument");
    };
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        if !rest.is_empty() {
            return syntax("HEALTHCHECK NONE takes no arguments");
        }
        no_flags(node)?;
        return Ok(Healthcheck::None);
    }
    use FlagType::String;
    let spec = [
        ("interval", String),
        ("timeout", String),
        ("start-period", String),
        ("start-interval", String),
        ("retries", String),
    ];
    let flags = Flags::parse("healthcheck", &node.flags, &spec)?;
    if typ != "CMD" {
        return syntax(format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"));
    }
    if rest.is_empty() {
        return syntax("Missing command after HEALTHCHECK CMD");
    }
    let mut test = vec![if node.json { "CMD".to_string() } else { "CMD-SHELL".to_string() }];
    test.extend(rest.iter().cloned());
    let retries = match flags.string("retries") {
        None => None,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| ErrorKind::syntax(format!("invalid --retries value: {v}")))?;
            if n < 0 {
                return syntax(format!("--retries cannot be negative ({n})"));
            }
            Some(u32::try_from(n).map_err(|_| ErrorKind::syntax(format!("--retries out of range: {n}")))?)
        }
    };
    Ok(Healthcheck::Check(HealthConfig {
        test,
        interval: parse_interval(&flags, "interval")?,
        timeout: parse_interval(&flags, "timeout")?,
        start_period: parse_interval(&flags, "start-period")?,
        start_interval: parse_interval(&flags, "start-interval")?,
        retries,
    }))
}

#[cfg(test)]
mod tests;
