//! Which IP addresses a webhook must not reach by default: every range that leads into the
//! service's own host or network, or that is not a real unicast destination on the internet.
//! The classification is pure; the policy on top of it (opt-in, allow-list) and the DNS checks
//! live in `delivery::guard`.
//!
//! Everything is decided by one table, [`SPECIAL_RANGES`], built from the IANA registries (IPv4
//! and IPv6 Special-Purpose Address Registries, the IPv4 Multicast Address Space Registry and
//! the IPv6 Address Space Registry). An address is judged by the most specific row containing
//! it (longest prefix), so a narrow row can refine a wide one: `::ffff:0:0/96` (unwrapped) sits
//! inside `::/8` (refused). An address no row contains passes. Each row says how it is treated
//! ([`Handling`]); the tests iterate the table itself, so a new row is tested as soon as it is
//! added.
//!
//! IPv6 forms that carry an IPv4 address — IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo —
//! are unwrapped: a connection to one ends up at (or is routed by) the IPv4 address inside, so
//! an internal IPv4 address must not get through dressed as IPv6.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// How the guard treats the addresses of one [`SpecialRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Every address in the range is refused.
    Refuse,
    /// The range carries an IPv4 address: an address in it is refused when that IPv4 address is
    /// (the refusal names both), and passes otherwise, since it then stands for a public host.
    JudgeEmbedded(Embedding),
    /// The range carries an IPv4 address but is refused whatever that address is (obsolete
    /// forms no receiver is served on); the refusal names the IPv4 address's range when that
    /// is blocked too.
    RefuseNamingEmbedded(Embedding),
    /// Special-purpose, yet globally reachable unicast: not refused. Listed so the decision is
    /// written down (and tested) rather than implied by absence.
    Pass,
}

/// Where an IPv6 range carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// In the last 32 bits (IPv4-mapped, IPv4-compatible, NAT64 with a /96 prefix; RFC 4291
    /// §2.5.5, RFC 6052 §2.2).
    Last32,
    /// In bits 16 to 48, after `2002::/16` (6to4, RFC 3056 §2).
    SixToFour,
    /// The Teredo client's public address: the last 32 bits, each inverted (RFC 4380 §4).
    /// Bits 32 to 64 hold the Teredo server's address, which the traffic does not go to.
    Teredo,
}

impl Embedding {
    /// The IPv4 address `v6` carries in this form.
    pub fn extract(self, v6: Ipv6Addr) -> Ipv4Addr {
        let bits = u128::from(v6);
        // Truncating casts pick the 32 bits wanted: that is the point of them.
        match self {
            Self::Last32 => Ipv4Addr::from(bits as u32),
            Self::SixToFour => Ipv4Addr::from((bits >> 80) as u32),
            Self::Teredo => Ipv4Addr::from(!(bits as u32)),
        }
    }

    /// `v4` written in this form under `prefix` (the inverse of [`Embedding::extract`]; for
    /// Teredo the server address, flags and port are left zero). For tests and tools that need
    /// the IPv6 spellings of an IPv4 address.
    pub fn embed(self, prefix: Ipv6Net, v4: Ipv4Addr) -> Ipv6Addr {
        let network = u128::from(prefix.network());
        let v4 = u128::from(u32::from(v4));
        Ipv6Addr::from(match self {
            Self::Last32 => network | v4,
            Self::SixToFour => network | (v4 << 80),
            Self::Teredo => network | (!v4 & 0xffff_ffff),
        })
    }
}

/// One row of the table: a range, what it is, where it is registered, and how it is treated.
#[derive(Debug, PartialEq, Eq)]
pub struct SpecialRange {
    /// The range.
    pub net: IpNet,
    /// What the range is, as an error message shows it.
    pub name: &'static str,
    /// The IANA registry that lists it.
    pub registry: &'static str,
    /// The RFC (and section) that defines it.
    pub rfc: &'static str,
    /// How addresses in it are treated.
    pub handling: Handling,
}

