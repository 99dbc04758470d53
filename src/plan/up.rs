//! Reconciling for `up`: networks, volumes and images first, then each service's containers
//! in dependency order — created, recreated (when Compose would: config hash, image, new
//! attachments), started, or removed when scaling down — and orphans.

use std::collections::{BTreeMap, BTreeSet};

use berth_compose::model::{Project, Service, VolumeType};
use berth_compose::resolved::{NamespaceMode, PullPolicy, ResolveError, ResolvedService, UpdateOrder, UpdatePolicy};

use super::hash::{config_hash, diff_paths, hashed_config};
use super::inplace::{self, InPlace};
use super::{ContainerTarget, Observed, ObservedContainer, Operation, Plan, Resource, Status};
use crate::graph::ServiceGraph;

/// What `berth up` was asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpOptions {
    /// Only these services (and, unless `no_deps`, their dependencies).
    pub services: Vec<String>,
    /// Do not include dependencies of the named services.
    pub no_deps: bool,
    /// Recreate containers even when nothing changed.
    pub force_recreate: bool,
    /// Never recreate existing containers.
    pub no_recreate: bool,
    /// Recreate the dependents of recreated services too.
    pub always_recreate_deps: bool,
    /// Recreate containers to give them new anonymous volumes.
    pub renew_anon_volumes: bool,
    /// Remove containers of services the project no longer has.
    pub remove_orphans: bool,
    /// Create but do not start.
    pub no_start: bool,
    /// `--pull`: overrides every service's `pull_policy`.
    pub pull: Option<PullPolicy>,
    /// `--scale svc=N`.
    pub scale: BTreeMap<String, u64>,
    /// `--build`: build every image that has a `build:` section.
    pub build: bool,
    /// `--no-build`: build none, even when missing.
    pub no_build: bool,
    /// Update policies that replace the services' own `update_config` (a rollback is paced by
    /// the service's `rollback_config`).
    pub policies: BTreeMap<String, UpdatePolicy>,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A service named on the command line does not exist.
    #[error("no such service: {0:?}")]
    NoSuchService(String),
    /// An `external: true` network that does not exist.
    #[error("network {0:?} declared as external, but could not be found")]
    ExternalNetworkMissing(String),
    /// An `external: true` volume that does not exist.
    #[error("external volume {0:?} not found")]
    ExternalVolumeMissing(String),
    /// `pull_policy: never` and the image is not in the store.
    #[error("image {image:?} of service {service:?} is not present and its pull policy is \"never\"")]
    ImageMissing {
        /// The service.
        service: String,
        /// Its image.
        image: String,
    },
    /// A service that does not resolve (changed after loading).
    #[error(transparent)]
    Invalid(#[from] ResolveError),
    /// `--no-build` and the image of a service with `build:` is not in the store.
    #[error("image {image:?} of service {service:?} is not present and --no-build was given")]
    NotBuilt {
        /// The service.
        service: String,
        /// Its image.
        image: String,
    },
    /// `--no-recreate` together with `--force-recreate` or `--always-recreate-deps`.
    #[error("--no-recreate cannot be combined with {0}")]
    Conflict(&'static str),
}

/// Plans `up` for `project` given what exists.
pub fn reconcile(project: &Project, observed: &Observed, opts: &UpOptions) -> Result<Plan, PlanError> {
    if opts.no_recreate && opts.force_recreate {
        return Err(PlanError::Conflict("--force-recreate"));
    }
    if opts.no_recreate && opts.always_recreate_deps {
        return Err(PlanError::Conflict("--always-recreate-deps"));
    }
    if opts.build && opts.no_build {
        return Err(PlanError::Conflict("--build and --no-build"));
    }
    let graph = ServiceGraph::new(project);
    let targets = targets(project, &graph, opts)?;
    let mut plan = Plan::default();
    orphans(project, observed, opts, &mut plan);
    let resolved = targets
        .iter()
        .map(|t| Ok((t.clone(), ResolvedService::new(&project.services[t])?)))
        .collect::<Result<BTreeMap<_, _>, ResolveError>>()?;
    let resources = resources(project, observed, &targets, &mut plan)?;
    let images = images(project, observed, &resolved, opts, &mut plan)?;
    let mut ctx = Containers {
        project,
        resolved: &resolved,
        observed,
        opts,
        graph: &graph,
        resources,
        images,
        starts: BTreeMap::new(),
        creates: BTreeMap::new(),
        recreated: BTreeSet::new(),
    };
    for level in graph.start_levels() {
        for name in level.iter().filter(|n| targets.contains(*n)) {
            ctx.service(&project.services[name], &mut plan);
        }
    }
    Ok(plan)
}

/// The services `up` with `opts` brings up: the named ones with their dependencies (unless
/// `no_deps`), or all.
pub fn selected(project: &Project, opts: &UpOptions) -> Result<BTreeSet<String>, PlanError> {
    targets(project, &ServiceGraph::new(project), opts)
}

fn targets(project: &Project, graph: &ServiceGraph, opts: &UpOptions) -> Result<BTreeSet<String>, PlanError> {
    if let Some(missing) = opts.services.iter().find(|s| !project.services.contains_key(*s)) {
        return Err(PlanError::NoSuchService(missing.clone()));
    }
    Ok(match (opts.services.is_empty(), opts.no_deps) {
        (true, _) => project.services.keys().cloned().collect(),
        (false, true) => opts.services.iter().cloned().collect(),
        (false, false) => graph.with_dependencies(&opts.services),
    })
}

fn orphans(project: &Project, observed: &Observed, opts: &UpOptions, plan: &mut Plan) {
    // One-off containers (`run`) of a service the project no longer has count too, as in Compose.
    let orphans: Vec<&ObservedContainer> =
        observed.containers.iter().filter(|c| !project.services.contains_key(&c.service)).collect();
    if orphans.is_empty() {
        return;
    }
    if !opts.remove_orphans {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        plan.warnings.push(format!(
            "found orphan containers ({}) for this project; if you removed or renamed their service, run \
             `berth up --remove-orphans` to clean them up",
            names.join(", ")
        ));
        return;
    }
    for c in orphans {
        remove(plan, c, "orphan", true);
    }
}

/// Step ids of networks and volumes created by the plan, by compose key.
#[derive(Default)]
struct Resources {
    networks: BTreeMap<String, usize>,
    volumes: BTreeMap<String, usize>,
}

fn resources(
    project: &Project,
    observed: &Observed,
    targets: &BTreeSet<String>,
    plan: &mut Plan,
) -> Result<Resources, PlanError> {
    let mut r = Resources::default();
    let services = || targets.iter().map(|t| &project.services[t]);
    let net_keys: BTreeSet<&String> = services().flat_map(|s| s.networks.keys()).collect();
    for key in net_keys {
        let Some(net) = project.networks.get(key) else { continue };
        let name = net.name.clone().unwrap_or_else(|| key.clone());
        if observed.networks.contains(&name) {
            continue;
        }
        if net.external == Some(true) {
            return Err(PlanError::ExternalNetworkMissing(name));
        }
        let op = Operation::CreateNetwork(Resource { key: key.clone(), name });
        r.networks.insert(key.clone(), plan.add(op, "not found", vec![]));
    }
    let vol_keys: BTreeSet<&String> = services().flat_map(named_volumes).collect();
    for key in vol_keys {
        let Some(vol) = project.volumes.get(key) else { continue };
        let name = vol.name.clone().unwrap_or_else(|| key.clone());
        if observed.volumes.contains(&name) {
            continue;
        }
        if vol.external == Some(true) {
            return Err(PlanError::ExternalVolumeMissing(name));
        }
        let op = Operation::CreateVolume(Resource { key: key.clone(), name });
        r.volumes.insert(key.clone(), plan.add(op, "not found", vec![]));
    }
    Ok(r)
}

/// The services whose containers must exist before one of `s` is made: the one whose network
/// namespace it joins (`network_mode: service:NAME`) and those it takes mounts from
/// (`volumes_from`).
fn source_services(s: &ResolvedService) -> impl Iterator<Item = &str> {
    let netns = s.network_mode.as_ref().and_then(NamespaceMode::service);
    s.volumes_from.iter().filter_map(|v| v.service()).chain(netns)
}

fn named_volumes(s: &Service) -> impl Iterator<Item = &String> {
    s.volumes.iter().filter(|v| v.kind == VolumeType::Volume).filter_map(|v| v.source.as_ref())
}

fn images(
    project: &Project,
    observed: &Observed,
    targets: &BTreeMap<String, ResolvedService>,
    opts: &UpOptions,
    plan: &mut Plan,
) -> Result<BTreeMap<String, usize>, PlanError> {
    use crate::image::PullDecision;
    let mut steps = BTreeMap::new();
    for (name, resolved) in targets {
        let svc = &project.services[name];
        let image = svc.image_name(project);
        if steps.contains_key(&image) {
            continue;
        }
        let present = observed.images.contains_key(&image);
        if svc.build.is_some() {
            let cause = match () {
                _ if opts.no_build && !present => {
                    return Err(PlanError::NotBuilt { service: name.clone(), image });
                }
                _ if opts.no_build => continue,
                _ if opts.build => "up --build",
                _ if resolved.pull_policy == PullPolicy::Build => "pull policy \"build\"",
                _ if !present => "not present",
                _ => continue,
            };
            let op = Operation::BuildImage { image: image.clone(), service: name.clone() };
            steps.insert(image, plan.add(op, cause, vec![]));
            continue;
        }
        let policy = opts.pull.unwrap_or(resolved.pull_policy);
        let cause = match crate::image::should_pull(policy, present, observed.image_ages.get(&image).copied()) {
            PullDecision::PullAlways => "pull policy \"always\"".to_string(),
            PullDecision::PullMissing => "not present".to_string(),
            PullDecision::PullStale => format!("pull policy \"{policy}\": the local copy is older"),
            PullDecision::MissingNever => return Err(PlanError::ImageMissing { service: name.clone(), image }),
            PullDecision::UseLocal => continue,
        };
        let op = Operation::PullImage { image: image.clone(), service: name.clone() };
        steps.insert(image, plan.add(op, cause, vec![]));
    }
    Ok(steps)
}

/// The name a start-first successor of container `name` has until it takes that name: one its
/// network namespace, secrets and leases are made under for good, so never the key of the
/// container it replaces (`key`, itself a successor once).
pub fn successor_name(name: &str, key: Option<&str>) -> String {
    let next = format!("{name}-next");
    if key == Some(next.as_str()) {
        format!("{name}-next2")
    } else {
        next
    }
}

/// The start-first replacements of one service so far, paced by its update policy: each group
/// of `parallelism` replicas starts once the group before it is done.
struct Replacements {
    policy: UpdatePolicy,
    /// The last step of each replacement planned, in order.
    done: Vec<usize>,
    /// How many new containers may fail to become ready before `failure_action` is taken: the
    /// policy's `max_failure_ratio` of the service's replicas, rounded down.
    tolerated: u32,
}

impl Replacements {
    fn new(policy: UpdatePolicy, replicas: usize) -> Replacements {
        let tolerated = (policy.max_failure_ratio * replicas as f64 + 1e-9).floor() as u32;
        Replacements { policy, done: Vec::new(), tolerated }
    }

    /// The steps the next replacement waits for: the previous group's.
    fn after(&self) -> Vec<usize> {
        let n = self.policy.parallelism as usize;
        if n == 0 || self.done.len() < n {
            return Vec::new();
        }
        let group = (self.done.len() / n - 1) * n;
        self.done[group..group + n].to_vec()
    }

    fn done(&mut self, last: usize) {
        self.done.push(last);
    }
}

fn is_active(s: Status) -> bool {
    matches!(s, Status::Running | Status::Paused | Status::Restarting)
}

/// The container an observed one is, as operations name it.
pub(super) fn target_of(c: &ObservedContainer) -> ContainerTarget {
    ContainerTarget { service: c.service.clone(), number: c.number, name: c.name.clone(), one_off: c.one_off }
}

/// Adds the steps that remove `c` (stopping it first when it runs); `leaving`: it is not made
/// again by this plan. Returns the remove step.
fn remove(plan: &mut Plan, c: &ObservedContainer, cause: &str, leaving: bool) -> usize {
    let stop = is_active(c.status).then(|| plan.add(Operation::StopContainer(target_of(c)), cause, vec![]));
    let op = Operation::RemoveContainer { target: target_of(c), anonymous_volumes: false, leaving };
    plan.add(op, cause, stop.into_iter().collect())
}

struct Containers<'a> {
    project: &'a Project,
    /// The target services, resolved.
    resolved: &'a BTreeMap<String, ResolvedService>,
    observed: &'a Observed,
    opts: &'a UpOptions,
    graph: &'a ServiceGraph,
    resources: Resources,
    images: BTreeMap<String, usize>,
    /// Start step ids per service, for dependents to wait on.
    starts: BTreeMap<String, Vec<usize>>,
    /// Create step ids per service: a `volumes_from` dependent's create waits for them, since
    /// it takes over the mounts recorded when they are made.
    creates: BTreeMap<String, Vec<usize>>,
    /// Services whose containers this plan recreates.
    recreated: BTreeSet<String>,
}

