//! The userland port proxy run by the project supervisor: it listens on `host_ip:host_port` and
//! relays TCP connections and UDP datagrams to the container's address. It is what makes published
//! ports work for loopback clients (DNAT to loopback needs `route_localnet`), and the fallback where
//! nftables is absent.
//!
//! All ports are bound before anything is forwarded, so a port in use is reported before any
//! container starts; a proxy that fails to bind one port releases the others. A port can also be
//! bound ahead ([`HeldPort`], a reservation) and handed to the proxy that later serves it.
//!
//! UDP has no connections: each client address gets a *flow*, a socket connected to the container
//! that answers go back through, dropped after [`UDP_IDLE`] without answers. A port keeps at most
//! [`UDP_MAX_FLOWS`] of them, evicting the least recently active, so a flood of source addresses
//! cannot exhaust file descriptors. A failing accept, receive or flow setup (out of descriptors, say)
//! is retried after [`ERROR_BACKOFF`] instead of in a tight loop.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinHandle};

use crate::error::{Error, Result};

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port (ranges are expanded by the caller, one mapping per port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// TCP or UDP.
    pub proto: Proto,
    /// The host address (`0.0.0.0` or `::` for all).
    pub host_ip: IpAddr,
    /// The host port; 0 for a random free one.
    pub host_port: u16,
    /// The container's address on its network.
    pub container_ip: IpAddr,
    /// The container port.
    pub container_port: u16,
}

impl PortMapping {
    fn host_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host_ip, self.host_port)
    }
    fn target(&self) -> SocketAddr {
        SocketAddr::new(self.container_ip, self.container_port)
    }
}

/// A `ports:` entry after parsing, before ranges are expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishSpec {
    /// TCP or UDP.
    pub proto: Proto,
    /// `host_ip`; all IPv4 addresses when `None`.
    pub host_ip: Option<IpAddr>,
    /// The host port or range (inclusive); random ports when `None` (`"80"` alone).
    pub host_ports: Option<(u16, u16)>,
    /// The container port or range (inclusive).
    pub container_ports: (u16, u16),
}

impl PublishSpec {
    /// One mapping per port to `container_ip`: host and container ranges pair up one to one; with
    /// no host port each container port gets a random one (host port 0).
    pub fn expand(&self, container_ip: IpAddr) -> Result<Vec<PortMapping>> {
        let (c0, c1) = self.container_ports;
        let bad = |why: &'static str| Error::InvalidName { what: "port range", name: self.describe(), why };
        if c0 > c1 {
            return Err(bad("it ends before it starts"));
        }
        let host_ip = self.host_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let host_port = |i: u16| -> Result<u16> {
            match self.host_ports {
                None => Ok(0),
                Some((h0, h1)) if h0 <= h1 && h1 - h0 == c1 - c0 => Ok(h0 + i),
                Some(_) => Err(bad("host and container ranges differ in length")),
            }
        };
        (0..=c1 - c0)
            .map(|i| {
                Ok(PortMapping {
                    proto: self.proto,
                    host_ip,
                    host_port: host_port(i)?,
                    container_ip,
                    container_port: c0 + i,
                })
            })
            .collect()
    }

    fn describe(&self) -> String {
        let range = |(a, b): (u16, u16)| if a == b { a.to_string() } else { format!("{a}-{b}") };
        let host = self.host_ports.map(|h| format!("{}:", range(h))).unwrap_or_default();
        format!("{host}{}/{}", range(self.container_ports), self.proto)
    }
}

/// How long a UDP client's flow lives without answers from the container.
pub const UDP_IDLE: Duration = Duration::from_secs(60);
/// How many UDP flows one published port keeps at most.
pub const UDP_MAX_FLOWS: usize = 1024;
/// The pause after a failed accept, receive or flow setup.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// How long connecting to the container may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running proxy; stops when dropped.
///
/// Each port's target can be changed while it serves ([`PortProxy::handover`]): connections
/// accepted before go on to the old target, new ones go to the new target, and the listening
/// socket is never closed, so a client never finds the port shut during a replacement.
pub struct PortProxy {
    bound: Vec<PortMapping>,
    tasks: Vec<JoinHandle<()>>,
    /// Each port's current target, read for every connection or new flow.
    targets: Vec<Target>,
    /// Open TCP connections by target address.
    open: Connections,
}

/// Where a port forwards to now.
type Target = Arc<std::sync::RwLock<SocketAddr>>;

/// Open TCP connections by the address they were relayed to.
#[derive(Clone, Default)]
struct Connections(Arc<Mutex<HashMap<SocketAddr, usize>>>);

