//! Silencing findings: a comment `# berth: ignore RULE[,RULE] reason` on the line of the key or
//! alone on the line above it, or an entry `{rule: RULE, service: NAME, reason: "..."}` (the
//! service is optional) of `x-berth: {check: {ignore: [...]}}` at the top of the project.

use std::collections::HashMap;

use berth_compose::Loaded;
use serde::Serialize;

use super::Finding;

/// How a finding was silenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuppressionKind {
    /// A `# berth: ignore` comment in the compose file.
    Comment,
    /// An entry of `x-berth.check.ignore`.
    XBerth,
}

/// Why a finding is silenced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suppression {
    /// Where the silencing is written.
    pub kind: SuppressionKind,
    /// The reason given (may be empty).
    pub reason: String,
}

/// Marks the findings that a comment or an `x-berth.check.ignore` entry silences.
pub(super) fn apply(loaded: &Loaded, findings: &mut [Finding]) {
    let listed = ignore_list(loaded);
    let mut sources: HashMap<String, Option<Vec<String>>> = HashMap::new();
    for f in findings.iter_mut() {
        let lines = sources.entry(f.file.clone()).or_insert_with(|| source_lines(loaded, &f.file));
        let by_comment = lines.as_deref().and_then(|lines| comment_for(lines, f.line, f.rule));
        let by_list = listed
            .iter()
            .find(|e| e.rule == f.rule && e.service.as_ref().is_none_or(|s| Some(s) == f.service.as_ref()));
        f.suppressed = by_comment
            .map(|reason| Suppression { kind: SuppressionKind::Comment, reason })
            .or_else(|| by_list.map(|e| Suppression { kind: SuppressionKind::XBerth, reason: e.reason.clone() }));
    }
}

/// An entry of `x-berth.check.ignore`.
struct Ignore {
    rule: String,
    service: Option<String>,
    reason: String,
}

fn ignore_list(loaded: &Loaded) -> Vec<Ignore> {
    let list = loaded.project.extensions.get("x-berth").and_then(|x| x.pointer("/check/ignore"));
    let Some(items) = list.and_then(|l| l.as_array()) else { return Vec::new() };
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
    items
        .iter()
        .filter_map(|item| {
            Some(Ignore {
                rule: text(item, "rule")?,
                service: text(item, "service"),
                reason: text(item, "reason").unwrap_or_default(),
            })
        })
        .collect()
}

/// The lines of the compose file named `file` in findings (as the loader names it).
pub(super) fn source_lines(loaded: &Loaded, file: &str) -> Option<Vec<String>> {
    let path = loaded.files.iter().find(|f| f.as_os_str() != "-" && f.ends_with(file))?;
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

/// The reason of a `# berth: ignore` comment for `rule` on line `line` (1-based), or alone on
/// the line above it.
fn comment_for(lines: &[String], line: u32, rule: &str) -> Option<String> {
    let at = (line as usize).checked_sub(1)?;
    let own = lines.get(at).and_then(|l| parse_comment(l, rule));
    own.or_else(|| {
        let above = lines.get(at.checked_sub(1)?)?;
        if above.trim_start().starts_with('#') {
            parse_comment(above, rule)
        } else {
            None
        }
    })
}

/// `... # berth: ignore RULE[,RULE] reason` → the reason, when `rule` is among the rules.
fn parse_comment(line: &str, rule: &str) -> Option<String> {
    let (_, comment) = line.split_once('#')?;
    let rest = comment.trim_start().strip_prefix("berth:")?.trim_start().strip_prefix("ignore")?;
    let rest = rest.strip_prefix([' ', '\t'])?.trim_start();
    let (rules, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    rules.split(',').any(|r| r == rule).then(|| reason.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_comment;

    #[test]
    fn comments_name_one_or_more_rules_and_a_reason() {
        let line = "    image: nginx:latest # berth: ignore image-tag,root-user tracked upstream";
        assert_eq!(parse_comment(line, "image-tag").as_deref(), Some("tracked upstream"));
        assert_eq!(parse_comment(line, "root-user").as_deref(), Some("tracked upstream"));
        assert_eq!(parse_comment(line, "no-restart"), None);
        assert_eq!(parse_comment("# berth: ignore privileged", "privileged").as_deref(), Some(""));
        assert_eq!(parse_comment("# berth: ignored privileged", "privileged"), None);
        assert_eq!(parse_comment("image: a # other", "image-tag"), None);
    }
}
