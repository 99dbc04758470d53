//! The DNS server on loopback, asked by hickory-resolver: names, scoping, shuffling, PTR, TCP,
//! forwarding to an upstream, table swaps. Needs no root.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use berth_network::dns::{DnsConfig, DnsContainer, DnsEndpoint, DnsServer, DnsTable};
use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn container(name: &str, service: &str, network: &str, addr: &str) -> DnsContainer {
    DnsContainer {
        name: name.into(),
        service: Some(service.into()),
        endpoints: vec![DnsEndpoint {
            network: network.into(),
            addrs: vec![ip(addr)],
            aliases: vec![],
            internal: false,
        }],
        ..Default::default()
    }
}

/// The tests ask from 127.0.0.1, so that is "the asking container" on network `n`.
fn table() -> DnsTable {
    let mut me = container("shop-client-1", "client", "n", "127.0.0.1");
    me.links = vec![("db".into(), "database".into())];
    let mut db1 = container("shop-db-1", "db", "n", "10.0.0.11");
    db1.endpoints[0].aliases = vec!["postgres".into()];
    let db2 = container("shop-db-2", "db", "n", "10.0.0.12");
    let db3 = container("shop-db-3", "db", "n", "10.0.0.13");
    let hidden = container("other-web-1", "web", "elsewhere", "10.9.0.2");
    DnsTable::build(&[me, db1, db2, db3, hidden])
}

async fn start(table: DnsTable, upstreams: Vec<SocketAddr>) -> DnsServer {
    let mut cfg = DnsConfig::new(vec![ip("127.0.0.1")], upstreams);
    cfg.port = 0;
    cfg.upstream_timeout = Duration::from_millis(500);
    DnsServer::start(cfg, table).await.expect("start DNS server")
}

async fn a_records(r: &hickory_resolver::TokioResolver, name: &str) -> Vec<IpAddr> {
    match r.lookup_ip(name).await {
        Ok(l) => l.iter().collect(),
        Err(_) => vec![],
    }
}

#[tokio::test]
async fn service_container_alias_and_link_names_resolve_over_udp_and_tcp() {
    let server = start(table(), vec![]).await;
    let addr = server.local_addrs()[0];
    for tcp in [false, true] {
        let r = common::resolver(addr, tcp);
        let mut db = a_records(&r, "db.").await;
        db.sort();
        assert_eq!(db, [ip("10.0.0.11"), ip("10.0.0.12"), ip("10.0.0.13")], "tcp={tcp}");
        assert_eq!(a_records(&r, "shop-db-2.").await, [ip("10.0.0.12")]);
        assert_eq!(a_records(&r, "POSTGRES.").await, [ip("10.0.0.11")]);
        assert_eq!(a_records(&r, "database.").await.len(), 3);
        // Another project's names are invisible.
        assert!(a_records(&r, "web.").await.is_empty());
        assert!(a_records(&r, "other-web-1.").await.is_empty());
    }
}

#[tokio::test]
async fn replicas_come_back_in_shuffled_order() {
    let server = start(table(), vec![]).await;
    let r = common::resolver(server.local_addrs()[0], false);
    let mut orders = HashSet::new();
    for _ in 0..40 {
        orders.insert(a_records(&r, "db.").await);
    }
    assert!(orders.len() > 1, "always the same order: {orders:?}");
}

#[tokio::test]
async fn ptr_answers_container_names() {
    let server = start(table(), vec![]).await;
    let r = common::resolver(server.local_addrs()[0], false);
    let got = r.lookup("12.0.0.10.in-addr.arpa.", RecordType::PTR).await.expect("PTR answer");
    let names: Vec<String> = got
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::PTR(p) => Some(p.0.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["shop-db-2."]);
}

#[tokio::test]
async fn answers_have_a_short_ttl() {
    let server = start(table(), vec![]).await;
    let r = common::resolver(server.local_addrs()[0], false);
    let got = r.lookup("shop-db-1.", RecordType::A).await.expect("answer");
    assert!(got.answers().iter().all(|rec| rec.ttl <= 5), "{:?}", got.answers());
}

