//! Output formats of the listing commands: the Go-template-like `--format` of `ps` and the
//! aligned tables (`ps`, `top`, `stats`, `network ls`).

use anyhow::{bail, Context};

/// The fields a `--format` template can name, with their table headers.
const FIELDS: [(&str, &str); 14] = [
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Project", "PROJECT"),
    ("Service", "SERVICE"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Health", "HEALTH"),
    ("ExitCode", "EXIT CODE"),
    ("Ports", "PORTS"),
    ("Labels", "LABELS"),
];

/// A piece of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(&'static str),
}

/// A `--format` template: Go-template-like text with `{{.Field}}` placeholders; `table` first
/// prints a header row and aligns the tab-separated columns, as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub table: bool,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `--format` (`table` and `json` are not templates: `None`).
    pub fn parse(format: &str) -> anyhow::Result<Option<Template>> {
        let format = format.trim();
        if format == "table" || format == "json" {
            return Ok(None);
        }
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim()),
            _ => (false, format),
        };
        // What a shell passes for `\t` is a backslash and a `t`: Docker reads both escapes.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").with_context(|| format!("--format: `{{{{` without `}}}}` in {format:?}"))?;
            let inner = after[..close].trim();
            let name = inner.strip_prefix('.').unwrap_or("");
            let Some((field, _)) = FIELDS.iter().find(|(f, _)| *f == name) else {
                let known = FIELDS.iter().map(|(f, _)| format!(".{f}")).collect::<Vec<_>>().join(", ");
                bail!(
                    "--format: unknown field `{{{{{inner}}}}}`: berth's templates take only `{{{{.Field}}}}` with one of {known}"
                );
            };
            pieces.push(Piece::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Some(Template { table, pieces }))
    }

    /// The template with each field replaced by `value(field)`.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Field(f) => value(f),
            })
            .collect()
    }

    /// The header row of a `table` template.
    pub fn header(&self) -> String {
        self.render(|f| FIELDS.iter().find(|(n, _)| *n == f).map(|(_, h)| h.to_string()).unwrap_or_default())
    }
}

/// Aligns tab-separated cells as Go's tabwriter does for Docker (cells at least 10 wide, 3
/// spaces of padding; a line's last cell is not aligned).
pub fn align_tabs(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = split.iter().map(|r| r.len().saturating_sub(1)).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            let w = split.iter().filter(|r| i + 1 < r.len()).map(|r| r[i].chars().count()).max().unwrap_or(0);
            (w + 3).max(10)
        })
        .collect();
    let mut out = String::new();
    for r in &split {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints rows as columns separated by three spaces.
pub fn print_table(rows: &[Vec<String>]) {
    print!("{}", berth::output::columns(rows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_fields_and_keep_text() {
        let t = Template::parse("{{.Name}}\\t{{ .State }} ({{.ExitCode}})").unwrap().unwrap();
        assert!(!t.table);
        let line = t.render(|f| format!("<{f}>"));
        assert_eq!(line, "<Name>\t<State> (<ExitCode>)");
        assert_eq!(Template::parse("table").unwrap(), None);
        assert_eq!(Template::parse("json").unwrap(), None);
    }

    #[test]
    fn table_templates_have_a_header_and_aligned_columns() {
        let t = Template::parse("table {{.Name}}\\t{{.State}}\t{{.ID}}").unwrap().unwrap();
        assert!(t.table);
        assert_eq!(t.header(), "NAME\tSTATE\tCONTAINER ID");
        let lines = vec![t.header(), "a-very-long-name-1\trunning\tabc".to_string()];
        assert_eq!(
            align_tabs(&lines),
            "NAME                 STATE     CONTAINER ID\na-very-long-name-1   running   abc\n"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_the_known_ones() {
        let e = Template::parse("{{.Nmae}}").unwrap_err().to_string();
        assert!(e.contains("unknown field `{{.Nmae}}`") && e.contains(".Name, ") && e.contains(".Health"), "{e}");
        let e = Template::parse("{{json .}}").unwrap_err().to_string();
        assert!(e.contains("unknown field `{{json .}}`"), "{e}");
        assert!(Template::parse("{{.Name").is_err());
    }
}
