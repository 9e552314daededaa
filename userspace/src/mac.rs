//! MAC addresses: parsing, printing and the random locally administered ones endpoints get by default.
use std::{fmt, str::FromStr};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A random unicast, locally administered address (02:xx:…), as the kernel and Docker pick.
    pub fn random() -> Self {
        let mut bytes = [0u8; 6];
        // SAFETY: getrandom writes at most bytes.len() bytes into the buffer.
        let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        if filled != bytes.len() as isize {
            // getrandom cannot fail for 6 bytes once the pool is up; fall back to the clock just in case.
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            bytes.copy_from_slice(&nanos.as_nanos().to_le_bytes()[..6]);
        }
        bytes[0] = (bytes[0] & 0xfe) | 0x02;
        Mac(bytes)
    }

    /// A MAC from a link-layer address of six bytes (netlink's attributes); None for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Mac)
    }

    /// The all-zero MAC, which `bridge fdb` uses for the flood list.
    pub const ZERO: Mac = Mac([0; 6]);

    /// The MAC if an endpoint (or a static FDB entry) may own it: unicast and not all zero.
    pub fn require_unicast(self) -> Result<Self, Error> {
        let reason = if self == Mac::ZERO {
            "all-zero address"
        } else if self.0[0] & 1 == 1 {
            "multicast/broadcast address"
        } else {
            return Ok(self);
        };
        Err(Error::InvalidMac { text: self.to_string(), reason })
    }
}

impl FromStr for Mac {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in bytes.iter_mut() {
            let part = parts.next().ok_or_else(|| invalid(text, "expected six bytes"))?;
            if part.is_empty() || part.len() > 2 {
                return Err(invalid(text, HEX_BYTES));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid(text, HEX_BYTES))?;
        }
        if parts.next().is_some() {
            return Err(invalid(text, "expected six bytes"));
        }
        Ok(Mac(bytes))
    }
}

const HEX_BYTES: &str = "expected hex bytes like 02:00:5e:10:00:01";

fn invalid(text: &str, reason: &'static str) -> Error {
    Error::InvalidMac { text: text.into(), reason }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl From<Mac> for String {
    fn from(mac: Mac) -> String {
        mac.to_string()
    }
}

impl TryFrom<String> for Mac {
    type Error = Error;
    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let mac: Mac = "02:AB:0c:00:00:01".parse().unwrap();
        assert_eq!(mac.0, [2, 0xab, 0x0c, 0, 0, 1]);
        assert_eq!(mac.to_string(), "02:ab:0c:00:00:01");
    }

    #[test]
    fn rejects_bad_text_and_non_unicast() {
        for bad in ["", "02:00:00:00:00", "02:00:00:00:00:00:00", "02:00:00:00:00:zz", "020:00:00:00:00:01"] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        for not_unicast in ["00:00:00:00:00:00", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff"] {
            assert!(not_unicast.parse::<Mac>().unwrap().require_unicast().is_err(), "{not_unicast}");
        }
        assert!("02:00:5e:00:00:01".parse::<Mac>().unwrap().require_unicast().is_ok());
    }

    #[test]
    fn random_is_local_unicast() {
        for _ in 0..32 {
            let mac = Mac::random();
            assert_eq!(mac.0[0] & 0x03, 0x02);
        }
    }
}