/// The IANA IPv4 Special-Purpose Address Registry.
const V4_SPECIAL: &str = "IANA IPv4 Special-Purpose Address Registry";
/// The IANA IPv6 Special-Purpose Address Registry.
const V6_SPECIAL: &str = "IANA IPv6 Special-Purpose Address Registry";
/// The IANA IPv6 Address Space Registry (top-level allocations).
const V6_SPACE: &str = "IANA IPv6 Address Space Registry";

/// One row of [`SPECIAL_RANGES`]: range, name, registry, RFC, handling.
macro_rules! row {
    ($net:expr, $name:literal, $registry:expr, $rfc:literal, $handling:expr) => {
        SpecialRange {
            net: $net,
            name: $name,
            registry: $registry,
            rfc: $rfc,
            handling: $handling,
        }
    };
}

/// The table of special-purpose ranges, IPv4 then IPv6, each with its decision. Rows left out
/// on purpose, because a more general row covers them: the single addresses and small blocks
/// inside `192.0.0.0/24` (DS-Lite, PCP and TURN anycast, NAT64 discovery: refused with the
/// /24, no receiver lives there) and inside `2001::/23` (PCP, TURN, DNS-SD anycast, AMT,
/// AS112-v6, ORCHID, DETs: refused with the /23), and `0.0.0.0/32` (inside `0.0.0.0/8`).
pub const SPECIAL_RANGES: &[SpecialRange] = &[
    // --- IPv4 ---
    row!(
        v4(0, 0, 0, 0, 8),
        "\"this network\"",
        V4_SPECIAL,
        "RFC 791 §3.2",
        Handling::Refuse
    ),
    row!(
        v4(10, 0, 0, 0, 8),
        "private",
        V4_SPECIAL,
        "RFC 1918",
        Handling::Refuse
    ),
    row!(
        v4(100, 64, 0, 0, 10),
        "carrier-grade NAT",
        V4_SPECIAL,
        "RFC 6598",
        Handling::Refuse
    ),
    row!(
        v4(127, 0, 0, 0, 8),
        "loopback",
        V4_SPECIAL,
        "RFC 1122 §3.2.1.3",
        Handling::Refuse
    ),
    row!(
        v4(169, 254, 0, 0, 16),
        "link-local, cloud metadata included",
        V4_SPECIAL,
        "RFC 3927",
        Handling::Refuse
    ),
    row!(
        v4(172, 16, 0, 0, 12),
        "private",
        V4_SPECIAL,
        "RFC 1918",
        Handling::Refuse
    ),
    row!(
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments",
        V4_SPECIAL,
        "RFC 6890 §2.1",
        Handling::Refuse
    ),
    row!(
        v4(192, 0, 2, 0, 24),
        "documentation",
        V4_SPECIAL,
        "RFC 5737",
        Handling::Refuse
    ),
    // Globally reachable anycast DNS sinks and relays: public destinations like any other.
    row!(
        v4(192, 31, 196, 0, 24),
        "AS112-v4",
        V4_SPECIAL,
        "RFC 7535",
        Handling::Pass
    ),
    row!(
        v4(192, 52, 193, 0, 24),
        "AMT",
        V4_SPECIAL,
        "RFC 7450",
        Handling::Pass
    ),
    // Deprecated: the anycast relays it named were withdrawn; whatever answers there now is a
    // network's own relay, not a receiver.
    row!(
        v4(192, 88, 99, 0, 24),
        "deprecated 6to4 relay anycast",
        V4_SPECIAL,
        "RFC 7526",
        Handling::Refuse
    ),
    row!(
        v4(192, 168, 0, 0, 16),
        "private",
        V4_SPECIAL,
        "RFC 1918",
        Handling::Refuse
    ),
    row!(
        v4(192, 175, 48, 0, 24),
        "AS112 direct delegation",
        V4_SPECIAL,
        "RFC 7534",
        Handling::Pass
    ),
    row!(
        v4(198, 18, 0, 0, 15),
        "benchmarking",
        V4_SPECIAL,
        "RFC 2544",
        Handling::Refuse
    ),
    row!(
        v4(198, 51, 100, 0, 24),
        "documentation",
        V4_SPECIAL,
        "RFC 5737",
        Handling::Refuse
    ),
    row!(
        v4(203, 0, 113, 0, 24),
        "documentation",
        V4_SPECIAL,
        "RFC 5737",
        Handling::Refuse
    ),
    row!(
        v4(224, 0, 0, 0, 4),
        "multicast",
        "IANA IPv4 Multicast Address Space Registry",
        "RFC 5771",
        Handling::Refuse
    ),
    row!(
        v4(240, 0, 0, 0, 4),
        "reserved",
        V4_SPECIAL,
        "RFC 1112 §4",
        Handling::Refuse
    ),
    row!(
        v4(255, 255, 255, 255, 32),
        "broadcast",
        V4_SPECIAL,
        "RFC 919 §7, RFC 8190",
        Handling::Refuse
    ),
    // --- IPv6: the special-purpose registry ---
    row!(
        v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
        "unspecified",
        V6_SPECIAL,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
        "loopback",
        V6_SPECIAL,
        "RFC 4291",
        Handling::Refuse
    ),
    // How a dual-stack socket spells an IPv4 peer: exactly as good as the IPv4 address.
    row!(
        v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
        "IPv4-mapped",
        V6_SPECIAL,
        "RFC 4291 §2.5.5.2",
        Handling::JudgeEmbedded(Embedding::Last32)
    ),
    // Deprecated and unrouted, yet some stacks still connect to the IPv4 address inside.
    row!(
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible, deprecated",
        V6_SPACE,
        "RFC 4291 §2.5.5.1",
        Handling::RefuseNamingEmbedded(Embedding::Last32)
    ),
    // The well-known NAT64 prefix reaches public IPv4 hosts from IPv6-only networks (DNS64);
    // RFC 6052 §3.1 forbids it for non-global IPv4 addresses, which are refused.
    row!(
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        "NAT64",
        V6_SPECIAL,
        "RFC 6052",
        Handling::JudgeEmbedded(Embedding::Last32)
    ),
    // A network's own translator, where the embedding depends on its prefix length: refused
    // as a whole, as it leads into that network.
    row!(
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local-use NAT64",
        V6_SPECIAL,
        "RFC 8215",
        Handling::Refuse
    ),
    row!(
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "discard-only",
        V6_SPECIAL,
        "RFC 6666",
        Handling::Refuse
    ),
    row!(
        v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64),
        "dummy prefix",
        V6_SPECIAL,
        "RFC 9780",
        Handling::Refuse
    ),
    row!(
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments",
        V6_SPECIAL,
        "RFC 2928",
        Handling::Refuse
    ),
    // Obsolete (public Teredo servers are gone), so refused whatever client it names.
    row!(
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "Teredo",
        V6_SPECIAL,
        "RFC 4380, RFC 8190",
        Handling::RefuseNamingEmbedded(Embedding::Teredo)
    ),
    row!(
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        "benchmarking",
        V6_SPECIAL,
        "RFC 5180",
        Handling::Refuse
    ),
    row!(
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation",
        V6_SPECIAL,
        "RFC 3849",
        Handling::Refuse
    ),
    // Relays to public IPv4 sites still exist; the IPv4 address inside decides.
    row!(
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        "6to4",
        V6_SPECIAL,
        "RFC 3056",
        Handling::JudgeEmbedded(Embedding::SixToFour)
    ),
    row!(
        v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48),
        "AS112-v6 direct delegation",
        V6_SPECIAL,
        "RFC 7534",
        Handling::Pass
    ),
    row!(
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation",
        V6_SPECIAL,
        "RFC 9637",
        Handling::Refuse
    ),
    row!(
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "SRv6 SIDs",
        V6_SPECIAL,
        "RFC 9602",
        Handling::Refuse
    ),
    row!(
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique-local",
        V6_SPECIAL,
        "RFC 4193",
        Handling::Refuse
    ),
    row!(
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local",
        V6_SPECIAL,
        "RFC 4291",
        Handling::Refuse
    ),
    // --- IPv6: outside global unicast (2000::/3), per the address space registry: unassigned
    // space is not routed on the internet, so only a private network could answer there ---
    row!(
        v6([0, 0, 0, 0, 0, 0, 0, 0], 8),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 8),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x200, 0, 0, 0, 0, 0, 0, 0], 7),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4048",
        Handling::Refuse
    ),
    row!(
        v6([0x400, 0, 0, 0, 0, 0, 0, 0], 6),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x800, 0, 0, 0, 0, 0, 0, 0], 5),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x1000, 0, 0, 0, 0, 0, 0, 0], 4),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 3),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x6000, 0, 0, 0, 0, 0, 0, 0], 3),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 3),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xa000, 0, 0, 0, 0, 0, 0, 0], 3),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xc000, 0, 0, 0, 0, 0, 0, 0], 3),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xe000, 0, 0, 0, 0, 0, 0, 0], 4),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xf000, 0, 0, 0, 0, 0, 0, 0], 5),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xf800, 0, 0, 0, 0, 0, 0, 0], 6),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xfe00, 0, 0, 0, 0, 0, 0, 0], 9),
        "reserved by IETF",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
    row!(
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local, deprecated",
        V6_SPACE,
        "RFC 3879",
        Handling::Refuse
    ),
    row!(
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        "multicast",
        V6_SPACE,
        "RFC 4291",
        Handling::Refuse
    ),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    // Evaluated at compile time: a bad prefix is a build error, never a runtime panic.
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(s: [u16; 8], prefix: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        prefix,
    ))
}