#[tokio::test]
async fn other_names_are_forwarded_to_the_upstream() {
    // The upstream is another server whose table knows `example.test` for askers from 127.0.0.1
    // (the forwarding server asks from loopback).
    let upstream_table = DnsTable::build(&[
        container("client", "client", "u", "127.0.0.1"),
        container("example.test", "example.test", "u", "192.0.2.80"),
    ]);
    let upstream = start(upstream_table, vec![]).await;
    let server = start(table(), vec![upstream.local_addrs()[0]]).await;
    for tcp in [false, true] {
        let r = common::resolver(server.local_addrs()[0], tcp);
        assert_eq!(a_records(&r, "example.test.").await, [ip("192.0.2.80")], "tcp={tcp}");
        // Our own names still win.
        assert_eq!(a_records(&r, "shop-db-1.").await, [ip("10.0.0.11")]);
    }
}

/// One raw UDP query for an A record; the reply's code and answer count.
async fn raw_query(server: SocketAddr, name: &str) -> (ResponseCode, usize) {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&m.to_vec().unwrap(), server).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(5), s.recv(&mut buf)).await.expect("an answer").unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    (reply.metadata.response_code, reply.answers.len())
}

#[tokio::test]
async fn containers_only_on_internal_networks_get_no_forwarding() {
    // The upstream would answer `example.test` (see the test above).
    let upstream = start(
        DnsTable::build(&[
            container("client", "client", "u", "127.0.0.1"),
            container("example.test", "example.test", "u", "192.0.2.80"),
        ]),
        vec![],
    )
    .await;
    let mut me = container("shop-worker-1", "worker", "jobs", "127.0.0.1");
    me.endpoints[0].internal = true;
    let mut db = container("shop-db-1", "db", "jobs", "10.0.0.11");
    db.endpoints[0].internal = true;
    let server = start(DnsTable::build(&[me, db]), vec![upstream.local_addrs()[0]]).await;
    let addr = server.local_addrs()[0];
    assert_eq!(raw_query(addr, "db.").await, (ResponseCode::NoError, 1), "names on the network still resolve");
    assert_eq!(raw_query(addr, "example.test.").await, (ResponseCode::Refused, 0));
    // The same container on a network that is not internal too gets the upstream's answer.
    let mut me = container("shop-worker-1", "worker", "jobs", "127.0.0.1");
    me.endpoints[0].internal = true;
    me.endpoints.push(DnsEndpoint { network: "front".into(), addrs: vec![ip("10.1.0.9")], ..Default::default() });
    server.set_table(DnsTable::build(&[me]));
    assert_eq!(raw_query(addr, "example.test.").await, (ResponseCode::NoError, 1));
}

#[tokio::test]
async fn an_unreachable_upstream_fails_quickly() {
    // Nothing listens on this port: the forward times out and the answer is SERVFAIL.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let server = start(table(), vec![dead_addr]).await;
    let r = common::resolver(server.local_addrs()[0], false);
    let started = std::time::Instant::now();
    assert!(r.lookup_ip("example.test.").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_new_table_takes_effect_at_once() {
    let server = start(table(), vec![]).await;
    let r = common::resolver(server.local_addrs()[0], false);
    assert_eq!(a_records(&r, "db.").await.len(), 3);
    // db-2 stops (or turns unhealthy): the supervisor rebuilds the table without it.
    let mut t = vec![container("shop-client-1", "client", "n", "127.0.0.1")];
    t.push(container("shop-db-1", "db", "n", "10.0.0.11"));
    server.set_table(DnsTable::build(&t));
    assert_eq!(a_records(&r, "db.").await, [ip("10.0.0.11")]);
    assert!(a_records(&r, "shop-db-2.").await.is_empty());
    server.stop().await;
}
