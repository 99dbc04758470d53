//! The operations a plan is made of. Each carries what the engine needs to carry it out — the
//! compose key of a network or volume beside its host name, a container's service and replica
//! number, whether its anonymous volumes are renewed or removed — so that every decision is
//! taken by `reconcile` and visible in the plan, and the engine only acts.

use std::fmt;

/// The kind of object a step acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// An image.
    Image,
    /// A container.
    Container,
}

/// The verb of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Create the object.
    Create,
    /// Pull the image.
    Pull,
    /// Build the image.
    Build,
    /// Start the container.
    Start,
    /// Stop the container.
    Stop,
    /// Remove the object.
    Remove,
    /// Switch a service's names and published ports from one container to its successor.
    Switch,
    /// Rename the container.
    Rename,
    /// Connect the running container to a network.
    Connect,
    /// Disconnect the running container from a network.
    Disconnect,
    /// Publish (and unpublish) the running container's ports.
    Publish,
}

/// A project network or volume: its compose key and the name it has on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The key under top-level `networks:` or `volumes:`.
    pub key: String,
    /// Its name on the host (`<project>_<key>` or its `name:`).
    pub name: String,
}

/// A container an operation acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerTarget {
    /// Its service.
    pub service: String,
    /// Replica number (1-based; one-off containers count separately).
    pub number: u32,
    /// Its name.
    pub name: String,
    /// A one-off container from `berth run`.
    pub one_off: bool,
}

/// One operation of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Create a project network (bridge, subnet, firewall rules).
    CreateNetwork(Resource),
    /// Remove a project network.
    RemoveNetwork(Resource),
    /// Create a named volume.
    CreateVolume(Resource),
    /// Remove a named volume.
    RemoveVolume(Resource),
    /// Pull `image`, for `service` (whose `platform:` it honours).
    PullImage {
        /// The normalized reference.
        image: String,
        /// The first service that uses it.
        service: String,
    },
    /// Build `image` from the `build:` section of `service`.
    BuildImage {
        /// The name the image gets.
        image: String,
        /// The service whose `build:` it is.
        service: String,
    },
    /// Make a container of a service from the project's current definition.
    CreateContainer {
        /// The container.
        target: ContainerTarget,
        /// Give it new anonymous volumes rather than the ones its predecessor left (`up -V`).
        renew_anonymous_volumes: bool,
    },
    /// Start a container (waiting for its service's dependencies first).
    StartContainer(ContainerTarget),
    /// Stop a container within its grace period.
    StopContainer(ContainerTarget),
    /// Remove a container with what was made for it.
    RemoveContainer {
        /// The container.
        target: ContainerTarget,
        /// Its anonymous volumes go too (`down -v`, `rm -v`).
        anonymous_volumes: bool,
        /// It is removed for good (scale-down, orphan, `down`), not to be made again: no
        /// dependent waits on it.
        leaving: bool,
    },
    /// Once `to` (started beside `from`, a start-first replacement) is ready, switches the
    /// service's DNS answers and published ports from `from` to it, and lets `from` drain.
    SwitchContainer {
        /// The container being replaced (it keeps serving until the switch).
        from: ContainerTarget,
        /// Its successor, under a name of its own until it takes `from`'s.
        to: ContainerTarget,
        /// How long `to` must stay ready before it is switched to.
        monitor: std::time::Duration,
        /// What happens when `to` does not become ready.
        failure_action: berth_compose::resolved::FailureAction,
        /// How many successors of the service may fail to become ready, each given up while its
        /// predecessor keeps serving, before `failure_action` is taken (`max_failure_ratio`).
        tolerated: u32,
    },
    /// Gives a container the name of the one it replaced.
    RenameContainer {
        /// The container, under its current name.
        target: ContainerTarget,
        /// Its new name.
        to: String,
        /// The pause before the next group of replicas is replaced (`update_config.delay`).
        delay: std::time::Duration,
    },
    /// Attaches a running container to a network its service has joined, without making it
    /// anew.
    ConnectNetwork {
        /// The container.
        target: ContainerTarget,
        /// The network.
        network: Resource,
    },
    /// Takes a running container off a network its service has left, without making it anew.
    DisconnectNetwork {
        /// The container.
        target: ContainerTarget,
        /// The network.
        network: Resource,
    },
    /// Serves a running container's ports as its service now declares them: the host ports
    /// that stay keep serving, those in `unpublish` go, those in `publish` come.
    PublishPorts {
        /// The container.
        target: ContainerTarget,
        /// The ports it starts to publish (as declared: `8080:80/tcp`).
        publish: Vec<String>,
        /// The ports it stops publishing.
        unpublish: Vec<String>,
    },
}

