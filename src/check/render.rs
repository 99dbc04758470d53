//! The report as text: an aligned table for people, JSON, and SARIF 2.1.0 for CI.

use serde_json::{json, Value};

use super::{Report, Severity, SuppressionKind, RULES};

/// The table: one row per finding that is not silenced, then a count line.
pub fn table(report: &Report) -> String {
    let mut rows = vec![["SEVERITY", "RULE", "SERVICE", "FILE:LINE", "MESSAGE", "FIX"].map(String::from).to_vec()];
    for f in report.active() {
        let service = f.service.clone().unwrap_or_else(|| "-".into());
        rows.push(vec![
            f.severity.as_str().into(),
            f.rule.into(),
            service,
            f.location(),
            f.message.clone(),
            f.fix.clone(),
        ]);
    }
    let mut out = if rows.len() > 1 { crate::output::columns(&rows) } else { String::new() };
    let count = |s: Severity| report.active().filter(|f| f.severity == s).count();
    let (errors, warnings, infos) = (count(Severity::Error), count(Severity::Warning), count(Severity::Info));
    if errors + warnings + infos == 0 {
        out.push_str("No findings");
    } else {
        out.push_str(&format!("{errors} error(s), {warnings} warning(s), {infos} info"));
    }
    out.push_str(&format!(", {} suppressed\n", report.suppressed()));
    out
}

/// The findings as a JSON array (suppressed ones carry `suppressed: {kind, reason}`).
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(&report.findings).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The report as a SARIF 2.1.0 log: every rule, and one result per finding (silenced ones
/// with `suppressions`).
pub fn sarif(report: &Report) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": {"text": r.summary},
                "help": {"text": r.help},
                "defaultConfiguration": {"level": level(r.severity)},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut region = json!({"startLine": f.line.max(1)});
            if f.column > 0 {
                region["startColumn"] = json!(f.column);
            }
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
                "level": level(f.severity),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file},
                    "region": region,
                }}],
            });
            if let Some(s) = &f.service {
                result["properties"] = json!({"service": s});
            }
            if let Some(s) = &f.suppressed {
                let kind = match s.kind {
                    SuppressionKind::Comment => "inSource",
                    SuppressionKind::XBerth => "external",
                };
                result["suppressions"] = json!([{"kind": kind, "justification": s.reason}]);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "berth",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}