impl Connections {
    fn count(&self, f: impl Fn(&SocketAddr) -> bool) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(a, _)| f(a)).map(|(_, n)| n).sum()
    }

    /// Counts one connection to `target` until the guard drops.
    fn open(&self, target: SocketAddr) -> OpenConnection {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(target).or_default() += 1;
        OpenConnection(self.clone(), target)
    }
}

struct OpenConnection(Connections, SocketAddr);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut map = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// A host port bound ahead of its proxy: what the supervisor holds for a container that is not
/// running yet (binding is the reservation: only one socket can hold `host_ip:port`), handed
/// to [`PortProxy::serve`] when it starts.
#[derive(Debug)]
pub enum HeldPort {
    /// A listening TCP socket.
    Tcp(std::net::TcpListener),
    /// A bound UDP socket.
    Udp(std::net::UdpSocket),
}

impl HeldPort {
    /// Binds `addr` (port 0 for a random free one), listening at once for TCP: connections made
    /// before the proxy starts wait in the backlog.
    pub fn bind(proto: Proto, addr: SocketAddr) -> Result<HeldPort> {
        let err = |e| Error::PortUnavailable { proto: proto.as_str(), addr, source: e };
        let held = match proto {
            Proto::Tcp => HeldPort::Tcp(std::net::TcpListener::bind(addr).map_err(err)?),
            Proto::Udp => HeldPort::Udp(std::net::UdpSocket::bind(addr).map_err(err)?),
        };
        Ok(held)
    }

    /// The port bound.
    pub fn port(&self) -> std::io::Result<u16> {
        match self {
            HeldPort::Tcp(l) => l.local_addr().map(|a| a.port()),
            HeldPort::Udp(s) => s.local_addr().map(|a| a.port()),
        }
    }
}

impl PortProxy {
    /// Binds every mapping, then starts relaying. Fails on the first port that cannot be bound,
    /// naming it, with nothing left bound. Must be called inside a tokio runtime.
    pub async fn start(mappings: &[PortMapping]) -> Result<PortProxy> {
        let mut held = vec![];
        for m in mappings {
            held.push((*m, HeldPort::bind(m.proto, m.host_addr())?));
        }
        PortProxy::serve(held)
    }

    /// Starts relaying on ports already bound (each mapping with its socket; a mapping's host port
    /// 0 is filled in from the socket). Must be called inside a tokio runtime.
    pub fn serve(held: Vec<(PortMapping, HeldPort)>) -> Result<PortProxy> {
        PortProxy::serve_counted(held, Connections::default())
    }

    fn serve_counted(held: Vec<(PortMapping, HeldPort)>, open: Connections) -> Result<PortProxy> {
        let mut sockets = vec![];
        for (m, sock) in held {
            let addr = m.host_addr();
            let err = |e| Error::PortUnavailable { proto: m.proto.as_str(), addr, source: e };
            let port = sock.port().map_err(err)?;
            let sock = match sock {
                HeldPort::Tcp(l) => {
                    l.set_nonblocking(true).map_err(err)?;
                    Bound::Tcp(TcpListener::from_std(l).map_err(err)?)
                }
                HeldPort::Udp(s) => {
                    s.set_nonblocking(true).map_err(err)?;
                    Bound::Udp(UdpSocket::from_std(s).map_err(err)?)
                }
            };
            sockets.push((PortMapping { host_port: port, ..m }, sock));
        }
        let mut proxy = PortProxy { bound: vec![], tasks: vec![], targets: vec![], open };
        for (m, sock) in sockets {
            let target: Target = Arc::new(std::sync::RwLock::new(m.target()));
            let task = match sock {
                Bound::Tcp(l) => tokio::spawn(serve_tcp(l, target.clone(), proxy.open.clone())),
                Bound::Udp(s) => tokio::spawn(serve_udp(Arc::new(s), target.clone(), Flows::new(UDP_MAX_FLOWS))),
            };
            proxy.bound.push(m);
            proxy.tasks.push(task);
            proxy.targets.push(target);
        }
        Ok(proxy)
    }

    /// Hands the ports over to a successor whose mappings are `next`: a port both publish keeps
    /// its socket and forwards new connections to the successor's address from now on (the open
    /// ones finish where they are); a port only this proxy publishes closes; one only `next`
    /// publishes is bound. On a port that cannot be bound, nothing changes and the error names it.
    pub fn handover(&mut self, next: &[PortMapping]) -> Result<()> {
        self.handover_held(next, |_| None)
    }

