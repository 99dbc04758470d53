//! Splitting one logical instruction line into name, flags and arguments, with the argument rules of each
//! instruction: JSON or shell form (`RUN`, `CMD`, `ENTRYPOINT`, `SHELL`), JSON or whitespace-separated list
//! (`ADD`, `COPY`, `VOLUME`), `key=value` pairs (`ENV`, `LABEL`, `ARG`), plain words (`FROM`, `EXPOSE`), one
//! string (`USER`, `WORKDIR`, `STOPSIGNAL`, `MAINTAINER`), `HEALTHCHECK`'s type word, and `ONBUILD`'s nested line.

use super::Node;
use crate::error::ErrorKind;

/// ASCII blanks that separate an instruction's words (no newline: lines are joined already).
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\x0B' | '\x0C' | '\r' | ' ')
}

/// Splits on runs of blanks, at most `limit` pieces (0 = no limit). Leading blanks give an empty first piece.
fn split_blanks(s: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if limit != 0 && out.len() + 1 == limit {
            out.push(rest.to_string());
            return out;
        }
        match rest.find(is_blank) {
            Some(i) => {
                out.push(rest[..i].to_string());
                rest = rest[i..].trim_start_matches(is_blank);
            }
            None => {
                out.push(rest.to_string());
                return out;
            }
        }
    }
}

/// Builds the node for one logical line (continuations joined, comments removed).
pub(super) fn node_from_line(line: &str, escape: char) -> Result<Node, ErrorKind> {
    let parts = split_blanks(line.trim(), 2);
    let cmd = parts.first().cloned().unwrap_or_default();
    let (args, flags) = match parts.get(1) {
        Some(rest) => {
            let (args, flags) = extract_flags(rest, escape);
            (args.trim().to_string(), flags)
        }
        None => (String::new(), Vec::new()),
    };
    let name = cmd.to_lowercase();
    let mut node = Node {
        name: name.clone(),
        original_name: cmd.clone(),
        flags,
        args: Vec::new(),
        sub: None,
        heredocs: Vec::new(),
        json: false,
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
    };
    match &*name {
        "add" | "copy" | "volume" => (node.args, node.json) = maybe_json_to_list(&args)?,
        "cmd" | "entrypoint" | "run" | "shell" => (node.args, node.json) = maybe_json(&args)?,
        "arg" => node.args = parse_words(&args, escape),
        "env" => node.args = name_val(&args, "ENV", escape)?,
        "label" => node.args = name_val(&args, "LABEL", escape)?,
        "expose" | "from" => node.args = whitespace_list(&args),
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !args.is_empty() {
                node.args = vec![args];
            }
        }
        "healthcheck" => (node.args, node.json) = health_config(&args)?,
        "onbuild" => {
            if !args.is_empty() {
                node.sub = Some(Box::new(node_from_line(&args, escape)?));
            }
        }
        _ => return Err(ErrorKind::UnknownInstruction(cmd)),
    }
    Ok(node)
}

/// Takes the leading `--flag` words off `line` (quotes and escapes processed; a bare `--` ends the flags and is
/// dropped) and gives the rest of the line and the flags.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = line.chars().collect();
    let rest_from = |pos: usize| chars[pos..].iter().collect::<String>();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let ch = chars.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if c.is_whitespace() {
                pos += 1;
                continue;
            }
            if c != '-' || chars.get(pos + 1) != Some(&'-') {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        };
        if phase == Phase::Word {
            if c.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if c == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = chars[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if c == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if c == escape {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = chars[pos];
        }
        word.push(c);
        pos += 1;
    }
    (String::new(), words)
}

/// Splits into words on unquoted whitespace, keeping quotes and escapes (they are removed at expansion time).
pub(super) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0;
    while pos <= chars.len() {
        let ch = chars.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if c.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        };
        if phase == Phase::Word {
            if c.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if c == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(c);
                pos += 1;
                c = chars[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if c == quote {
            phase = Phase::Word;
        }
        if c == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            word.push(c);
            pos += 1;
            c = chars[pos];
        }
        word.push(c);
        pos += 1;
    }
    words
}

/// `ENV`/`LABEL`: `KEY value with spaces` (legacy) or `k=v k2="v 2"`; gives key, value, separator triples.
fn name_val(rest: &str, instruction: &str, escape: char) -> Result<Vec<String>, ErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else { return Ok(Vec::new()) };
    if !first.contains('=') {
        let parts = split_blanks(rest, 2);
        if parts.len() < 2 {
            return Err(ErrorKind::syntax(format!("{instruction} must have two arguments")));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(ErrorKind::syntax(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                super::go_quote(word)
            )));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_blanks(rest, 0)
}

/// The outcome of trying `rest` as a JSON array of strings.
enum Json {
    Strings(Vec<String>),
    NotJson,
}

fn parse_json(rest: &str) -> Result<Json, ErrorKind> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(rest) else {
        return Ok(Json::NotJson);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ErrorKind::syntax("when using JSON array syntax, arrays must be comprised of strings only")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json::Strings)
}

fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match parse_json(rest)? {
        Json::Strings(v) => (v, true),
        Json::NotJson => (vec![rest.to_string()], false),
    })
}

fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    Ok(match parse_json(rest)? {
        Json::Strings(v) => (v, true),
        Json::NotJson => (whitespace_list(rest), false),
    })
}

/// `HEALTHCHECK TYPE args`: the type word, then the rest as JSON or shell form.
fn health_config(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let typ = rest[..sep].to_string();
    let (cmd, json) = maybe_json(rest[sep..].trim_start())?;
    let mut args = vec![typ];
    args.extend(cmd);
    Ok((args, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_non_flag() {
        let (rest, flags) = extract_flags("--from=a --chown=\"u g\" src dst", '\\');
        assert_eq!(flags, vec!["--from=a", "--chown=u g"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_flags("--link -- --weird dst", '\\');
        assert_eq!(flags, vec!["--link"]);
        assert_eq!(rest, " --weird dst");
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(parse_words("a=\"1 2\" b='x' c\\ d", '\\'), vec!["a=\"1 2\"", "b='x'", "c\\ d"]);
    }

    #[test]
    fn blanks() {
        assert_eq!(split_blanks("a  b\tc", 0), vec!["a", "b", "c"]);
        assert_eq!(split_blanks("a  b\tc", 2), vec!["a", "b\tc"]);
    }
}
