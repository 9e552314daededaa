//! Structure-aware frame generation: Ethernet with 802.1Q/802.1ad tag stacks, ARP, IPv4 (options, fragments, bogus
//! IHL and total length), IPv6 (hop-by-hop, routing, fragment, destination options, AH, ESP chains, bogus lengths),
//! UDP, TCP, ICMP, ICMPv6 (neighbour discovery), VXLAN (flag bits, VNI, ports, an inner frame of any of these), then
//! mutations (truncation, bit flips, overwritten, inserted and removed bytes, trailers) and wholly random frames. The
//! addresses come mostly from the scenario's palette, so that frames hit its tables, and from outsiders.
use super::rng::Rng;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
/// No frame grows beyond this (BPF_PROG_TEST_RUN takes a page minus head- and tailroom).
pub const MAX_FRAME: usize = 1600;

/// What generated frames draw their addresses from: the scenario's own (endpoints, parents, VTEPs, VNIs, ports) and
/// a few outsiders.
#[derive(Clone, Debug, Default)]
pub struct Palette {
    /// Unicast MACs that mean something: endpoints, parents, the outside, MACs behind remote VTEPs.
    pub macs: Vec<[u8; 6]>,
    pub v4: Vec<[u8; 4]>,
    pub v6: Vec<[u8; 16]>,
    pub vnis: Vec<u32>,
    pub vxlan_ports: Vec<u16>,
    /// Outer destinations of VXLAN frames: this host's VTEP addresses and groups.
    pub vtep_locals: Vec<[u8; 4]>,
    /// Outer sources: the remote VTEPs.
    pub vtep_remotes: Vec<[u8; 4]>,
    /// What the scenario's VXLAN networks take, so that most VXLAN frames are for one of them and the mutations
    /// around them tell apart what is and is not.
    pub vxlan_networks: Vec<VxlanTarget>,
    /// Percent of structured frames (of those without VXLAN around them) that are VXLAN.
    pub vxlan_share: u32,
    /// The VLANs of the scenario's networks (and one no network is on): most tags carry one of them.
    pub vids: Vec<u16>,
}

/// A VXLAN network of the scenario as frames address it: its VNI, UDP port, an outer destination it takes (its
/// local VTEP or group), and its endpoints' MACs (inner destinations that are delivered).
#[derive(Clone, Debug)]
pub struct VxlanTarget {
    pub vni: u32,
    pub port: u16,
    pub dst: [u8; 4],
    pub macs: Vec<[u8; 6]>,
}

/// The endpoint a frame comes from, when the program sees an endpoint's frames: its own MAC and addresses come first,
/// or its frames would mostly be spoofed.
#[derive(Clone, Debug, Default)]
pub struct Sender {
    pub mac: Option<[u8; 6]>,
    pub v4: Vec<[u8; 4]>,
    pub v6: Vec<[u8; 16]>,
}

pub struct Generator<'a> {
    pub rng: &'a mut Rng,
    pub palette: &'a Palette,
    pub sender: &'a Sender,
}

