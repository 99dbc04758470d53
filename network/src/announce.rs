//! Gratuitous ARP: a container announces its IPv4 addresses with its own MAC address. An address
//! freed by a container that just went (a replaced or recreated one) is leased again at once, and
//! the host and the other containers on the bridge would otherwise send to the old MAC address
//! until their neighbour entry expired (tens of seconds of timeouts). The kernel's own
//! announcement (`arp_notify`) goes out when the interface comes up, before the bridge forwards
//! for its new port, and is lost; this one is sent once the container is attached.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::error::{Error, Result};
use crate::netns;

/// One gratuitous ARP request: `addr` is at `mac` (sender and target address both `addr`).
pub fn packet(mac: [u8; 6], addr: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&addr.octets());
    // Target hardware address: zero.
    p[24..28].copy_from_slice(&addr.octets());
    p
}

/// Announces every IPv4 address of every interface but loopback in the namespace at `netns`.
pub fn announce(netns: &Path) -> Result<()> {
    netns::run_in(Some(netns), || -> Result<()> {
        let addrs = nix::ifaddrs::getifaddrs().map_err(|e| Error::io("list addresses in", netns, e.into()))?;
        let mut macs: Vec<(String, [u8; 6])> = Vec::new();
        let mut ips: Vec<(String, Ipv4Addr)> = Vec::new();
        for a in addrs {
            let Some(addr) = a.address else { continue };
            if let Some(link) = addr.as_link_addr() {
                if let Some(mac) = link.addr() {
                    macs.push((a.interface_name.clone(), mac));
                }
            } else if let Some(v4) = addr.as_sockaddr_in() {
                ips.push((a.interface_name.clone(), v4.ip()));
            }
        }
        for (ifname, ip) in ips.iter().filter(|(n, _)| n != "lo") {
            let Some((_, mac)) = macs.iter().find(|(n, _)| n == ifname) else { continue };
            send(ifname, *mac, *ip).map_err(|e| Error::io("announce the address of", Path::new(ifname), e))?;
        }
        Ok(())
    })?
}

fn send(ifname: &str, mac: [u8; 6], ip: Ipv4Addr) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let name = std::ffi::CString::new(ifname).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: plain libc calls on a socket this function owns; the address and buffer outlive
    // the calls that read them.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            (libc::ETH_P_ARP as u16).to_be() as i32,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut to: libc::sockaddr_ll = std::mem::zeroed();
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
        to.sll_ifindex = index as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        let p = packet(mac, ip);
        let sent = libc::sendto(
            fd.as_raw_fd(),
            p.as_ptr().cast(),
            p.len(),
            0,
            std::ptr::addr_of!(to).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gratuitous_request_names_the_address_as_sender_and_target() {
        let p = packet([2, 0, 0, 0, 0, 9], Ipv4Addr::new(172, 17, 0, 3));
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(&p[14..18], &[172, 17, 0, 3]);
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[24..28], &[172, 17, 0, 3]);
    }
}