/// Why an address is refused: the row it falls in and, for an IPv6 form of an IPv4 address,
/// the IPv4 address and the row that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// The most specific row containing the address.
    pub range: &'static SpecialRange,
    /// The IPv4 address inside, with its row, when that is what refuses it.
    pub embedded: Option<(Ipv4Addr, &'static SpecialRange)>,
}

impl fmt::Display for Blocked {
    /// A noun phrase for "a … address": `loopback (127.0.0.0/8)`, or
    /// `6to4 (2002::/16) form of 127.0.0.1, a loopback (127.0.0.0/8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.range.name, self.range.net)?;
        if let Some((v4, inner)) = self.embedded {
            write!(f, " form of {v4}, a {} ({})", inner.name, inner.net)?;
        }
        Ok(())
    }
}

/// The most specific row of [`SPECIAL_RANGES`] containing `ip`, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static SpecialRange> {
    SPECIAL_RANGES
        .iter()
        .filter(|row| row.net.contains(&ip))
        .max_by_key(|row| row.net.prefix_len())
}

/// Why `ip` is blocked (loopback, private, link-local — cloud metadata at 169.254.169.254
/// included —, carrier-grade NAT, unique-local, multicast, broadcast, unspecified, reserved,
/// documentation, benchmarking, ...), or `None` for an ordinary public unicast address. IPv6
/// forms of IPv4 addresses are unwrapped as their row says ([`Handling`]).
pub fn blocked_range(ip: IpAddr) -> Option<Blocked> {
    let range = special_range(ip)?;
    let (embedding, refuse_anyway) = match range.handling {
        Handling::Pass => return None,
        Handling::Refuse => {
            return Some(Blocked {
                range,
                embedded: None,
            });
        }
        Handling::JudgeEmbedded(embedding) => (embedding, false),
        Handling::RefuseNamingEmbedded(embedding) => (embedding, true),
    };
    // Only IPv6 rows embed; an IPv4 address cannot reach here, but it is refused if it does.
    let IpAddr::V6(v6) = ip else {
        return Some(Blocked {
            range,
            embedded: None,
        });
    };
    let v4 = embedding.extract(v6);
    // IPv4 rows only refuse or pass, so this looks one level deep.
    let inner = special_range(IpAddr::V4(v4)).filter(|row| row.handling != Handling::Pass);
    match inner {
        Some(inner) => Some(Blocked {
            range,
            embedded: Some((v4, inner)),
        }),
        None => refuse_anyway.then_some(Blocked {
            range,
            embedded: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn blocked(text: &str) -> bool {
        let ip: IpAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        blocked_range(ip).is_some()
    }

    fn v6_net(row: &SpecialRange) -> Option<Ipv6Net> {
        match row.net {
            IpNet::V6(net) => Some(net),
            IpNet::V4(_) => None,
        }
    }

    /// Public IPv4 addresses embedded forms are checked with.
    const PUBLIC_V4: [Ipv4Addr; 3] = [
        Ipv4Addr::new(1, 1, 1, 1),
        Ipv4Addr::new(8, 8, 8, 8),
        Ipv4Addr::new(93, 184, 216, 34),
    ];

    /// The first, last and a middle address of every row.
    fn samples(net: IpNet) -> Vec<IpAddr> {
        let middle = match net {
            IpNet::V4(n) => {
                let lo = u32::from(n.network());
                let hi = u32::from(n.broadcast());
                IpAddr::V4(Ipv4Addr::from(lo + (hi - lo) / 2))
            }
            IpNet::V6(n) => {
                let lo = u128::from(n.network());
                let hi = u128::from(n.broadcast());
                IpAddr::V6(Ipv6Addr::from(lo + (hi - lo) / 2))
            }
        };
        vec![net.network(), middle, net.broadcast()]
    }

    #[test]
    fn every_row_is_registered_named_and_distinct() {
        for (i, row) in SPECIAL_RANGES.iter().enumerate() {
            assert!(row.rfc.starts_with("RFC "), "{row:?}");
            assert!(row.registry.starts_with("IANA "), "{row:?}");
            assert!(!row.name.is_empty(), "{row:?}");
            assert_eq!(row.net, row.net.trunc(), "{row:?}: host bits set");
            assert!(
                SPECIAL_RANGES[..i].iter().all(|other| other.net != row.net),
                "{row:?} is listed twice"
            );
            let embeds = matches!(
                row.handling,
                Handling::JudgeEmbedded(_) | Handling::RefuseNamingEmbedded(_)
            );
            assert!(
                !embeds || v6_net(row).is_some(),
                "{row:?}: only IPv6 embeds"
            );
        }
    }

    #[test]
    fn every_address_of_a_refused_row_is_refused_naming_that_row() {
        for row in SPECIAL_RANGES
            .iter()
            .filter(|r| r.handling == Handling::Refuse)
        {
            for ip in samples(row.net) {
                // A more specific row may refine a wide one (`::ffff:0:0/96` inside `::/8`).
                if special_range(ip) != Some(row) {
                    continue;
                }
                let refused = blocked_range(ip).unwrap_or_else(|| panic!("{ip} ({row:?})"));
                assert_eq!(refused.range, row, "{ip}");
                assert!(refused.to_string().contains(row.name), "{refused}");
            }
        }
    }

    #[test]
    fn every_address_of_a_passing_row_passes() {
        for row in SPECIAL_RANGES
            .iter()
            .filter(|r| r.handling == Handling::Pass)
        {
            for ip in samples(row.net) {
                assert_eq!(blocked_range(ip), None, "{ip} ({row:?})");
            }
        }
    }

    #[test]
    fn every_embedded_form_of_a_refused_ipv4_address_is_refused_naming_both() {
        let embedding_rows: Vec<(&SpecialRange, Ipv6Net, Embedding)> = SPECIAL_RANGES
            .iter()
            .filter_map(|row| match row.handling {
                Handling::JudgeEmbedded(e) | Handling::RefuseNamingEmbedded(e) => {
                    Some((row, v6_net(row)?, e))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            embedding_rows.len(),
            5,
            "mapped, compatible, NAT64, 6to4, Teredo"
        );
        for v4_row in SPECIAL_RANGES
            .iter()
            .filter(|r| r.net.addr().is_ipv4() && r.handling == Handling::Refuse)
        {
            for v4 in samples(v4_row.net) {
                let IpAddr::V4(v4) = v4 else { continue };
                for (row, net, embedding) in &embedding_rows {
                    let ip = IpAddr::V6(embedding.embed(*net, v4));
                    // `::0.0.0.1` is `::1`, judged by its own row.
                    if special_range(ip) != Some(*row) {
                        continue;
                    }
                    let refused = blocked_range(ip).unwrap_or_else(|| panic!("{ip}"));
                    assert_eq!(refused.range, *row, "{ip}");
                    // 255.255.255.255 is named by its own row, not by 240.0.0.0/4.
                    let inner = special_range(IpAddr::V4(v4)).unwrap_or(v4_row);
                    assert_eq!(refused.embedded, Some((v4, inner)), "{ip}");
                    let text = refused.to_string();
                    assert!(
                        text.contains(row.name) && text.contains(inner.name),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn embedded_public_addresses_pass_only_where_the_form_is_judged_by_them() {
        for row in SPECIAL_RANGES {
            let (Some(net), Handling::JudgeEmbedded(e) | Handling::RefuseNamingEmbedded(e)) =
                (v6_net(row), row.handling)
            else {
                continue;
            };
            for v4 in PUBLIC_V4 {
                let ip = IpAddr::V6(e.embed(net, v4));
                let passes = matches!(row.handling, Handling::JudgeEmbedded(_));
                assert_eq!(blocked_range(ip).is_none(), passes, "{ip} ({row:?})");
            }
        }
    }

    #[test]
    fn internal_ipv4_ranges_are_blocked() {
        for ip in [
            "0.0.0.0",
            "10.255.255.255",
            "100.127.255.254",
            "127.1.2.3",
            "169.254.169.254",
            "172.31.255.255",
            "192.0.0.8",
            "192.88.99.1",
            "198.19.255.255",
            "239.255.255.250",
            "255.255.255.255",
        ] {
            assert!(blocked(ip), "{ip} must be blocked");
        }
    }

    #[test]
    fn public_ipv4_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.88.98.255",
            "192.88.100.0",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!blocked(ip), "{ip} must pass");
        }
    }

    #[test]
    fn public_ipv6_addresses_pass_and_the_edges_of_2001_23_hold() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "2001:4860::8888",
            "2001:200::1",
            "3fff:1000::1",
            "64:ff9b::808:808",
        ] {
            assert!(!blocked(ip), "{ip} must pass");
        }
        for ip in ["2001:1ff::1", "2001:1::1", "5f00::1", "4000::1", "1::"] {
            assert!(blocked(ip), "{ip} must be blocked");
        }
    }

    #[test]
    fn known_spellings_unwrap_to_their_ipv4_address() {
        for (text, v4) in [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:7f00:1", "127.0.0.1"),
            ("::127.0.0.1", "127.0.0.1"),
            ("64:ff9b::169.254.169.254", "169.254.169.254"),
            ("2002:a9fe:a9fe::1", "169.254.169.254"),
            // RFC 4380 §4's example: client 192.0.2.45 behind a NAT, server 65.54.227.120.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
        ] {
            let ip: IpAddr = text.parse().expect("test address");
            let refused = blocked_range(ip).unwrap_or_else(|| panic!("{text}"));
            let v4: Ipv4Addr = v4.parse().expect("test address");
            assert_eq!(refused.embedded.map(|(a, _)| a), Some(v4), "{text}");
        }
    }

    #[test]
    fn the_range_is_named() {
        let metadata = blocked_range(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)));
        assert!(metadata.is_some_and(|b| b.to_string().contains("metadata")));
        let mapped: IpAddr = "::ffff:127.0.0.1"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            blocked_range(mapped).map(|b| b.to_string()).as_deref(),
            Some("IPv4-mapped (::ffff:0.0.0.0/96) form of 127.0.0.1, a loopback (127.0.0.0/8)")
        );
    }

    fn embedding_row(embedding: Embedding, name: &str) -> Ipv6Net {
        SPECIAL_RANGES
            .iter()
            .find(|row| row.name == name)
            .and_then(|row| {
                matches!(
                    row.handling,
                    Handling::JudgeEmbedded(e) | Handling::RefuseNamingEmbedded(e) if e == embedding
                )
                .then(|| v6_net(row))
                .flatten()
            })
            .unwrap_or_else(|| panic!("no {name} row"))
    }

    fn refused_v4() -> impl Strategy<Value = Ipv4Addr> {
        let rows: Vec<Ipv4Net> = SPECIAL_RANGES
            .iter()
            .filter(|r| r.handling == Handling::Refuse)
            .filter_map(|r| match r.net {
                IpNet::V4(n) => Some(n),
                IpNet::V6(_) => None,
            })
            .collect();
        (prop::sample::select(rows), any::<u32>()).prop_map(|(net, bits)| {
            let host = bits & !u32::from(net.netmask());
            Ipv4Addr::from(u32::from(net.network()) | host)
        })
    }

    /// One property per embedded form: any refused IPv4 address, in that form, is refused and
    /// unwraps back to itself.
    fn check_form(embedding: Embedding, name: &str, v4: Ipv4Addr) -> Result<(), TestCaseError> {
        let net = embedding_row(embedding, name);
        let ip = embedding.embed(net, v4);
        prop_assert_eq!(embedding.extract(ip), v4);
        let refused = blocked_range(IpAddr::V6(ip));
        prop_assert!(refused.is_some(), "{}", ip);
        // `::0.0.0.1` is `::1`, refused by its own row rather than as an IPv4 form.
        if special_range(IpAddr::V6(ip)).is_some_and(|row| row.name == name) {
            prop_assert_eq!(refused.and_then(|b| b.embedded).map(|(a, _)| a), Some(v4));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn ipv4_mapped_forms_of_refused_addresses_are_refused(v4 in refused_v4()) {
            check_form(Embedding::Last32, "IPv4-mapped", v4)?;
        }

        #[test]
        fn ipv4_compatible_forms_of_refused_addresses_are_refused(v4 in refused_v4()) {
            check_form(Embedding::Last32, "IPv4-compatible, deprecated", v4)?;
        }

        #[test]
        fn nat64_forms_of_refused_addresses_are_refused(v4 in refused_v4()) {
            check_form(Embedding::Last32, "NAT64", v4)?;
        }

        #[test]
        fn local_use_nat64_forms_of_any_address_are_refused(v4 in any::<u32>(), high in any::<u16>()) {
            // The embedding depends on the local prefix length; the whole /48 is refused.
            let ip = Ipv6Addr::from((u128::from(0x0064_ff9b_0001u64) << 80) | (u128::from(high) << 32) | u128::from(v4));
            prop_assert!(blocked_range(IpAddr::V6(ip)).is_some(), "{}", ip);
        }

        #[test]
        fn sixtofour_forms_of_refused_addresses_are_refused(v4 in refused_v4(), subnet in any::<u16>(), iid in any::<u64>()) {
            check_form(Embedding::SixToFour, "6to4", v4)?;
            // Whatever subnet and interface id follow.
            let ip = Embedding::SixToFour.embed(embedding_row(Embedding::SixToFour, "6to4"), v4);
            let ip = Ipv6Addr::from(u128::from(ip) | (u128::from(subnet) << 64) | u128::from(iid));
            prop_assert!(blocked_range(IpAddr::V6(ip)).is_some(), "{}", ip);
        }

        #[test]
        fn teredo_forms_of_refused_addresses_are_refused(v4 in refused_v4(), server in any::<u32>(), flags_port in any::<u32>()) {
            check_form(Embedding::Teredo, "Teredo", v4)?;
            let ip = Embedding::Teredo.embed(embedding_row(Embedding::Teredo, "Teredo"), v4);
            let ip = Ipv6Addr::from(u128::from(ip) | (u128::from(server) << 64) | (u128::from(flags_port) << 32));
            let refused = blocked_range(IpAddr::V6(ip));
            prop_assert_eq!(refused.and_then(|b| b.embedded).map(|(a, _)| a), Some(v4));
        }
    }
}