impl Generator<'_> {
    /// A frame: mostly structured (and then maybe mutated), sometimes random bytes.
    pub fn frame(&mut self) -> Vec<u8> {
        if self.rng.chance(4) {
            return self.random_frame();
        }
        let mut frame = self.ethernet(0);
        self.mutate(&mut frame);
        frame
    }

    /// A structured frame, unmutated (the truncation sweep cuts these at every offset).
    pub fn structured(&mut self) -> Vec<u8> {
        self.ethernet(0)
    }

    fn random_frame(&mut self) -> Vec<u8> {
        let len = if self.rng.chance(70) { self.rng.below(96) } else { self.rng.below(MAX_FRAME) };
        self.rng.bytes(len)
    }

    pub fn mutate(&mut self, frame: &mut Vec<u8>) {
        let len = frame.len();
        if len == 0 {
            return;
        }
        match self.rng.below(100) {
            0..=44 => {}
            45..=59 => frame.truncate(self.rng.below(len + 1)),
            60..=71 => {
                for _ in 0..self.rng.between(1, 4) {
                    let bit = self.rng.below(len * 8);
                    frame[bit / 8] ^= 1 << (bit % 8);
                }
            }
            72..=79 => {
                for _ in 0..self.rng.between(1, 4) {
                    let at = self.rng.below(len);
                    frame[at] = self.rng.pick_or(&[0x00, 0xff, 0x80, 0x01], |r| r.byte());
                }
            }
            80..=86 => {
                let extra = self.rng.between(1, 64);
                frame.extend(self.rng.bytes(extra));
            }
            87..=92 => {
                let start = self.rng.below(len);
                let end = (start + self.rng.between(1, 16)).min(len);
                frame.drain(start..end);
            }
            _ => {
                let start = self.rng.below(len);
                let end = (start + self.rng.between(1, 16)).min(len);
                let copy = frame[start..end].to_vec();
                let at = self.rng.below(len + 1);
                frame.splice(at..at, copy);
            }
        }
        frame.truncate(MAX_FRAME);
    }

    // --- addresses --------------------------------------------------------------------------------------------

    pub fn dst_mac(&mut self) -> [u8; 6] {
        match self.rng.below(100) {
            0..=44 if !self.palette.macs.is_empty() => *self.rng.pick(&self.palette.macs),
            45..=56 => [0xff; 6],
            57..=63 => [0x01, 0x00, 0x5e, self.rng.byte() & 0x7f, self.rng.byte(), self.rng.byte()],
            64..=67 => [0x33, 0x33, 0, 0, 0, *self.rng.pick(&[1, 2, 0x16, 0xfb])],
            68..=73 => {
                let target = self.v6_from_palette();
                [0x33, 0x33, 0xff, target[13], target[14], target[15]]
            }
            74..=79 => {
                let mut mac = [0u8; 6];
                mac.iter_mut().for_each(|b| *b = self.rng.byte());
                mac
            }
            80..=81 => [0; 6],
            _ if !self.palette.macs.is_empty() => *self.rng.pick(&self.palette.macs),
            _ => [0x02, 0, 0, 0, 0, self.rng.byte()],
        }
    }

    pub fn src_mac(&mut self) -> [u8; 6] {
        if let Some(mac) = self.sender.mac {
            if self.rng.chance(75) {
                return mac;
            }
        }
        match self.rng.below(100) {
            0..=69 if !self.palette.macs.is_empty() => *self.rng.pick(&self.palette.macs),
            70..=84 => [0x02, 0x5e, self.rng.byte(), self.rng.byte(), self.rng.byte(), self.rng.byte()],
            85..=89 => [0x01, 0x00, 0x5e, 0, 0, self.rng.byte()],
            90..=92 => [0; 6],
            93..=94 => [0xff; 6],
            _ => {
                let mut mac = [0u8; 6];
                mac.iter_mut().for_each(|b| *b = self.rng.byte());
                mac
            }
        }
    }

    fn v4_from_palette(&mut self) -> [u8; 4] {
        if self.palette.v4.is_empty() {
            [10, 0, 0, self.rng.byte()]
        } else {
            *self.rng.pick(&self.palette.v4)
        }
    }

    fn v6_from_palette(&mut self) -> [u8; 16] {
        if self.palette.v6.is_empty() {
            let mut addr = [0u8; 16];
            addr[0] = 0xfd;
            addr[15] = self.rng.byte();
            addr
        } else {
            *self.rng.pick(&self.palette.v6)
        }
    }

    pub fn v4(&mut self, source: bool) -> [u8; 4] {
        if source && !self.sender.v4.is_empty() && self.rng.chance(75) {
            return *self.rng.pick(&self.sender.v4);
        }
        match self.rng.below(100) {
            0..=59 => self.v4_from_palette(),
            60..=67 => {
                let mut addr = self.v4_from_palette();
                addr[3] = self.rng.byte();
                addr
            }
            68..=71 => [255, 255, 255, 255],
            72..=75 => [0, 0, 0, 0],
            76..=79 => [224 + self.rng.byte() % 16, 0, 0, self.rng.byte()],
            80..=81 => [127, 0, 0, 1],
            _ => [self.rng.byte(), self.rng.byte(), self.rng.byte(), self.rng.byte()],
        }
    }

    pub fn v6(&mut self, source: bool) -> [u8; 16] {
        if source && !self.sender.v6.is_empty() && self.rng.chance(75) {
            return *self.rng.pick(&self.sender.v6);
        }
        match self.rng.below(100) {
            0..=59 => self.v6_from_palette(),
            60..=65 => [0; 16],
            66..=71 => {
                let mut addr = [0u8; 16];
                addr[0] = 0xff;
                addr[1] = 0x02;
                addr[15] = *self.rng.pick(&[1, 2, 0x16]);
                addr
            }
            72..=79 => {
                let target = self.v6_from_palette();
                let mut addr = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
                addr[13..].copy_from_slice(&target[13..]);
                addr
            }
            80..=85 => {
                let mut addr = [0u8; 16];
                addr[0] = 0xfe;
                addr[1] = 0x80;
                addr[8..].iter_mut().for_each(|b| *b = self.rng.byte());
                addr
            }
            86..=89 => {
                // IPv4-mapped, which must not appear on the wire.
                let v4 = self.v4_from_palette();
                let mut addr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
                addr[12..].copy_from_slice(&v4);
                addr
            }
            _ => {
                let mut addr = [0u8; 16];
                addr.iter_mut().for_each(|b| *b = self.rng.byte());
                addr
            }
        }
    }

    // --- layer 2 -----------------------------------------------------------------------------------------------

    /// An Ethernet frame; `depth` counts the VXLAN encapsulations around it.
    pub fn ethernet(&mut self, depth: usize) -> Vec<u8> {
        let mut frame = Vec::with_capacity(128);
        frame.extend_from_slice(&self.dst_mac());
        frame.extend_from_slice(&self.src_mac());
        frame.extend(self.vlan_tags());
        let vxlan_weight = if depth < 2 && !self.palette.vnis.is_empty() { self.palette.vxlan_share } else { 0 };
        let roll = self.rng.below(100 + vxlan_weight as usize);
        let (ether_type, payload) = match roll {
            0..=29 => (ETH_P_IPV4, self.ipv4()),
            30..=53 => (ETH_P_IPV6, self.ipv6()),
            54..=71 => (ETH_P_ARP, self.arp()),
            72..=79 => (ETH_P_8021Q, self.rng.some_bytes(48)),
            80..=99 => {
                let ether_type = self.rng.pick_or(&[0x88cc, 0x8863, 0x9000, 0x0842, 0x0600, 0x002e], |r| r.u16());
                (ether_type, self.rng.some_bytes(64))
            }
            _ => (ETH_P_IPV4, self.vxlan_ipv4(depth)),
        };
        frame.extend_from_slice(&ether_type.to_be_bytes());
        frame.extend(payload);
        frame.truncate(MAX_FRAME);
        frame
    }

    /// 802.1Q / 802.1ad tags (TPID + TCI each) between the source MAC and the EtherType. With VLAN networks in the
    /// scenario, a good part of the frames carry one 802.1Q tag of theirs (outer tags of them come from the stacks
    /// below too).
    fn vlan_tags(&mut self) -> Vec<u8> {
        let vlan_share = if self.palette.vids.is_empty() { 0 } else { 40 };
        let tpids: Vec<u16> = match self.rng.below(100 + vlan_share) {
            100.. => vec![ETH_P_8021Q],
            0..=59 => vec![],
            60..=77 => vec![ETH_P_8021Q],
            78..=86 => vec![ETH_P_8021AD, ETH_P_8021Q],
            87..=90 => vec![ETH_P_8021Q, ETH_P_8021Q],
            91..=93 => vec![ETH_P_8021AD, ETH_P_8021AD, ETH_P_8021Q],
            94..=96 => vec![ETH_P_8021AD],
            _ => vec![*self.rng.pick(&[0x9100, 0x9200, ETH_P_8021Q])],
        };
        let mut tags = Vec::new();
        for tpid in tpids {
            let vid = if !self.palette.vids.is_empty() && self.rng.chance(70) {
                *self.rng.pick(&self.palette.vids)
            } else {
                self.rng.pick_or(&[0u16, 1, 5, 42, 100, 4094, 4095], |r| r.u16() & 0x0fff)
            };
            // Priority and DEI bits: any, which must not change which VLAN the frame is on.
            let pcp_dei = (self.rng.byte() as u16 & 0xf) << 12;
            tags.extend_from_slice(&tpid.to_be_bytes());
            tags.extend_from_slice(&(pcp_dei | vid).to_be_bytes());
        }
        tags
    }

    fn arp(&mut self) -> Vec<u8> {
        let mut arp = Vec::with_capacity(46);
        let htype: u16 = if self.rng.chance(90) { 1 } else { self.rng.u16() };
        let ptype: u16 = if self.rng.chance(90) { ETH_P_IPV4 } else { self.rng.pick_or(&[ETH_P_IPV6], |r| r.u16()) };
        let hlen: u8 = if self.rng.chance(92) { 6 } else { self.rng.byte() };
        let plen: u8 = if self.rng.chance(88) { 4 } else { self.rng.pick_or(&[0, 6, 16], |r| r.byte()) };
        let op: u16 = match self.rng.below(100) {
            0..=54 => 1,
            55..=89 => 2,
            _ => self.rng.u16(),
        };
        arp.extend_from_slice(&htype.to_be_bytes());
        arp.extend_from_slice(&ptype.to_be_bytes());
        arp.push(hlen);
        arp.push(plen);
        arp.extend_from_slice(&op.to_be_bytes());
        let sha = self.src_mac();
        let spa = if self.rng.chance(8) { [0; 4] } else { self.v4(true) };
        let tha = if self.rng.chance(60) { [0; 6] } else { self.dst_mac() };
        let tpa = if self.rng.chance(10) { spa } else { self.v4(false) };
        arp.extend_from_slice(&sha);
        arp.extend_from_slice(&spa);
        arp.extend_from_slice(&tha);
        arp.extend_from_slice(&tpa);
        if self.rng.chance(40) {
            arp.resize(46, 0); // padded to the 60-byte minimum frame
        }
        arp
    }

    // --- IPv4 ---------------------------------------------------------------------------------------------------

    fn ipv4(&mut self) -> Vec<u8> {
        let proto = match self.rng.below(100) {
            0..=39 => IPPROTO_UDP,
            40..=64 => IPPROTO_TCP,
            65..=79 => IPPROTO_ICMP,
            80..=84 => 0,
            _ => self.rng.byte(),
        };
        let payload = match proto {
            IPPROTO_UDP => self.udp(None),
            IPPROTO_TCP => self.tcp(),
            IPPROTO_ICMP => self.icmp(),
            _ => self.rng.some_bytes(48),
        };
        let (src, dst) = (self.v4(true), self.v4(false));
        self.ipv4_packet(proto, src, dst, payload, false)
    }

    /// An IPv4 header in front of `payload`; `tidy` keeps it a plain one (what VXLAN needs, most of the time).
    fn ipv4_packet(&mut self, proto: u8, src: [u8; 4], dst: [u8; 4], payload: Vec<u8>, tidy: bool) -> Vec<u8> {
        let options: Vec<u8> = if !tidy && self.rng.chance(12) || tidy && self.rng.chance(3) {
            let mut options = Vec::new();
            let words = self.rng.between(1, 10);
            while options.len() < words * 4 {
                match self.rng.below(6) {
                    0 => options.push(1),                            // NOP
                    1 => options.push(0),                            // end of list
                    2 => options.extend_from_slice(&[148, 4, 0, 0]), // router alert
                    3 => {
                        let len = 3 + 4 * self.rng.below(3) as u8; // record route
                        options.extend_from_slice(&[7, len, 4]);
                        options.extend(self.rng.bytes(len as usize - 3));
                    }
                    4 => options.extend_from_slice(&[68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // timestamp
                    _ => {
                        let n = self.rng.between(1, 6);
                        options.extend(self.rng.bytes(n))
                    }
                }
            }
            options.truncate(words * 4);
            options
        } else {
            Vec::new()
        };
        let ihl = 5 + options.len() / 4;
        let vihl = match self.rng.below(100) {
            0..=95 => 0x40 | ihl as u8,
            96..=97 => 0x40 | self.rng.below(5) as u8, // IHL below the minimum
            _ => self.rng.byte(),
        };
        let total = 20 + options.len() + payload.len();
        let tot_len = self.length(total);
        let frags: u16 = match self.rng.below(100) {
            0..=69 => 0x4000,
            70..=84 => 0,
            85..=89 if !tidy || self.rng.chance(30) => 0x2000 | (self.rng.u16() & 0x00ff),
            90..=94 if !tidy || self.rng.chance(30) => self.rng.u16() & 0x1fff,
            95..=99 if !tidy || self.rng.chance(30) => self.rng.u16(),
            _ => 0x4000,
        };
        let ttl = self.rng.pick_or(&[64, 1, 0, 255], |r| r.byte());
        let mut header = vec![vihl, self.rng.byte() & 0xfc];
        header.extend_from_slice(&tot_len.to_be_bytes());
        header.extend_from_slice(&self.rng.u16().to_be_bytes());
        header.extend_from_slice(&frags.to_be_bytes());
        header.extend_from_slice(&[ttl, proto, 0, 0]);
        header.extend_from_slice(&src);
        header.extend_from_slice(&dst);
        header.extend_from_slice(&options);
        let check = if self.rng.chance(90) { ipv4_checksum(&header) } else { self.rng.u16().to_be_bytes() };
        header[10..12].copy_from_slice(&check);
        header.extend(payload);
        header
    }

    /// A length field: right most of the time, else zero, short, long or anything.
    fn length(&mut self, right: usize) -> u16 {
        match self.rng.below(100) {
            0..=84 => right as u16,
            85..=87 => 0,
            88..=92 => right.saturating_sub(self.rng.between(1, 16)) as u16,
            93..=96 => (right + self.rng.between(1, 64)) as u16,
            _ => self.rng.u16(),
        }
    }

    fn udp(&mut self, dst_port: Option<u16>) -> Vec<u8> {
        let payload_len = if self.rng.chance(90) { self.rng.below(48) } else { self.rng.below(1200) };
        let payload = self.rng.bytes(payload_len);
        let src_port = self.rng.u16();
        let dst_port = match dst_port {
            Some(port) => port,
            None => self.port(),
        };
        self.udp_datagram(src_port, dst_port, payload)
    }

    fn port(&mut self) -> u16 {
        let mut ports = vec![53, 67, 68, 123, 4789, 8472, 0, self.rng.u16()];
        ports.extend(&self.palette.vxlan_ports);
        *self.rng.pick(&ports)
    }

    fn udp_datagram(&mut self, src_port: u16, dst_port: u16, payload: Vec<u8>) -> Vec<u8> {
        let mut udp = Vec::with_capacity(8 + payload.len());
        udp.extend_from_slice(&src_port.to_be_bytes());
        udp.extend_from_slice(&dst_port.to_be_bytes());
        let len = self.length(8 + payload.len());
        udp.extend_from_slice(&len.to_be_bytes());
        let check = if self.rng.chance(70) { [0, 0] } else { self.rng.u16().to_be_bytes() };
        udp.extend_from_slice(&check);
        udp.extend(payload);
        udp
    }

    fn tcp(&mut self) -> Vec<u8> {
        let option_words = if self.rng.chance(30) { self.rng.between(1, 10) } else { 0 };
        let offset = if self.rng.chance(92) { 5 + option_words as u8 } else { self.rng.byte() >> 4 };
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&self.port().to_be_bytes());
        tcp.extend_from_slice(&self.port().to_be_bytes());
        tcp.extend(self.rng.bytes(8)); // sequence, acknowledgement
        tcp.push(offset << 4);
        tcp.push(self.rng.byte()); // flags
        tcp.extend(self.rng.bytes(6)); // window, checksum, urgent pointer
        for _ in 0..option_words {
            tcp.extend_from_slice(&[*self.rng.pick(&[1, 2, 3, 4, 8, 0]), 4, self.rng.byte(), self.rng.byte()]);
        }
        tcp.extend(self.rng.some_bytes(40));
        tcp
    }

    fn icmp(&mut self) -> Vec<u8> {
        let mut icmp = vec![self.rng.pick_or(&[8, 0, 3, 11], |r| r.byte()), self.rng.byte() % 4, 0, 0];
        icmp.extend(self.rng.bytes(4));
        icmp.extend(self.rng.some_bytes(56));
        icmp
    }

    // --- IPv6 ---------------------------------------------------------------------------------------------------

    fn ipv6(&mut self) -> Vec<u8> {
        let src = self.v6(true);
        let dst = self.v6(false);
        let (last, upper) = match self.rng.below(100) {
            0..=44 => (IPPROTO_ICMPV6, self.icmpv6(&src, &dst)),
            45..=69 => (IPPROTO_UDP, self.udp(None)),
            70..=84 => (IPPROTO_TCP, self.tcp()),
            _ => (self.rng.pick_or(&[59, 50], |r| r.byte()), self.rng.some_bytes(40)),
        };
        // Extension headers, outermost first.
        let chain: Vec<u8> = if self.rng.chance(60) {
            Vec::new()
        } else {
            (0..self.rng.between(1, 4)).map(|_| *self.rng.pick(&[0, 43, 44, 60, 51, 135])).collect()
        };
        let mut body = upper;
        let mut next = last;
        for &kind in chain.iter().rev() {
            let mut header = self.extension_header(kind);
            header[0] = next;
            header.extend(body);
            body = header;
            next = kind;
        }
        let mut packet = Vec::with_capacity(40 + body.len());
        let version = if self.rng.chance(95) { 0x60 } else { self.rng.byte() };
        packet.extend_from_slice(&[version, self.rng.byte(), self.rng.byte(), self.rng.byte()]);
        let payload_len = self.length(body.len());
        packet.extend_from_slice(&payload_len.to_be_bytes());
        packet.push(next);
        packet.push(self.rng.pick_or(&[255, 64, 1, 0], |r| r.byte()));
        packet.extend_from_slice(&src);
        packet.extend_from_slice(&dst);
        packet.extend(body);
        packet
    }

    /// One extension header of type `kind` (its next-header byte is filled in by the caller).
    fn extension_header(&mut self, kind: u8) -> Vec<u8> {
        match kind {
            44 => {
                // Fragment: offset, M flag, identification.
                let mut header = vec![0, 0];
                header.extend_from_slice(&(self.rng.u16() & 0xfff9).to_be_bytes());
                header.extend(self.rng.bytes(4));
                header
            }
            51 => {
                // AH: its length counts 4-byte words minus 2.
                let words = self.rng.between(3, 6);
                let mut header = vec![0, if self.rng.chance(85) { (words - 2) as u8 } else { self.rng.byte() }];
                header.extend(self.rng.bytes(words * 4 - 2));
                header
            }
            _ => {
                // Hop-by-hop, routing, destination options, mobility: 8-byte units beyond the first.
                let units = self.rng.below(3);
                let ext_len = if self.rng.chance(85) { units as u8 } else { self.rng.byte() };
                let mut header = vec![0, ext_len];
                if kind == 43 {
                    header.extend_from_slice(&[*self.rng.pick(&[0, 2, 3, 4]), self.rng.byte() % 4]);
                    header.extend(self.rng.bytes(4 + units * 8));
                } else {
                    // Options: Pad1, PadN, router alert, or anything.
                    let mut options = Vec::new();
                    while options.len() < 6 + units * 8 {
                        match self.rng.below(4) {
                            0 => options.push(0),
                            1 => options.extend_from_slice(&[1, 0]),
                            2 => options.extend_from_slice(&[5, 2, 0, 0]),
                            _ => options.extend(self.rng.bytes(2)),
                        }
                    }
                    options.truncate(6 + units * 8);
                    header.extend(options);
                }
                header
            }
        }
    }

    fn icmpv6(&mut self, src: &[u8; 16], dst: &[u8; 16]) -> Vec<u8> {
        let kind = self.rng.pick_or(&[135, 135, 135, 136, 133, 134, 128, 129, 130, 143], |r| r.byte());
        let code = if self.rng.chance(90) { 0 } else { self.rng.byte() };
        let mut icmp = vec![kind, code, 0, 0];
        match kind {
            135 | 136 => {
                icmp.extend_from_slice(&if kind == 136 { [0x60, 0, 0, 0] } else { [0; 4] });
                let target = if self.rng.chance(70) { self.v6_from_palette() } else { self.v6(false) };
                icmp.extend_from_slice(&target);
                if self.rng.chance(70) {
                    // Source (NS) or target (NA) link-layer address option.
                    icmp.extend_from_slice(&[if kind == 135 { 1 } else { 2 }, 1]);
                    icmp.extend_from_slice(&self.src_mac());
                }
            }
            _ => {
                icmp.extend(self.rng.bytes(4));
                icmp.extend(self.rng.some_bytes(40));
            }
        }
        if self.rng.chance(80) {
            let check = ipv6_upper_checksum(src, dst, IPPROTO_ICMPV6, &icmp);
            icmp[2..4].copy_from_slice(&check);
        }
        icmp
    }

    // --- VXLAN --------------------------------------------------------------------------------------------------

    /// Outer IPv4 + UDP + VXLAN + an inner Ethernet frame.
    fn vxlan_ipv4(&mut self, depth: usize) -> Vec<u8> {
        let palette = self.palette;
        if !palette.vxlan_networks.is_empty() && self.rng.chance(60) {
            let target = self.rng.pick(&palette.vxlan_networks);
            let mut packet = self.vxlan_packet(depth, target.vni, target.port, target.dst, 0x08);
            // Often for one of the network's endpoints (the inner destination MAC, behind the outer headers).
            let inner = 20 + 8 + 8;
            if !target.macs.is_empty() && packet.len() >= inner + 6 && self.rng.chance(40) {
                let mac = *self.rng.pick(&target.macs);
                packet[inner..inner + 6].copy_from_slice(&mac);
            }
            return packet;
        }
        let dst_port = match self.rng.below(100) {
            0..=84 if !palette.vxlan_ports.is_empty() => *self.rng.pick(&palette.vxlan_ports),
            85..=89 => 4789,
            90..=93 => 8472,
            _ => self.rng.u16(),
        };
        let flags = match self.rng.below(100) {
            0..=84 => 0x08,
            85..=89 => 0x00,
            90..=94 => 0x08 | (self.rng.byte() & 0xf7),
            _ => self.rng.byte(),
        };
        let vni = match self.rng.below(100) {
            0..=84 if !palette.vnis.is_empty() => *self.rng.pick(&palette.vnis),
            85..=89 if !palette.vnis.is_empty() => self.rng.pick(&palette.vnis).wrapping_add(1) & 0xff_ffff,
            90..=92 => 0,
            93..=95 => 0xff_ffff,
            _ => self.rng.next_u64() as u32 & 0xff_ffff,
        };
        let dst = match self.rng.below(100) {
            0..=79 if !palette.vtep_locals.is_empty() => *self.rng.pick(&palette.vtep_locals),
            _ => self.v4(false),
        };
        self.vxlan_packet(depth, vni, dst_port, dst, flags)
    }

    fn vxlan_packet(&mut self, depth: usize, vni: u32, dst_port: u16, dst: [u8; 4], flags: u8) -> Vec<u8> {
        let palette = self.palette;
        let mut vxlan = vec![flags];
        if self.rng.chance(85) {
            vxlan.extend_from_slice(&[0, 0, 0]);
        } else {
            vxlan.extend(self.rng.bytes(3));
        }
        vxlan.extend_from_slice(&vni.to_be_bytes()[1..]);
        vxlan.push(if self.rng.chance(90) { 0 } else { self.rng.byte() });
        vxlan.extend(self.ethernet(depth + 1));
        let src_port = self.rng.u16();
        let udp = self.udp_datagram(src_port, dst_port, vxlan);
        let src = match self.rng.below(100) {
            0..=69 if !palette.vtep_remotes.is_empty() => *self.rng.pick(&palette.vtep_remotes),
            70..=79 if !palette.vtep_locals.is_empty() => *self.rng.pick(&palette.vtep_locals),
            _ => self.v4(false),
        };
        self.ipv4_packet(IPPROTO_UDP, src, dst, udp, true)
    }
}

pub fn ipv4_checksum(header: &[u8]) -> [u8; 2] {
    let mut sum: u32 = header.chunks(2).map(|w| u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

/// The checksum of an upper-layer IPv6 payload (ICMPv6), pseudo-header included, with its own checksum field zero.
pub fn ipv6_upper_checksum(src: &[u8; 16], dst: &[u8; 16], next_header: u8, payload: &[u8]) -> [u8; 2] {
    let mut bytes = Vec::with_capacity(40 + payload.len());
    bytes.extend_from_slice(src);
    bytes.extend_from_slice(dst);
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, next_header]);
    bytes.extend_from_slice(payload);
    ipv4_checksum(&bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
