//! Addresses with prefix length, as `ip addr add` takes them (10.0.0.2/24, fd00::2/64).
use std::{fmt, net::IpAddr, str::FromStr};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidCidr(text.into());
        let (ip, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let ip: IpAddr = ip.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > max || ip.is_unspecified() || ip.is_multicast() {
            return Err(invalid());
        }
        Ok(Cidr { ip, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6() {
        assert_eq!("10.1.2.3/24".parse::<Cidr>().unwrap().to_string(), "10.1.2.3/24");
        assert_eq!("fd00::2/64".parse::<Cidr>().unwrap().prefix, 64);
    }

    #[test]
    fn rejects_bad_ones() {
        for bad in ["10.1.2.3", "10.1.2.3/33", "fd00::1/129", "0.0.0.0/0", "224.0.0.1/4", "x/24", "10.0.0.1/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
