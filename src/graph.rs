//! The service dependency graph: `depends_on` (with the implicit dependencies normalization
//! adds) as a `petgraph` graph, with start order, stop order and the services a selection
//! pulls in.

use std::collections::{BTreeMap, BTreeSet};

use berth_compose::model::{Condition, Project};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

/// An edge: the dependent waits for the dependency to reach `condition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// When the dependency counts as ready.
    pub condition: Condition,
    /// A missing or failing dependency only warns.
    pub required: bool,
    /// Restart the dependent when berth restarts the dependency.
    pub restart: bool,
}

/// Services and their dependencies; edges point from a service to what it depends on.
#[derive(Clone, Debug, Default)]
pub struct ServiceGraph {
    graph: DiGraph<String, Edge>,
    index: BTreeMap<String, NodeIndex>,
}

impl ServiceGraph {
    /// Builds the graph of a (validated, hence acyclic) project. Dependencies on services the
    /// project does not have (optional ones, or ones left out by profiles) are skipped.
    pub fn new(project: &Project) -> ServiceGraph {
        let mut g = ServiceGraph::default();
        for name in project.services.keys() {
            let idx = g.graph.add_node(name.clone());
            g.index.insert(name.clone(), idx);
        }
        for (name, svc) in &project.services {
            for (dep, d) in &svc.depends_on {
                if let Some(&to) = g.index.get(dep) {
                    let edge = Edge { condition: d.condition, required: d.required, restart: d.restart };
                    g.graph.add_edge(g.index[name], to, edge);
                }
            }
        }
        g
    }

    /// The direct dependencies of `service`, sorted by name.
    pub fn dependencies(&self, service: &str) -> Vec<(&str, Edge)> {
        self.neighbors(service, Direction::Outgoing)
    }

    /// The services that depend directly on `service`, sorted by name.
    pub fn dependents(&self, service: &str) -> Vec<(&str, Edge)> {
        self.neighbors(service, Direction::Incoming)
    }

    fn neighbors(&self, service: &str, dir: Direction) -> Vec<(&str, Edge)> {
        let Some(&idx) = self.index.get(service) else { return Vec::new() };
        let mut out: Vec<(&str, Edge)> = self
            .graph
            .edges_directed(idx, dir)
            .map(|e| {
                let other = if dir == Direction::Outgoing { e.target() } else { e.source() };
                (self.graph[other].as_str(), *e.weight())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// `names` and everything they depend on, transitively.
    pub fn with_dependencies(&self, names: &[String]) -> BTreeSet<String> {
        self.closure(names, Direction::Outgoing)
    }

    /// `names` and everything that depends on them, transitively.
    pub fn with_dependents(&self, names: &[String]) -> BTreeSet<String> {
        self.closure(names, Direction::Incoming)
    }

    fn closure(&self, names: &[String], dir: Direction) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<NodeIndex> = names.iter().filter_map(|n| self.index.get(n).copied()).collect();
        while let Some(idx) = todo.pop() {
            if seen.insert(self.graph[idx].clone()) {
                todo.extend(self.graph.neighbors_directed(idx, dir));
            }
        }
        seen
    }

    /// Start order in levels: each level's services depend only on earlier levels, so a level
    /// can start in parallel. Names within a level are sorted.
    pub fn start_levels(&self) -> Vec<Vec<String>> {
        self.levels(Direction::Outgoing)
    }

    /// Stop order in levels: dependents before their dependencies.
    pub fn stop_levels(&self) -> Vec<Vec<String>> {
        self.levels(Direction::Incoming)
    }

    fn levels(&self, waits_on: Direction) -> Vec<Vec<String>> {
        let mut remaining: BTreeMap<NodeIndex, usize> =
            self.graph.node_indices().map(|i| (i, self.graph.neighbors_directed(i, waits_on).count())).collect();
        let mut levels = Vec::new();
        while !remaining.is_empty() {
            let ready: Vec<NodeIndex> = remaining.iter().filter(|(_, n)| **n == 0).map(|(i, _)| *i).collect();
            if ready.is_empty() {
                break; // a cycle; validation refuses those before we get here
            }
            for i in &ready {
                remaining.remove(i);
                for other in self.graph.neighbors_directed(*i, waits_on.opposite()) {
                    if let Some(n) = remaining.get_mut(&other) {
                        *n -= 1;
                    }
                }
            }
            let mut names: Vec<String> = ready.iter().map(|i| self.graph[*i].clone()).collect();
            names.sort();
            levels.push(names);
        }
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_compose::model::{Dependency, Service};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (name, deps) in edges {
            let mut s = Service { name: name.to_string(), ..Service::default() };
            for d in *deps {
                s.depends_on.insert(d.to_string(), Dependency::default());
            }
            p.services.insert(name.to_string(), s);
        }
        p
    }

    #[test]
    fn levels_start_dependencies_first_and_stop_them_last() {
        let g =
            ServiceGraph::new(&project(&[("web", &["app", "cache"]), ("app", &["db"]), ("db", &[]), ("cache", &[])]));
        assert_eq!(g.start_levels(), vec![vec!["cache", "db"], vec!["app"], vec!["web"]]);
        assert_eq!(g.stop_levels(), vec![vec!["web"], vec!["app", "cache"], vec!["db"]]);
    }

    #[test]
    fn closures() {
        let g = ServiceGraph::new(&project(&[("web", &["app"]), ("app", &["db"]), ("db", &[]), ("other", &[])]));
        assert_eq!(g.with_dependencies(&["app".into()]).into_iter().collect::<Vec<_>>(), ["app", "db"]);
        assert_eq!(g.with_dependents(&["app".into()]).into_iter().collect::<Vec<_>>(), ["app", "web"]);
        assert_eq!(g.dependents("db")[0].0, "app");
    }

    #[test]
    fn missing_dependencies_are_skipped() {
        let g = ServiceGraph::new(&project(&[("web", &["gone"])]));
        assert!(g.dependencies("web").is_empty());
        assert_eq!(g.start_levels(), vec![vec!["web"]]);
    }
}
