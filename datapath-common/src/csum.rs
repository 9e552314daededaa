//! Internet checksums (RFC 1071), written once: a header's or message's from scratch, and the incremental update
//! for one changed 16-bit word (RFC 1624). One's-complement sums do not depend on byte order, so the words may be
//! summed as big-endian values (for fields built here) or as they lie in memory (for fields patched in place).
//! Loops have constant bounds, so the verifier sees them end. Shared: the datapath builds answers and headers with
//! them, userspace the multicast queries it sends into endpoints.

/// Adds the 16-bit big-endian words of `bytes` (an even number of them) to `sum`.
#[inline(always)]
pub fn add_words<const N: usize>(mut sum: u32, bytes: &[u8; N]) -> u32 {
    for word in 0..N / 2 {
        sum += u16::from_be_bytes([bytes[2 * word], bytes[2 * word + 1]]) as u32;
    }
    sum
}

/// Folds the carries of a 32-bit sum into 16 bits (two rounds: a sum of fewer than 65 536 words needs no more).
#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum field for a sum of big-endian words, in network byte order.
#[inline(always)]
pub fn finish(sum: u32) -> [u8; 2] {
    (!fold(sum)).to_be_bytes()
}

/// The IPv4 header checksum of `header` (its checksum field zero).
#[inline(always)]
pub fn ipv4_header<const N: usize>(header: &[u8; N]) -> [u8; 2] {
    finish(add_words(0, header))
}

/// An upper-layer checksum over IPv6 (RFC 8200 section 8.1): the pseudo-header of `src`, `dst`, the message's
/// length and `next_header`, then `message` (its checksum field zero).
#[inline(always)]
pub fn ipv6_upper_layer<const N: usize>(src: &[u8; 16], dst: &[u8; 16], next_header: u8, message: &[u8; N]) -> [u8; 2] {
    let pseudo = add_words(add_words(0, src), dst) + N as u32 + next_header as u32;
    finish(add_words(pseudo, message))
}

/// RFC 1624 eq. 3, HC' = ~(~HC + ~m + m'): the checksum `check` after one 16-bit word changed from `old` to `new`.
/// All three as they lie in memory (any byte order, the same for all).
#[inline(always)]
pub fn replace(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check) as u32 + (!old) as u32 + new as u32)
}
