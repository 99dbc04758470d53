//! `berth pull`: pulls the images of the project's services, with per-layer progress bars on a
//! terminal and plain lines otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use anyhow::{bail, Context};
use berth::events::{Event, EventSink};
use berth::image::{self, ImageStore, Platform, PullDecision, PullOptions, PullPolicy, Reference};
use berth_compose::resolved::ResolvedService;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProjectArgs;

/// A `--pull`/`--policy` option taking `choices`, Compose's pull policy spellings.
pub fn pull_choice(choices: &'static [&'static str]) -> impl TypedValueParser<Value = PullPolicy> {
    PossibleValuesParser::new(choices).map(|s| PullPolicy::parse(&s).expect("a pull policy"))
}

/// Arguments of `berth pull`.
#[derive(Args, Debug, Default)]
pub struct PullArgs {
    /// Services to pull (default: all)
    pub services: Vec<String>,
    /// Print nothing but warnings and errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Report images that fail to pull as warnings and carry on
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// `missing` pulls only images not present locally; `always` (default) pulls every image
    #[arg(long, value_parser = pull_choice(&["missing", "always"]))]
    pub policy: Option<PullPolicy>,
    /// Also pull the images of the named services' dependencies
    #[arg(long)]
    pub include_deps: bool,
    /// Skip services that have a `build:` section (their image is built, not pulled)
    #[arg(long)]
    pub ignore_buildable: bool,
}

