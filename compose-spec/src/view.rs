//! The texts `berth config` prints: the whole model (YAML or JSON), name lists, the
//! variables in use, and the interpolation explanation.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::interpolate::Modifier;
use crate::loader::Loaded;
use crate::output::{project_json, to_yaml};

/// Which parts of the output were asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// Service names.
    pub services: bool,
    /// Volume keys.
    pub volumes: bool,
    /// Network keys.
    pub networks: bool,
    /// Profile names.
    pub profiles: bool,
    /// Image names.
    pub images: bool,
    /// Variables used.
    pub variables: bool,
    /// Interpolation explanations.
    pub explain: bool,
    /// JSON instead of YAML for the model.
    pub json: bool,
}

/// One way of printing a loaded project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The model as YAML.
    Yaml,
    /// The model as JSON.
    Json,
    /// Service names.
    Services,
    /// Volume keys.
    Volumes,
    /// Network keys.
    Networks,
    /// Profile names.
    Profiles,
    /// Image names.
    Images,
    /// Variables, values and origins.
    Variables,
    /// Interpolations and where their variables came from.
    Explain,
}

impl View {
    /// The view the flags select (the first list flag wins, as in Compose).
    pub fn from_flags(f: Flags) -> View {
        let lists = [
            (f.services, View::Services),
            (f.volumes, View::Volumes),
            (f.networks, View::Networks),
            (f.profiles, View::Profiles),
            (f.images, View::Images),
            (f.variables, View::Variables),
            (f.explain, View::Explain),
        ];
        match lists.iter().find(|(on, _)| *on) {
            Some((_, v)) => *v,
            None if f.json => View::Json,
            None => View::Yaml,
        }
    }

    /// Renders the view.
    pub fn render(self, loaded: &Loaded) -> String {
        let p = &loaded.project;
        let lines = |items: Vec<String>| items.into_iter().map(|s| s + "\n").collect::<String>();
        match self {
            View::Yaml => to_yaml(&project_json(p)),
            View::Json => serde_json::to_string_pretty(&project_json(p)).expect("json") + "\n",
            View::Services => lines(p.services.keys().cloned().collect()),
            View::Volumes => lines(p.volumes.keys().cloned().collect()),
            View::Networks => lines(p.networks.keys().cloned().collect()),
            View::Profiles => {
                let set: BTreeSet<String> = p.services.values().flat_map(|s| s.profiles.iter().cloned()).collect();
                lines(set.into_iter().collect())
            }
            View::Images => lines(p.services.values().map(|s| s.image_name(p)).collect()),
            View::Variables => variables(loaded),
            View::Explain => explain(loaded),
        }
    }
}

fn variables(loaded: &Loaded) -> String {
    let mut seen = BTreeSet::new();
    let mut out = String::from("NAME\tVALUE\tSET IN\n");
    for i in &loaded.interpolations {
        for v in &i.variables {
            if seen.insert(v.name.clone()) {
                let origin = v.origin.as_ref().map(|o| o.to_string()).unwrap_or_else(|| "(not set)".into());
                let _ = writeln!(out, "{}\t{}\t{origin}", v.name, v.value.as_deref().unwrap_or(""));
            }
        }
    }
    out
}

fn explain(loaded: &Loaded) -> String {
    let mut out = String::new();
    for i in &loaded.interpolations {
        let path = if i.path.is_empty() { "(root)" } else { i.path.as_str() };
        let _ = writeln!(out, "{path}: {:?}  ({})", i.result, i.span);
        let _ = writeln!(out, "  written {:?}", i.template);
        for v in &i.variables {
            let _ = writeln!(out, "  {}", describe(v));
        }
    }
    if out.is_empty() {
        out.push_str("no value uses a variable\n");
    }
    out
}

fn describe(v: &crate::loader::VariableUse) -> String {
    let name = &v.name;
    match (&v.origin, v.used_default, v.modifier) {
        (Some(o), false, _) => format!("${name} = {:?} from {o}", v.value.as_deref().unwrap_or("")),
        (Some(o), true, Some(m @ (Modifier::ReplaceIfNonEmpty | Modifier::ReplaceIfSet))) => {
            format!("${name} is set in {o}, so the `{m}` replacement text was used")
        }
        (Some(o), true, _) => format!("${name} is empty in {o}, so the `:-` default was used"),
        (None, true, Some(m)) => format!("${name} is not set, so the `{m}` default was used"),
        (None, _, _) => format!("${name} is not set: it became an empty string"),
    }
}
