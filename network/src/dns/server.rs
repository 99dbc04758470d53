//! The DNS server a project supervisor runs on each bridge's gateway address (UDP and TCP), built on
//! `hickory-server` with a handler of our own that answers from the current [`DnsTable`].
//!
//! Protocol notes: the handler is responsible for EDNS — when the query carries an OPT record the
//! answer must carry one too (version 0, payload at least 512) or stub resolvers treat the reply as
//! broken. Query names arrive lower-cased (`LowerName`); answers echo the name as asked. Names we
//! do not own are forwarded as raw bytes to the upstream servers in turn, over the transport the
//! client used, each with a timeout; the first answer goes back with the client's message id.
//! Containers only on internal networks get REFUSED for them instead: forwarding their queries
//! would give them the way out (DNS tunnelling) that `internal` exists to deny.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, PTR};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::table::{parse_reverse_name, DnsTable, Lookup};
use crate::error::{Error, Result};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Addresses to listen on (each bridge's gateway).
    pub listen: Vec<IpAddr>,
    /// The port, 53 in production; 0 picks a free one (tests).
    pub port: u16,
    /// Where names that are not ours go (the host's resolvers, see [`crate::files::host_nameservers`]).
    pub upstreams: Vec<SocketAddr>,
    /// How long one upstream gets to answer.
    pub upstream_timeout: Duration,
    /// TTL of our answers: short, since containers come and go.
    pub ttl: u32,
}

impl DnsConfig {
    /// Port 53 on `listen`, 2 s upstream timeout, TTL 5 s.
    pub fn new(listen: Vec<IpAddr>, upstreams: Vec<SocketAddr>) -> Self {
        DnsConfig { listen, port: 53, upstreams, upstream_timeout: Duration::from_secs(2), ttl: 5 }
    }
}

type SharedTable = Arc<RwLock<Arc<DnsTable>>>;

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    table: SharedTable,
    addrs: Vec<SocketAddr>,
    server: Server<Handler>,
}

impl DnsServer {
    /// Binds UDP and TCP on every listen address (all or nothing) and starts serving `table`.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: DnsConfig, table: DnsTable) -> Result<DnsServer> {
        let table: SharedTable = Arc::new(RwLock::new(Arc::new(table)));
        let handler = Handler {
            table: table.clone(),
            upstreams: config.upstreams.clone(),
            timeout: config.upstream_timeout,
            ttl: config.ttl,
        };
        let mut sockets = vec![];
        for ip in &config.listen {
            sockets.push(bind_pair(SocketAddr::new(*ip, config.port)).await?);
        }
        let mut server = Server::new(handler);
        let mut addrs = vec![];
        for (udp, tcp) in sockets {
            addrs.push(
                udp.local_addr()
                    .map_err(|e| Error::DnsBind { addr: SocketAddr::new(config.listen[0], 0), source: e })?,
            );
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 64);
        }
        Ok(DnsServer { table, addrs, server })
    }

    /// The addresses it listens on (UDP and TCP share each).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Replaces the table; queries already being answered finish with the old one.
    pub fn set_table(&self, table: DnsTable) {
        *self.table.write().expect("table lock") = Arc::new(table);
    }

    /// The table in use.
    pub fn table(&self) -> Arc<DnsTable> {
        self.table.read().expect("table lock").clone()
    }

    /// Stops serving and waits for the listeners to close.
    pub async fn stop(mut self) {
        // Stopping: the listeners close when the server is dropped either way.
        let _ = self.server.shutdown_gracefully().await;
    }
}

async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let err = |addr, e| Error::DnsBind { addr, source: e };
    // With port 0, find a port free for both protocols.
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await.map_err(|e| err(addr, e))?;
        let got = udp.local_addr().map_err(|e| err(addr, e))?;
        match TcpListener::bind(got).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 => return Err(err(got, e)),
            Err(_) => continue,
        }
    }
    Err(err(addr, std::io::Error::other("no port free for both UDP and TCP")))
}

struct Handler {
    table: SharedTable,
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    ttl: u32,
}

/// What to send back, owned so it can outlive the table lock.
struct Reply {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    upstream_meta: Option<Metadata>,
}