impl Operation {
    /// The kind of object it acts on.
    pub fn kind(&self) -> Kind {
        match self {
            Operation::CreateNetwork(_) | Operation::RemoveNetwork(_) => Kind::Network,
            Operation::CreateVolume(_) | Operation::RemoveVolume(_) => Kind::Volume,
            Operation::PullImage { .. } | Operation::BuildImage { .. } => Kind::Image,
            Operation::CreateContainer { .. }
            | Operation::StartContainer(_)
            | Operation::StopContainer(_)
            | Operation::RemoveContainer { .. }
            | Operation::SwitchContainer { .. }
            | Operation::RenameContainer { .. }
            | Operation::ConnectNetwork { .. }
            | Operation::DisconnectNetwork { .. }
            | Operation::PublishPorts { .. } => Kind::Container,
        }
    }

    /// The verb.
    pub fn op(&self) -> Op {
        match self {
            Operation::CreateNetwork(_) | Operation::CreateVolume(_) | Operation::CreateContainer { .. } => Op::Create,
            Operation::RemoveNetwork(_) | Operation::RemoveVolume(_) | Operation::RemoveContainer { .. } => Op::Remove,
            Operation::PullImage { .. } => Op::Pull,
            Operation::BuildImage { .. } => Op::Build,
            Operation::StartContainer(_) => Op::Start,
            Operation::StopContainer(_) => Op::Stop,
            Operation::SwitchContainer { .. } => Op::Switch,
            Operation::RenameContainer { .. } => Op::Rename,
            Operation::ConnectNetwork { .. } => Op::Connect,
            Operation::DisconnectNetwork { .. } => Op::Disconnect,
            Operation::PublishPorts { .. } => Op::Publish,
        }
    }

    /// The object's name: the host name of a network or volume, an image reference, a
    /// container name.
    pub fn name(&self) -> &str {
        match self {
            Operation::CreateNetwork(r)
            | Operation::RemoveNetwork(r)
            | Operation::CreateVolume(r)
            | Operation::RemoveVolume(r) => &r.name,
            Operation::PullImage { image, .. } | Operation::BuildImage { image, .. } => image,
            _ => &self.container().expect("a container operation").name,
        }
    }

    /// The service it belongs to, for containers and images.
    pub fn service(&self) -> Option<&str> {
        match self {
            Operation::PullImage { service, .. } | Operation::BuildImage { service, .. } => Some(service),
            _ => self.container().map(|t| t.service.as_str()),
        }
    }

    /// The container it acts on, for container operations.
    pub fn container(&self) -> Option<&ContainerTarget> {
        match self {
            Operation::CreateContainer { target, .. }
            | Operation::StartContainer(target)
            | Operation::StopContainer(target)
            | Operation::RemoveContainer { target, .. }
            | Operation::RenameContainer { target, .. }
            | Operation::ConnectNetwork { target, .. }
            | Operation::DisconnectNetwork { target, .. }
            | Operation::PublishPorts { target, .. } => Some(target),
            Operation::SwitchContainer { from, .. } => Some(from),
            _ => None,
        }
    }

    /// What it acts on, as progress events name it.
    pub fn subject(&self) -> Subject {
        Subject { kind: self.kind(), name: self.name().to_string(), op: self.op() }
    }
}