/// Runs `berth pull`.
pub fn run(project: &ProjectArgs, args: PullArgs) -> anyhow::Result<()> {
    let loaded = berth_compose::load(&project.load_options()?)?;
    for w in &loaded.warnings {
        berth::output::warn(w);
    }
    let services = &loaded.project.services;
    for s in &args.services {
        if !services.contains_key(s) {
            bail!("no such service: `{s}`");
        }
    }
    let mut wanted: std::collections::BTreeSet<String> = args.services.iter().cloned().collect();
    if args.include_deps && !wanted.is_empty() {
        let named: Vec<String> = wanted.iter().cloned().collect();
        wanted.extend(berth::graph::ServiceGraph::new(&loaded.project).with_dependencies(&named));
    }
    let store = ImageStore::open(&ImageStore::default_state_root()).context("cannot open the image store")?;
    let cli_policy = args.policy;
    let mut refs: Vec<(Reference, Option<Platform>)> = Vec::new();
    let sink = renderer(args.quiet);
    for (name, svc) in services {
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        if args.ignore_buildable && svc.build.is_some() {
            sink.emit(Event::ImageSkipped { image: svc.image_name(&loaded.project), reason: "it is built".into() });
            continue;
        }
        let Some(img) = &svc.image else { continue };
        let reference = Reference::parse(img).with_context(|| format!("service `{name}`"))?;
        let platform =
            svc.platform.as_deref().map(Platform::parse).transpose().with_context(|| format!("service `{name}`"))?;
        let service_policy = ResolvedService::new(svc)?.pull_policy;
        if matches!(service_policy, PullPolicy::Never | PullPolicy::Build) {
            sink.emit(Event::ImageSkipped {
                image: reference.to_string(),
                reason: "pull_policy of the service".into(),
            });
            continue;
        }
        let policy = cli_policy.unwrap_or(PullPolicy::Always);
        let local = store.lookup(&reference)?.map(|r| r.pulled_at());
        let age = local.and_then(|at| image::age(at, std::time::SystemTime::now()));
        if image::should_pull(policy, local.is_some(), age) == PullDecision::UseLocal {
            sink.emit(Event::ImageSkipped { image: reference.to_string(), reason: "present locally".into() });
            continue;
        }
        if !refs.iter().any(|(r, p)| r == &reference && p == &platform) {
            refs.push((reference, platform));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let results = runtime.block_on(image::pull_many(&store, &refs, &PullOptions::default(), sink.as_ref()));
    let mut failures = Vec::new();
    for ((reference, _), result) in refs.iter().zip(results) {
        if let Err(e) = result {
            if args.ignore_pull_failures {
                sink.emit(Event::Warning { message: format!("pulling `{reference}` failed: {e}") });
            } else {
                failures.push(e.to_string());
            }
        }
    }
    drop(sink);
    match failures.len() {
        0 => Ok(()),
        1 => bail!("{}", failures[0]),
        n => bail!("{n} images failed to pull:\n  {}", failures.join("\n  ")),
    }
}

/// The event renderer for pulls: bars on a terminal, plain lines otherwise, warnings only with `quiet`.
pub fn renderer(quiet: bool) -> Box<dyn EventSink> {
    if quiet {
        Box::new(QuietRenderer)
    } else if std::io::stderr().is_terminal() {
        Box::new(BarRenderer::default())
    } else {
        Box::new(LineRenderer)
    }
}

struct QuietRenderer;

impl EventSink for QuietRenderer {
    fn emit(&self, event: Event) {
        if let Event::Warning { message } = event {
            berth::output::warn(&message);
        }
    }
}

/// Plain lines on stderr, for logs and pipes.
struct LineRenderer;

impl EventSink for LineRenderer {
    fn emit(&self, event: Event) {
        let line = match event {
            Event::Warning { message } => return berth::output::warn(&message),
            Event::PullStarted { image } => format!("{image}: pulling"),
            Event::LayerStarted { image, layer, size } => {
                format!("{image}: layer {layer}: downloading {}", human_size(size))
            }
            Event::LayerDone { image, layer, cached: true } => format!("{image}: layer {layer}: already present"),
            Event::LayerDone { image, layer, cached: false } => format!("{image}: layer {layer}: done"),
            Event::ImagePulled { image, up_to_date: true, .. } => format!("{image}: up to date"),
            Event::ImagePulled { image, digest, downloaded, .. } => {
                format!("{image}: pulled {digest} ({})", human_size(downloaded))
            }
            Event::ImageSkipped { image, reason } => format!("{image}: skipped ({reason})"),
            _ => return,
        };
        // Nowhere left to report a failed write to stderr.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// One progress bar per layer on a terminal.
struct BarRenderer {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, String), ProgressBar>>,
}

impl Default for BarRenderer {
    fn default() -> Self {
        BarRenderer {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl EventSink for BarRenderer {
    fn emit(&self, event: Event) {
        let mut bars = self.bars.lock().expect("bars lock");
        match event {
            Event::Warning { message } => {
                // Nowhere left to report a failed write to the terminal.
                let _ = self.multi.println(format!("warning: {message}"));
            }
            Event::LayerStarted { image, layer, size } => {
                let bar = self.multi.add(ProgressBar::new(size));
                let style =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{} {layer}", short_name(&image)));
                bars.insert((image, layer), bar);
            }
            Event::LayerProgress { image, layer, current, total } => {
                if let Some(b) = bars.get(&(image, layer)) {
                    b.set_position(current);
                    if current >= total {
                        b.set_message("unpacking");
                    }
                }
            }
            Event::LayerDone { image, layer, .. } => {
                if let Some(b) = bars.remove(&(image, layer)) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
            }
            Event::ImagePulled { image, up_to_date, digest, .. } => {
                let what = if up_to_date { "up to date".to_string() } else { format!("pulled {digest}") };
                // Nowhere left to report a failed write to the terminal.
                let _ = self.multi.println(format!("{image}: {what}"));
            }
            Event::ImageSkipped { image, reason } => {
                // Nowhere left to report a failed write to the terminal.
                let _ = self.multi.println(format!("{image}: skipped ({reason})"));
            }
            _ => {}
        }
    }
}

fn short_name(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

/// Decimal sizes as Docker prints them: `2.1MB`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}").chars().take(4).collect::<String>().trim_end_matches('.').to_string() + units[i]
    }
}