impl Reply {
    fn code(code: ResponseCode) -> Reply {
        Reply {
            code,
            authoritative: false,
            answers: vec![],
            authorities: vec![],
            additionals: vec![],
            upstream_meta: None,
        }
    }
    fn ours(answers: Vec<Record>) -> Reply {
        Reply { authoritative: true, answers, ..Reply::code(ResponseCode::NoError) }
    }
}

impl Handler {
    async fn answer(&self, request: &Request) -> Reply {
        if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
            return Reply::code(ResponseCode::NotImp);
        }
        let Some(query) = request.queries.queries().first() else {
            return Reply::code(ResponseCode::FormErr);
        };
        let asker = request.src().ip().to_canonical();
        let table = self.table.read().expect("table lock").clone();
        let name: Name = query.original().name().clone();
        let text = query.name().to_string();
        let qtype = query.query_type();
        let found = match qtype {
            RecordType::A | RecordType::AAAA => table.lookup(asker, &text, qtype == RecordType::AAAA),
            RecordType::PTR => match parse_reverse_name(&text) {
                Some(ip) => table.reverse(asker, ip),
                None => table.not_ours(asker),
            },
            // Other types of our names: the name exists, with no data of that type.
            _ => match table.lookup_any(asker, &text) {
                Lookup::Addrs(_) => Lookup::Addrs(vec![]),
                other => other,
            },
        };
        match found {
            Lookup::Addrs(mut addrs) => {
                fastrand::shuffle(&mut addrs);
                let records = addrs
                    .into_iter()
                    .map(|a| {
                        let rdata = match a {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        Record::from_rdata(name.clone(), self.ttl, rdata)
                    })
                    .collect();
                Reply::ours(records)
            }
            Lookup::Ptr(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(target) => Reply::ours(vec![Record::from_rdata(name, self.ttl, RData::PTR(PTR(target)))]),
                Err(_) => Reply::code(ResponseCode::ServFail),
            },
            Lookup::Refused => Reply::code(ResponseCode::Refused),
            Lookup::Forward => {
                let own = table.upstreams_for(asker);
                let upstreams = if own.is_empty() { &self.upstreams } else { own };
                self.forward(request, upstreams).await
            }
        }
    }

    async fn forward(&self, request: &Request, upstreams: &[SocketAddr]) -> Reply {
        let tcp = request.protocol() == Protocol::Tcp;
        for upstream in upstreams {
            let got = tokio::time::timeout(self.timeout, exchange(*upstream, request.as_slice(), tcp)).await;
            let Ok(Ok(bytes)) = got else { continue };
            let Ok(msg) = Message::from_vec(&bytes) else { continue };
            if msg.metadata.id != request.metadata.id {
                continue;
            }
            return Reply {
                code: msg.metadata.response_code,
                authoritative: false,
                answers: msg.answers,
                authorities: msg.authorities,
                additionals: msg.additionals,
                upstream_meta: Some(msg.metadata),
            };
        }
        Reply::code(ResponseCode::ServFail)
    }
}

/// One raw query/answer exchange with an upstream server.
async fn exchange(upstream: SocketAddr, query: &[u8], tcp: bool) -> std::io::Result<Vec<u8>> {
    if tcp {
        let mut s = TcpStream::connect(upstream).await?;
        let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(query).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    } else {
        let local: SocketAddr = if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("constant");
        let s = UdpSocket::bind(local).await?;
        s.connect(upstream).await?;
        s.send(query).await?;
        let mut buf = vec![0u8; 4096];
        let n = s.recv(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let reply = self.answer(request).await;
        let mut meta = Metadata::response_from_request(&request.metadata);
        if let Some(up) = reply.upstream_meta {
            meta.truncation = up.truncation;
            meta.authentic_data = up.authentic_data;
        }
        meta.response_code = reply.code;
        meta.authoritative = reply.authoritative;
        meta.recursion_available = true;
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let msg = builder.build(
            meta,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter().filter(|r| r.record_type() != RecordType::OPT),
        );
        match response.send_response(msg).await {
            Ok(info) => info,
            Err(_) => {
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header { metadata: failed, counts: HeaderCounts::default() })
            }
        }
    }
}
