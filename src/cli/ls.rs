//! `berth ls`: the projects berth knows, with their containers' states and whether their
//! supervisor runs.

use clap::Args;

/// Arguments of `berth ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Also projects whose containers are all stopped
    #[arg(short, long)]
    all: bool,
    /// Only names
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: crate::cli::ListFormat,
    /// Only projects matching KEY=VALUE (repeatable): `name=PATTERN`, a regular expression
    /// found in the name as Compose matches it (`^`/`$` anchor it; `.` is any character)
    #[arg(long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

/// `--filter name=...` patterns.
fn name_patterns(filters: &[String]) -> anyhow::Result<Vec<String>> {
    filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some(("name", v)) => Ok(v.to_string()),
            Some((k, _)) => anyhow::bail!("--filter: unknown filter `{k}` (supported: name)"),
            None => anyhow::bail!("--filter {f:?}: expected KEY=VALUE (name=PATTERN)"),
        })
        .collect()
}

/// Runs `berth ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let roots = berth::container::Roots::from_env();
    let rows =
        berth::app::projects::list(&roots, &name_patterns(&args.filter)?, args.all, &berth::output::PlainRenderer)?;
    crate::cli::render::project::projects(&rows, args.quiet, args.format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_names_only() {
        assert!(name_patterns(&["label=x".into()]).unwrap_err().to_string().contains("unknown filter `label`"));
        assert_eq!(name_patterns(&["name=a".into()]).unwrap(), vec!["a".to_string()]);
    }
}
