//! Narrowing a project to the services named on the command line, with their dependencies.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::model::Project;

/// Keeps only `names` and (when `with_deps`) the services they depend on, transitively.
/// Unknown names are an error that lists the services there are.
pub fn select_services(project: &mut Project, names: &[String], with_deps: bool) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut keep = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for n in names {
        if !project.services.contains_key(n) {
            let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
            return Err(Error::msg(format!("no such service: {n:?}"))
                .with_hint(format!("the project has: {}", known.join(", "))));
        }
        todo.push(n.clone());
    }
    while let Some(n) = todo.pop() {
        if !keep.insert(n.clone()) || !with_deps {
            continue;
        }
        if let Some(svc) = project.services.get(&n) {
            todo.extend(svc.depends_on.keys().filter(|d| project.services.contains_key(*d)).cloned());
        }
    }
    project.services.retain(|name, _| keep.contains(name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dependency, Service};

    fn project() -> Project {
        let mut p = Project::default();
        for (name, deps) in [("web", vec!["app"]), ("app", vec!["db"]), ("db", vec![]), ("other", vec![])] {
            let mut s = Service { name: name.into(), ..Service::default() };
            for d in deps {
                s.depends_on.insert(d.into(), Dependency::default());
            }
            p.services.insert(name.into(), s);
        }
        p
    }

    #[test]
    fn keeps_dependencies_transitively() {
        let mut p = project();
        select_services(&mut p, &["web".into()], true).unwrap();
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["app", "db", "web"]);
        let mut p = project();
        select_services(&mut p, &["web".into()], false).unwrap();
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
    }

    #[test]
    fn unknown_service_is_an_error() {
        let e = select_services(&mut project(), &["nope".into()], true).unwrap_err();
        assert_eq!(e.message, "no such service: \"nope\"");
    }
}
