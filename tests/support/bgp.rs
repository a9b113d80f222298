//! A minimal BGP speaker for tests, built from raw bytes independently of
//! chatpulse's own encoder: it peers with chatpulse, announces and withdraws,
//! and can send every kind of malformed message.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Frames a message.
pub fn raw(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An OPEN with 4-byte AS, MP IPv4/IPv6 unicast, route refresh and an
/// unknown capability (code 73, FQDN, as gobgpd sends).
pub fn open(version: u8, asn: u32, hold: u16, router_id: [u8; 4]) -> Vec<u8> {
    let mut caps = vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, 2, 0, 73, 3, 1, b'x', 0, 65, 4];
    caps.extend_from_slice(&asn.to_be_bytes());
    let two = u16::try_from(asn).unwrap_or(23456);
    let mut body = vec![version];
    body.extend_from_slice(&two.to_be_bytes());
    body.extend_from_slice(&hold.to_be_bytes());
    body.extend_from_slice(&router_id);
    body.push(caps.len() as u8 + 2);
    body.extend_from_slice(&[2, caps.len() as u8]);
    body.extend_from_slice(&caps);
    raw(1, &body)
}

/// A KEEPALIVE.
pub fn keepalive() -> Vec<u8> {
    raw(4, &[])
}

fn nlri(prefix: &str) -> Vec<u8> {
    let (addr, len) = prefix.split_once('/').unwrap();
    let len: u8 = len.parse().unwrap();
    let octets: Vec<u8> = match addr.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut out = vec![len];
    out.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
    out
}

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

/// An AS_PATH of one AS_SEQUENCE (4-byte ASes).
fn as_path(path: &[u32]) -> Vec<u8> {
    let mut v = vec![2, path.len() as u8];
    for asn in path {
        v.extend_from_slice(&asn.to_be_bytes());
    }
    v
}

/// An UPDATE body from withdrawn prefixes, attributes and IPv4 NLRI.
pub fn update_body(withdrawn: &[&str], attrs: &[u8], announced: &[&str]) -> Vec<u8> {
    let w: Vec<u8> = withdrawn.iter().flat_map(|p| nlri(p)).collect();
    let mut b = (w.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&w);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    for p in announced {
        b.extend_from_slice(&nlri(p));
    }
    b
}

/// ORIGIN IGP, AS_PATH `path`, NEXT_HOP 192.0.2.1.
pub fn standard_attrs(path: &[u32]) -> Vec<u8> {
    [attr(0x40, 1, &[0]), attr(0x40, 2, &as_path(path)), attr(0x40, 3, &[192, 0, 2, 1])].concat()
}

/// Announces IPv4 `prefixes` with `path`.
pub fn announce(prefixes: &[&str], path: &[u32]) -> Vec<u8> {
    raw(2, &update_body(&[], &standard_attrs(path), prefixes))
}

/// Announces IPv6 `prefixes` with `path` (MP_REACH_NLRI, next hop 2001:db8::1).
pub fn announce_v6(prefixes: &[&str], path: &[u32]) -> Vec<u8> {
    let mut reach = vec![0, 2, 1, 16];
    reach.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    reach.push(0);
    for p in prefixes {
        reach.extend_from_slice(&nlri(p));
    }
    let mut mp = vec![0x90, 14];
    mp.extend_from_slice(&(reach.len() as u16).to_be_bytes());
    mp.extend_from_slice(&reach);
    let attrs = [attr(0x40, 1, &[0]), attr(0x40, 2, &as_path(path)), mp].concat();
    raw(2, &update_body(&[], &attrs, &[]))
}

/// Withdraws IPv4 `prefixes`.
pub fn withdraw(prefixes: &[&str]) -> Vec<u8> {
    raw(2, &update_body(prefixes, &[], &[]))
}

/// An announcement without AS_PATH (RFC 7606: treat-as-withdraw).
pub fn announce_without_as_path(prefixes: &[&str]) -> Vec<u8> {
    let attrs = [attr(0x40, 1, &[0]), attr(0x40, 3, &[192, 0, 2, 1])].concat();
    raw(2, &update_body(&[], &attrs, prefixes))
}

/// An UPDATE whose last attribute claims more bytes than the list holds.
pub fn overrunning_attributes(prefix: &str) -> Vec<u8> {
    let mut attrs = standard_attrs(&[65001, 32934]);
    attrs.extend_from_slice(&[0x80, 4, 200, 0, 0]);
    raw(2, &update_body(&[], &attrs, &[prefix]))
}

/// The longest one connect or write of the test speaker may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One BGP connection from the test's side.
pub struct Speaker {
    stream: TcpStream,
}

impl Speaker {
    /// Connects to `to` from address `from` (any 127.x works on Linux).
    pub async fn connect(to: SocketAddr, from: IpAddr) -> Speaker {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let connect = tokio::time::timeout(IO_TIMEOUT, socket.connect(to));
        Speaker { stream: connect.await.expect("the speaker connects within the timeout").unwrap() }
    }

    /// Wraps an accepted connection.
    pub fn from_stream(stream: TcpStream) -> Speaker {
        Speaker { stream }
    }

    /// Writes bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        let write = tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes));
        write.await.expect("the write completes within the timeout").unwrap();
    }

    /// The next message (type, body), or None when the connection closed or
    /// nothing came within 10 s.
    pub async fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut header = [0u8; 19];
            self.stream.read_exact(&mut header).await.ok()?;
            assert_eq!(&header[..16], &[0xff; 16], "chatpulse sent a bad marker");
            let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
            let mut body = vec![0u8; len - 19];
            self.stream.read_exact(&mut body).await.ok()?;
            Some((header[18], body))
        })
        .await
        .ok()
        .flatten()
    }

    /// Reads until a NOTIFICATION; returns (code, subcode). Panics if chatpulse
    /// ever sends an UPDATE.
    pub async fn notification(&mut self) -> Option<(u8, u8)> {
        loop {
            let (kind, body) = self.read().await?;
            assert_ne!(kind, 2, "chatpulse must never send an UPDATE");
            if kind == 3 {
                return Some((body[0], body[1]));
            }
        }
    }

    /// True when the peer closed the connection (EOF within 10 s).
    pub async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// OPEN exchange and KEEPALIVEs: returns chatpulse's OPEN body.
    pub async fn establish(&mut self, asn: u32, hold: u16) -> Vec<u8> {
        self.send(&open(4, asn, hold, [192, 0, 2, 99])).await;
        let (kind, their_open) = self.read().await.expect("chatpulse sends its OPEN");
        assert_eq!(kind, 1);
        let (kind, _) = self.read().await.expect("chatpulse sends a KEEPALIVE");
        assert_eq!(kind, 4);
        self.send(&keepalive()).await;
        their_open
    }
}