    /// As [`PortProxy::handover`], with the sockets of ports only `next` publishes taken from
    /// `held` where it has one (a port reserved for them), bound otherwise.
    pub fn handover_held(
        &mut self,
        next: &[PortMapping],
        mut held: impl FnMut(&PortMapping) -> Option<HeldPort>,
    ) -> Result<()> {
        let same = |a: &PortMapping, b: &PortMapping| {
            a.proto == b.proto && a.host_ip == b.host_ip && a.host_port == b.host_port
        };
        let mut fresh = Vec::new();
        for m in next.iter().filter(|m| !self.bound.iter().any(|b| same(b, m))) {
            let socket = match held(m) {
                Some(s) => s,
                None => HeldPort::bind(m.proto, m.host_addr())?,
            };
            fresh.push((*m, socket));
        }
        let mut added = PortProxy::serve_counted(fresh, self.open.clone())?;
        for i in (0..self.bound.len()).rev() {
            match next.iter().find(|m| same(m, &self.bound[i])) {
                Some(m) => {
                    *self.targets[i].write().unwrap_or_else(|e| e.into_inner()) = m.target();
                    self.bound[i] = PortMapping { host_port: self.bound[i].host_port, ..*m };
                }
                None => {
                    self.tasks.remove(i).abort();
                    self.bound.remove(i);
                    self.targets.remove(i);
                }
            }
        }
        self.bound.append(&mut added.bound);
        self.tasks.append(&mut added.tasks);
        self.targets.append(&mut added.targets);
        Ok(())
    }

    /// The TCP connections open through this proxy to `ip` (a container being drained).
    pub fn open_connections(&self, ip: IpAddr) -> usize {
        self.open.count(|a| a.ip() == ip)
    }

    /// The mappings as bound, random host ports filled in (what `berth port` reports).
    pub fn bound(&self) -> &[PortMapping] {
        &self.bound
    }

    /// Stops relaying and waits until every port is closed (dropping only requests it).
    pub async fn stop(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
            // An aborted task ends with a cancellation, which is what was asked.
            let _ = t.await;
        }
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve_tcp(listener: TcpListener, target: Target, open: Connections) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            tokio::time::sleep(ERROR_BACKOFF).await;
            continue;
        };
        let target = *target.read().unwrap_or_else(|e| e.into_inner());
        let counted = open.open(target);
        tokio::spawn(async move {
            let _counted = counted;
            let Ok(Ok(mut upstream)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await else {
                return;
            };
            // Latency only: a connection without it still works.
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            // A connection that ends with an error (a reset) just ends.
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, 64 * 1024, 64 * 1024).await;
        });
    }
}

/// One port's UDP flows by client address, at most `cap` of them; pure bookkeeping over any value
/// (the real one holds the flow's socket and its relay task).
#[derive(Debug)]
struct FlowTable<T> {
    cap: usize,
    /// Bumped on every use: the flow with the smallest stamp is the least recently active.
    clock: u64,
    next_id: u64,
    flows: HashMap<SocketAddr, FlowEntry<T>>,
}

#[derive(Debug)]
struct FlowEntry<T> {
    id: u64,
    used: u64,
    value: T,
}

impl<T> FlowTable<T> {
    fn new(cap: usize) -> Self {
        FlowTable { cap: cap.max(1), clock: 0, next_id: 0, flows: HashMap::new() }
    }

    /// The flow of `client`, marked as just used.
    fn get(&mut self, client: &SocketAddr) -> Option<&T> {
        self.clock += 1;
        let e = self.flows.get_mut(client)?;
        e.used = self.clock;
        Some(&e.value)
    }

    /// A fresh id for the next flow (what [`FlowTable::remove`] checks).
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds the flow `id` for `client`; returns the flow it displaces: `client`'s previous one, or
    /// the least recently active when the table is full.
    fn insert(&mut self, client: SocketAddr, id: u64, value: T) -> Option<T> {
        self.clock += 1;
        let mut evicted = self.flows.remove(&client).map(|e| e.value);
        if evicted.is_none() && self.flows.len() >= self.cap {
            let oldest = self.flows.iter().min_by_key(|(_, e)| e.used).map(|(c, _)| *c);
            evicted = oldest.and_then(|c| self.flows.remove(&c)).map(|e| e.value);
        }
        self.flows.insert(client, FlowEntry { id, used: self.clock, value });
        evicted
    }

    /// Removes `client`'s flow if it is still the one with `id` (not replaced since).
    fn remove(&mut self, client: &SocketAddr, id: u64) -> Option<T> {
        match self.flows.get(client) {
            Some(e) if e.id == id => self.flows.remove(client).map(|e| e.value),
            _ => None,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.flows.len()
    }

    fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.flows.drain().map(|(_, e)| e.value)
    }
}