/// What a step acts on and how, as renderers show it: `container shop-web-1 start`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Subject {
    /// The kind of object.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The verb.
    pub op: Op,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Network => "network",
            Kind::Volume => "volume",
            Kind::Image => "image",
            Kind::Container => "container",
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Pull => "pull",
            Op::Build => "build",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Remove => "remove",
            Op::Switch => "switch",
            Op::Rename => "rename",
            Op::Connect => "connect",
            Op::Disconnect => "disconnect",
            Op::Publish => "publish",
        })
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.kind, self.name, self.op)
    }
}

/// The plan text of an operation: `kind name op`, with what the bare verb does not say.
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.subject())?;
        match self {
            Operation::CreateContainer { renew_anonymous_volumes: true, .. } => f.write_str(" +new-anonymous-volumes"),
            Operation::RemoveContainer { anonymous_volumes: true, .. } => f.write_str(" +anonymous-volumes"),
            Operation::SwitchContainer { to, .. } => write!(f, " to {}", to.name),
            Operation::RenameContainer { to, .. } => write!(f, " to {to}"),
            Operation::ConnectNetwork { network, .. } => write!(f, " to {}", network.name),
            Operation::DisconnectNetwork { network, .. } => write!(f, " from {}", network.name),
            Operation::PublishPorts { publish, unpublish, .. } => {
                let changes = publish.iter().map(|p| format!("+{p}")).chain(unpublish.iter().map(|p| format!("-{p}")));
                write!(f, " {}", changes.collect::<Vec<_>>().join(" "))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ContainerTarget {
        ContainerTarget { service: "web".into(), number: 2, name: "shop-web-2".into(), one_off: false }
    }

    #[test]
    fn operations_read_as_kind_name_verb() {
        let create = Operation::CreateContainer { target: target(), renew_anonymous_volumes: false };
        assert_eq!(create.to_string(), "container shop-web-2 create");
        assert_eq!(create.service(), Some("web"));
        let rm = Operation::RemoveContainer { target: target(), anonymous_volumes: true, leaving: true };
        assert_eq!(rm.to_string(), "container shop-web-2 remove +anonymous-volumes");
        let net = Operation::CreateNetwork(Resource { key: "front".into(), name: "shop_front".into() });
        assert_eq!((net.kind(), net.op(), net.name(), net.service()), (Kind::Network, Op::Create, "shop_front", None));
        let pull = Operation::PullImage { image: "docker.io/library/nginx:1".into(), service: "web".into() };
        assert_eq!(pull.subject().to_string(), "image docker.io/library/nginx:1 pull");
        assert_eq!(serde_json::to_value(pull.subject()).unwrap()["kind"], "image");
        let next = ContainerTarget { name: "shop-web-2-next".into(), ..target() };
        let switch = Operation::SwitchContainer {
            from: target(),
            to: next.clone(),
            monitor: std::time::Duration::ZERO,
            failure_action: berth_compose::resolved::FailureAction::Rollback,
            tolerated: 0,
        };
        assert_eq!(switch.to_string(), "container shop-web-2 switch to shop-web-2-next");
        let rename = Operation::RenameContainer { target: next, to: "shop-web-2".into(), delay: Default::default() };
        assert_eq!(rename.to_string(), "container shop-web-2-next rename to shop-web-2");
        let back = Resource { key: "back".into(), name: "shop_back".into() };
        let connect = Operation::ConnectNetwork { target: target(), network: back.clone() };
        assert_eq!(connect.to_string(), "container shop-web-2 connect to shop_back");
        let disconnect = Operation::DisconnectNetwork { target: target(), network: back };
        assert_eq!(disconnect.to_string(), "container shop-web-2 disconnect from shop_back");
        let publish = Operation::PublishPorts {
            target: target(),
            publish: vec!["8081:80/tcp".into()],
            unpublish: vec!["8080:80/tcp".into()],
        };
        assert_eq!(publish.to_string(), "container shop-web-2 publish +8081:80/tcp -8080:80/tcp");
    }
}