impl Containers<'_> {
    fn service(&mut self, svc: &Service, plan: &mut Plan) {
        let mut existing: Vec<&ObservedContainer> =
            self.observed.containers.iter().filter(|c| c.service == svc.name && !c.one_off).collect();
        existing.sort_by_key(|c| c.number);
        self.interrupted_replacements(svc, &mut existing, plan);
        let want = self.opts.scale.get(&svc.name).copied().unwrap_or_else(|| svc.replicas()) as usize;
        for c in existing.iter().skip(want).rev() {
            remove(plan, c, &format!("scale down to {want}"), true);
        }
        let keep: Vec<&ObservedContainer> = existing.into_iter().take(want).collect();
        let resource_deps = self.resource_deps(svc);
        let dep_starts: Vec<usize> = self
            .graph
            .dependencies(&svc.name)
            .iter()
            .flat_map(|(d, _)| self.starts.get(*d).cloned().unwrap_or_default())
            .collect();
        let hash = config_hash(svc);
        let mut starts = Vec::new();
        let mut replacements = Replacements::new(self.policy(svc), want);
        for c in &keep {
            if let Some(change) = self.in_place(svc, c, &hash) {
                inplace::plan(target_of(c), change, &self.resources.networks, plan);
                continue;
            }
            match self.recreate_cause(svc, c, &hash) {
                Some(cause) if self.starts_first(svc, c) => {
                    self.recreated.insert(svc.name.clone());
                    let start =
                        self.replace_start_first(svc, c, &cause, &resource_deps, &dep_starts, &mut replacements, plan);
                    starts.push(start);
                }
                Some(cause) => {
                    self.recreated.insert(svc.name.clone());
                    let rm = remove(plan, c, &cause, false);
                    let mut deps = resource_deps.clone();
                    deps.push(rm);
                    let target = self.target(svc, c.number);
                    let create = plan.add(self.create(target.clone()), &cause, deps);
                    self.creates.entry(svc.name.clone()).or_default().push(create);
                    starts.extend(self.start(plan, target, create, &dep_starts, "created"));
                }
                None if !is_active(c.status) => {
                    let cause = if c.status == Status::Created { "created" } else { "not running" };
                    starts.extend(self.start(plan, target_of(c), 0, &dep_starts, cause));
                }
                None => {}
            }
        }
        let used: BTreeSet<u32> = keep.iter().map(|c| c.number).collect();
        let cause = if keep.is_empty() { "not found".to_string() } else { format!("scale up to {want}") };
        for number in (1u32..).filter(|n| !used.contains(n)).take(want.saturating_sub(keep.len())) {
            let target = self.target(svc, number);
            let create = plan.add(self.create(target.clone()), &cause, resource_deps.clone());
            self.creates.entry(svc.name.clone()).or_default().push(create);
            starts.extend(self.start(plan, target, create, &dep_starts, "created"));
        }
        self.starts.insert(svc.name.clone(), starts);
    }

    /// Whether `c` is replaced start-first: its service asks for it (`update_config.order`), it
    /// runs, and a successor can run beside it (a name of its own, a network namespace of its
    /// own, and `up` starts containers).
    fn starts_first(&self, svc: &Service, c: &ObservedContainer) -> bool {
        let r = &self.resolved[&svc.name];
        self.policy(svc).order == UpdateOrder::StartFirst
            && c.status == Status::Running
            && !c.broken
            && !self.opts.no_start
            && svc.container_name.is_none()
            && r.network_mode.is_none()
    }

    /// Plans the start-first replacement of `c`: its successor is made and started beside it
    /// under a name of its own, switched to once ready, and takes `c`'s name once `c` is gone.
    /// Returns the successor's start step.
    #[allow(clippy::too_many_arguments)]
    fn replace_start_first(
        &mut self,
        svc: &Service,
        c: &ObservedContainer,
        cause: &str,
        resource_deps: &[usize],
        dep_starts: &[usize],
        replacements: &mut Replacements,
        plan: &mut Plan,
    ) -> usize {
        let old = target_of(c);
        let next = ContainerTarget { name: successor_name(&c.name, c.key.as_deref()), ..old.clone() };
        let mut deps = resource_deps.to_vec();
        deps.extend(replacements.after());
        let create = plan.add(self.create(next.clone()), format!("{cause}; start-first"), deps);
        self.creates.entry(svc.name.clone()).or_default().push(create);
        let mut deps = dep_starts.to_vec();
        deps.push(create);
        let start = plan.add(Operation::StartContainer(next.clone()), "created", deps);
        let policy = replacements.policy;
        let switch = Operation::SwitchContainer {
            from: old.clone(),
            to: next.clone(),
            monitor: policy.monitor,
            failure_action: policy.failure_action,
            tolerated: replacements.tolerated,
        };
        let switch = plan.add(switch, "start-first", vec![start]);
        let stop = plan.add(Operation::StopContainer(old.clone()), "replaced", vec![switch]);
        let rm = Operation::RemoveContainer { target: old, anonymous_volumes: false, leaving: true };
        let rm = plan.add(rm, "replaced", vec![stop]);
        let rename = Operation::RenameContainer { target: next, to: c.name.clone(), delay: policy.delay };
        let rename = plan.add(rename, "replaced", vec![rm]);
        replacements.done(rename);
        start
    }

    /// Successors left by an interrupted start-first replacement: one whose predecessor is gone
    /// takes its name now; one whose predecessor is still there goes (the plan replaces the
    /// predecessor again if it still must be).
    fn interrupted_replacements(&self, svc: &Service, existing: &mut Vec<&ObservedContainer>, plan: &mut Plan) {
        let is_successor = |c: &ObservedContainer| {
            let canonical = self.target(svc, c.number).name;
            c.name != canonical
                && [None, Some(successor_name(&canonical, None).as_str())]
                    .into_iter()
                    .any(|k| c.name == successor_name(&canonical, k))
        };
        let successors: Vec<&ObservedContainer> = existing.iter().copied().filter(|c| is_successor(c)).collect();
        for c in successors {
            let canonical = self.target(svc, c.number).name;
            if existing.iter().any(|o| o.name == canonical) {
                remove(plan, c, "an interrupted start-first replacement", true);
                existing.retain(|o| o.name != c.name);
            } else {
                let op = Operation::RenameContainer { target: target_of(c), to: canonical, delay: Default::default() };
                plan.add(op, "an interrupted start-first replacement", vec![]);
            }
        }
    }

    /// How `svc`'s containers are replaced: as the options say, else its `update_config`.
    fn policy(&self, svc: &Service) -> UpdatePolicy {
        self.opts.policies.get(&svc.name).copied().unwrap_or(self.resolved[&svc.name].update)
    }

    /// Replica `number` of `svc`.
    fn target(&self, svc: &Service, number: u32) -> ContainerTarget {
        let name = self.project.container_name(svc, number);
        ContainerTarget { service: svc.name.clone(), number, name, one_off: false }
    }

    fn create(&self, target: ContainerTarget) -> Operation {
        Operation::CreateContainer { target, renew_anonymous_volumes: self.opts.renew_anon_volumes }
    }

    /// Adds a start step unless `--no-start`; `after` is the create step (0 for none).
    fn start(
        &self,
        plan: &mut Plan,
        target: ContainerTarget,
        after: usize,
        deps: &[usize],
        cause: &str,
    ) -> Option<usize> {
        if self.opts.no_start {
            return None;
        }
        let mut d = deps.to_vec();
        if after > 0 {
            d.push(after);
        }
        Some(plan.add(Operation::StartContainer(target), cause, d))
    }

    fn resource_deps(&self, svc: &Service) -> Vec<usize> {
        let nets = svc.networks.keys().filter_map(|k| self.resources.networks.get(k));
        let vols = named_volumes(svc).filter_map(|k| self.resources.volumes.get(k));
        let image = self.images.get(&svc.image_name(self.project));
        let sources = source_services(&self.resolved[&svc.name]).filter_map(|s| self.creates.get(s)).flatten();
        nets.chain(vols).chain(image).chain(sources).copied().collect()
    }

    /// The change that brings running container `c` up to date in place, when only its networks
    /// or ports changed and nothing else would make it anew (see `inplace`).
    fn in_place(&self, svc: &Service, c: &ObservedContainer, hash: &str) -> Option<InPlace> {
        if c.broken || self.opts.force_recreate || self.opts.no_recreate || c.status != Status::Running {
            return None;
        }
        if c.config_hash == hash {
            return None;
        }
        let change = inplace::changes(self.project, svc, c.config.as_ref()?)?;
        let joined: Vec<&str> = change.connect.iter().map(|r| r.key.as_str()).collect();
        self.other_cause(svc, c, &joined).is_none().then_some(change)
    }

    fn recreate_cause(&self, svc: &Service, c: &ObservedContainer, hash: &str) -> Option<String> {
        if c.broken {
            return Some("its files are gone (an interrupted create or remove)".into());
        }
        if self.opts.force_recreate {
            return Some("forced".into());
        }
        if self.opts.no_recreate {
            return None;
        }
        if c.config_hash != hash {
            let changed = c.config.as_ref().map(|old| diff_paths(old, &hashed_config(svc), 3)).unwrap_or_default();
            return Some(if changed.is_empty() {
                "config changed".into()
            } else {
                format!("config changed: {}", changed.join(", "))
            });
        }
        self.other_cause(svc, c, &[])
    }

    /// Why `c` is made anew other than a changed configuration; networks in `joining` are
    /// joined in place, so their being new does not count.
    fn other_cause(&self, svc: &Service, c: &ObservedContainer, joining: &[&str]) -> Option<String> {
        let image = svc.image_name(self.project);
        if !self.images.contains_key(&image) {
            if let (Some(have), Some(want)) = (&c.image_digest, self.observed.images.get(&image)) {
                if have != want {
                    return Some("image changed".into());
                }
            }
        }
        let remade = |k: &&String| self.resources.networks.contains_key(*k) && !joining.contains(&k.as_str());
        if let Some(key) = svc.networks.keys().find(remade) {
            return Some(format!("network {key:?} is new"));
        }
        if let Some(key) = named_volumes(svc).find(|k| self.resources.volumes.contains_key(*k)) {
            return Some(format!("volume {key:?} is new"));
        }
        if self.opts.renew_anon_volumes
            && svc.volumes.iter().any(|v| v.kind == VolumeType::Volume && v.source.is_none())
        {
            return Some("renew anonymous volumes".into());
        }
        if self.opts.always_recreate_deps {
            if let Some((dep, _)) =
                self.graph.dependencies(&svc.name).into_iter().find(|(d, _)| self.recreated.contains(*d))
            {
                return Some(format!("dependency {dep:?} recreated"));
            }
        }
        None
    }
}