/// A live flow: the socket connected to the container, and the task relaying its answers.
struct Flow {
    socket: Arc<UdpSocket>,
    relay: AbortHandle,
}

#[derive(Clone)]
struct Flows(Arc<Mutex<FlowTable<Flow>>>);

impl Flows {
    fn new(cap: usize) -> Self {
        Flows(Arc::new(Mutex::new(FlowTable::new(cap))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlowTable<Flow>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stops every relay task when the port's serving task ends (the proxy stopped).
struct StopRelays(Flows);

impl Drop for StopRelays {
    fn drop(&mut self) {
        for f in self.0.lock().drain() {
            f.relay.abort();
        }
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, target: Target, flows: Flows) {
    let _stop = StopRelays(flows.clone());
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(ERROR_BACKOFF).await;
            continue;
        };
        let existing = flows.lock().get(&client).map(|f| f.socket.clone());
        let flow = match existing {
            Some(f) => f,
            None => {
                let target = *target.read().unwrap_or_else(|e| e.into_inner());
                let Ok(f) = open_flow(target).await else {
                    tokio::time::sleep(ERROR_BACKOFF).await;
                    continue;
                };
                // Held across the spawn, so the relay cannot try to remove its flow before it is in.
                let mut table = flows.lock();
                let id = table.new_id();
                let relay = tokio::spawn(relay_back(f.clone(), socket.clone(), client, flows.clone(), id));
                if let Some(old) = table.insert(client, id, Flow { socket: f.clone(), relay: relay.abort_handle() }) {
                    old.relay.abort();
                }
                f
            }
        };
        // UDP: a datagram not sent is a datagram lost, as on the wire.
        let _ = flow.send(&buf[..n]).await;
    }
}

async fn open_flow(target: SocketAddr) -> std::io::Result<Arc<UdpSocket>> {
    let local: SocketAddr = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("constant");
    let s = UdpSocket::bind(local).await?;
    s.connect(target).await?;
    Ok(Arc::new(s))
}

async fn relay_back(flow: Arc<UdpSocket>, socket: Arc<UdpSocket>, client: SocketAddr, flows: Flows, id: u64) {
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, flow.recv(&mut buf)).await {
        // UDP: a datagram not sent is a datagram lost, as on the wire.
        let _ = socket.send_to(&buf[..n], client).await;
    }
    flows.lock().remove(&client, id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: Option<(u16, u16)>, container: (u16, u16)) -> PublishSpec {
        PublishSpec { proto: Proto::Tcp, host_ip: None, host_ports: host, container_ports: container }
    }

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_flow_table_is_capped_and_evicts_the_least_recently_active() {
        let mut t = FlowTable::new(2);
        let a = t.new_id();
        t.insert(client(1), a, "a");
        let b = t.new_id();
        t.insert(client(2), b, "b");
        assert_eq!(t.get(&client(1)), Some(&"a"));
        // Full: the third client displaces client 2, which was used least recently.
        let c = t.new_id();
        assert_eq!(t.insert(client(3), c, "c"), Some("b"));
        assert_eq!((t.len(), t.get(&client(2))), (2, None));
        // A relay that ends late does not remove a newer flow of the same client.
        let a2 = t.new_id();
        assert_eq!(t.insert(client(1), a2, "a2"), Some("a"));
        assert_eq!(t.remove(&client(1), a), None);
        assert_eq!(t.get(&client(1)), Some(&"a2"));
    }

    #[tokio::test]
    async fn udp_clients_beyond_the_cap_are_served_by_evicting_old_flows() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        let echo_task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                // A test echo server: a reply lost fails the test's own check.
                let _ = echo.send_to(&buf[..n], from).await;
            }
        });
        let listen = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = listen.local_addr().unwrap();
        let flows = Flows::new(2);
        let server = tokio::spawn(serve_udp(listen, Arc::new(std::sync::RwLock::new(target)), flows.clone()));
        let mut clients = vec![];
        for _ in 0..3 {
            clients.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        for round in 0..2 {
            for (i, c) in clients.iter().enumerate() {
                let msg = format!("client {i} round {round}");
                c.send_to(msg.as_bytes(), addr).await.unwrap();
                let mut buf = [0u8; 64];
                let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf)).await.unwrap().unwrap();
                assert_eq!(&buf[..n], msg.as_bytes());
                assert!(flows.lock().len() <= 2, "{} flows", flows.lock().len());
            }
        }
        server.abort();
        // Aborted: it ends with a cancellation, which is what was asked.
        let _ = server.await;
        assert_eq!(flows.lock().len(), 0, "stopping the port ends its flows");
        echo_task.abort();
    }

    #[tokio::test]
    async fn a_held_port_excludes_others_and_its_proxy_serves_what_waited_in_the_backlog() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = upstream.local_addr().unwrap();
        let held = HeldPort::bind(Proto::Tcp, "127.0.0.1:0".parse().unwrap()).unwrap();
        let port = held.port().unwrap();
        // Held: nobody else binds it, not even on all addresses.
        assert!(HeldPort::bind(Proto::Tcp, SocketAddr::from(([0, 0, 0, 0], port))).is_err());
        // A client connecting before the proxy runs waits in the backlog.
        let mut c = TcpStream::connect(client(port)).await.unwrap();
        let m = PortMapping {
            proto: Proto::Tcp,
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 0,
            container_ip: target.ip(),
            container_port: target.port(),
        };
        let proxy = PortProxy::serve(vec![(m, held)]).unwrap();
        assert_eq!(proxy.bound()[0].host_port, port, "the port is filled in from the socket");
        let echo = tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf, b"hello");
        echo.await.unwrap();
        proxy.stop().await;
        assert!(HeldPort::bind(Proto::Tcp, client(port)).is_ok(), "free again once the proxy stops");
    }

    /// An upstream on `ip` that answers every connection with `reply` once it has read a byte.
    async fn answering(ip: &str, reply: &'static [u8]) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 1];
                    while s.read_exact(&mut b).await.is_ok() {
                        // A test server: a reply lost fails the test's own check.
                        let _ = s.write_all(reply).await;
                    }
                });
            }
        });
        addr
    }

    async fn ask(c: &mut TcpStream) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        c.write_all(b"?").await.unwrap();
        let mut buf = [0u8; 3];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await.unwrap().unwrap();
        buf.to_vec()
    }

    #[tokio::test]
    async fn a_handover_keeps_the_port_open_and_sends_new_connections_to_the_successor() {
        let old = answering("127.0.0.2", b"old").await;
        let new = answering("127.0.0.3", b"new").await;
        let mapping = |t: SocketAddr, host_port| PortMapping {
            proto: Proto::Tcp,
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port,
            container_ip: t.ip(),
            container_port: t.port(),
        };
        let mut proxy = PortProxy::start(&[mapping(old, 0)]).await.unwrap();
        let port = proxy.bound()[0].host_port;
        let mut before = TcpStream::connect(client(port)).await.unwrap();
        assert_eq!(ask(&mut before).await, b"old");
        assert_eq!(proxy.open_connections(old.ip()), 1);
        // A second port only the successor publishes is bound by the handover.
        let extra = HeldPort::bind(Proto::Tcp, client(0)).unwrap().port().unwrap();
        proxy.handover(&[mapping(new, port), mapping(new, extra)]).unwrap();
        assert_eq!(proxy.bound().len(), 2);
        let mut after = TcpStream::connect(client(port)).await.unwrap();
        assert_eq!(ask(&mut after).await, b"new");
        let mut other = TcpStream::connect(client(extra)).await.unwrap();
        assert_eq!(ask(&mut other).await, b"new");
        // The connection made before goes on to where it went.
        assert_eq!(ask(&mut before).await, b"old");
        assert_eq!((proxy.open_connections(old.ip()), proxy.open_connections(new.ip())), (1, 2));
        drop(before);
        for _ in 0..100 {
            if proxy.open_connections(old.ip()) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(proxy.open_connections(old.ip()), 0, "drained once its client closed");
        // A port the successor does not publish closes.
        proxy.handover(&[mapping(new, extra)]).unwrap();
        assert_eq!(proxy.bound().len(), 1);
        proxy.stop().await;
        assert!(HeldPort::bind(Proto::Tcp, client(port)).is_ok());
    }

    #[test]
    fn ranges_expand_pairwise_and_missing_host_ports_are_random() {
        let ip: IpAddr = "10.1.0.2".parse().unwrap();
        let got: Vec<(u16, u16)> = spec(Some((8000, 8002)), (80, 82))
            .expand(ip)
            .unwrap()
            .iter()
            .map(|m| (m.host_port, m.container_port))
            .collect();
        assert_eq!(got, [(8000, 80), (8001, 81), (8002, 82)]);
        let random = spec(None, (80, 80)).expand(ip).unwrap();
        assert_eq!((random[0].host_port, random[0].host_ip.to_string()), (0, "0.0.0.0".to_string()));
        let err = spec(Some((8000, 8005)), (80, 81)).expand(ip).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid port range `8000-8005:80-81/tcp`: host and container ranges differ in length"
        );
    }
}
