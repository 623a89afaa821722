//! DHCP Unique Identifiers (RFC 8415 s.11) with hex and colon-hex forms.

use std::fmt;
use std::str::FromStr;

/// Largest DUID: 2 octets of type and at most 128 of identifier (RFC 8415 s.11.1).
pub const MAX_DUID_LEN: usize = 130;

/// A DUID, kept as its wire octets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Duid(Vec<u8>);

/// The structure of a DUID by type (RFC 8415 s.11.2-11.5, RFC 6355).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuidKind<'a> {
    /// DUID-LLT (1): hardware type, time (seconds since 2000-01-01), link-layer address.
    Llt {
        /// IANA hardware type (1 = Ethernet).
        hw_type: u16,
        /// Seconds since midnight UTC, 2000-01-01, modulo 2^32.
        time: u32,
        /// Link-layer address.
        lladdr: &'a [u8],
    },
    /// DUID-EN (2): enterprise number and identifier.
    En {
        /// IANA private enterprise number.
        enterprise: u32,
        /// Vendor-assigned identifier.
        id: &'a [u8],
    },
    /// DUID-LL (3): hardware type and link-layer address.
    Ll {
        /// IANA hardware type.
        hw_type: u16,
        /// Link-layer address.
        lladdr: &'a [u8],
    },
    /// DUID-UUID (4): a 16-octet UUID (RFC 6355).
    Uuid(&'a [u8; 16]),
    /// Any other type, or a known type whose body has the wrong size.
    Other {
        /// The DUID type field (0 if the DUID is shorter than 2 octets).
        duid_type: u16,
        /// The octets after the type.
        body: &'a [u8],
    },
}

/// Why a DUID text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DuidParseError {
    /// The text has no hex digits.
    #[error("empty DUID")]
    Empty,
    /// A character that is not a hex digit or separator.
    #[error("invalid character {0:?} in DUID")]
    BadChar(char),
    /// An odd number of hex digits, or a colon group that is not two digits.
    #[error("DUID hex must be whole octets (two digits each)")]
    OddDigits,
    /// Longer than [`MAX_DUID_LEN`].
    #[error("DUID of {0} octets is longer than the 130 allowed")]
    TooLong(usize),
}

impl Duid {
    /// A DUID from its wire octets. No check is made: use [`Duid::parse_wire`] for wire input.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Duid(bytes.into())
    }

    /// A DUID from wire octets, checked for 1..=130 octets.
    pub fn parse_wire(bytes: &[u8]) -> Result<Self, super::ErrorKind> {
        check_duid_len(bytes.len())?;
        Ok(Duid(bytes.to_vec()))
    }

    /// The wire octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if the DUID has no octets (never for a decoded one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A DUID-LLT (RFC 8415 s.11.2).
    pub fn new_llt(hw_type: u16, time: u32, lladdr: &[u8]) -> Self {
        let mut v = Vec::with_capacity(8 + lladdr.len());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&hw_type.to_be_bytes());
        v.extend_from_slice(&time.to_be_bytes());
        v.extend_from_slice(lladdr);
        Duid(v)
    }

    /// A DUID-EN (RFC 8415 s.11.3).
    pub fn new_en(enterprise: u32, id: &[u8]) -> Self {
        let mut v = Vec::with_capacity(6 + id.len());
        v.extend_from_slice(&2u16.to_be_bytes());
        v.extend_from_slice(&enterprise.to_be_bytes());
        v.extend_from_slice(id);
        Duid(v)
    }

    /// A DUID-LL (RFC 8415 s.11.4).
    pub fn new_ll(hw_type: u16, lladdr: &[u8]) -> Self {
        let mut v = Vec::with_capacity(4 + lladdr.len());
        v.extend_from_slice(&3u16.to_be_bytes());
        v.extend_from_slice(&hw_type.to_be_bytes());
        v.extend_from_slice(lladdr);
        Duid(v)
    }

    /// A DUID-UUID (RFC 6355).
    pub fn new_uuid(uuid: [u8; 16]) -> Self {
        let mut v = Vec::with_capacity(18);
        v.extend_from_slice(&4u16.to_be_bytes());
        v.extend_from_slice(&uuid);
        Duid(v)
    }

    /// The DUID's structure by type.
    pub fn kind(&self) -> DuidKind<'_> {
        duid_kind(&self.0)
    }

    /// Lowercase hex, no separators (`000300010200...`).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Lowercase colon-separated hex (`00:03:00:01:...`).
    pub fn to_colon_hex(&self) -> String {
        let mut s = String::with_capacity(self.0.len() * 3);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

pub(crate) fn check_duid_len(len: usize) -> Result<(), super::ErrorKind> {
    if len == 0 || len > MAX_DUID_LEN {
        Err(super::ErrorKind::BadDuidLength(len))
    } else {
        Ok(())
    }
}

/// The structure of DUID octets by type.
pub fn duid_kind(b: &[u8]) -> DuidKind<'_> {
    if b.len() < 2 {
        return DuidKind::Other {
            duid_type: 0,
            body: b,
        };
    }
    let t = u16::from_be_bytes([b[0], b[1]]);
    let body = &b[2..];
    match t {
        1 if body.len() >= 6 => DuidKind::Llt {
            hw_type: u16::from_be_bytes([body[0], body[1]]),
            time: u32::from_be_bytes([body[2], body[3], body[4], body[5]]),
            lladdr: &body[6..],
        },
        2 if body.len() >= 4 => DuidKind::En {
            enterprise: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            id: &body[4..],
        },
        3 if body.len() >= 2 => DuidKind::Ll {
            hw_type: u16::from_be_bytes([body[0], body[1]]),
            lladdr: &body[2..],
        },
        4 => match <&[u8; 16]>::try_from(body) {
            Ok(u) => DuidKind::Uuid(u),
            Err(_) => DuidKind::Other { duid_type: t, body },
        },
        _ => DuidKind::Other { duid_type: t, body },
    }
}

/// Lowercase hex of `bytes`, no separators.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parse hex octets: plain (`0a0b`), colon-separated (`0a:0b`), or with a `0x` prefix.
///
/// Colon groups must be two digits each. Errors name the bad character.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, DuidParseError> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() {
        return Err(DuidParseError::Empty);
    }
    let digit = |c: char| c.to_digit(16).ok_or(DuidParseError::BadChar(c));
    let mut out = Vec::with_capacity(t.len() / 2);
    if t.contains(':') {
        for group in t.split(':') {
            let cs: Vec<char> = group.chars().collect();
            if cs.len() != 2 {
                if let Some(c) = cs.iter().find(|c| !c.is_ascii_hexdigit()) {
                    return Err(DuidParseError::BadChar(*c));
                }
                return Err(DuidParseError::OddDigits);
            }
            out.push((digit(cs[0])? << 4 | digit(cs[1])?) as u8);
        }
    } else {
        let cs: Vec<char> = t.chars().collect();
        if let Some(c) = cs.iter().find(|c| !c.is_ascii_hexdigit()) {
            return Err(DuidParseError::BadChar(*c));
        }
        if cs.len() % 2 != 0 {
            return Err(DuidParseError::OddDigits);
        }
        for pair in cs.chunks(2) {
            out.push((digit(pair[0])? << 4 | digit(pair[1])?) as u8);
        }
    }
    Ok(out)
}

impl FromStr for Duid {
    type Err = DuidParseError;

    /// Parse hex or colon-hex; the result must be 1 to 130 octets.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = parse_hex(s)?;
        if v.len() > MAX_DUID_LEN {
            return Err(DuidParseError::TooLong(v.len()));
        }
        Ok(Duid(v))
    }
}

impl fmt::Display for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duid({})", self.to_hex())
    }
}

impl serde::Serialize for Duid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Duid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let llt: Duid = "000100012a2b2c2d020000009901".parse().unwrap();
        assert_eq!(
            llt.kind(),
            DuidKind::Llt {
                hw_type: 1,
                time: 0x2a2b2c2d,
                lladdr: &[2, 0, 0, 0, 0x99, 1]
            }
        );
        let en: Duid = "0002000009bf0102030405060708".parse().unwrap();
        assert_eq!(
            en.kind(),
            DuidKind::En {
                enterprise: 2495,
                id: &[1, 2, 3, 4, 5, 6, 7, 8]
            }
        );
        let ll: Duid = "00:03:00:01:02:00:5e:00:00:02".parse().unwrap();
        assert_eq!(
            ll.kind(),
            DuidKind::Ll {
                hw_type: 1,
                lladdr: &[2, 0, 0x5e, 0, 0, 2]
            }
        );
        let uuid = Duid::new_uuid([7; 16]);
        assert_eq!(uuid.kind(), DuidKind::Uuid(&[7; 16]));
        let short_uuid = Duid::from_bytes(vec![0, 4, 1]);
        assert_eq!(
            short_uuid.kind(),
            DuidKind::Other {
                duid_type: 4,
                body: &[1]
            }
        );
        assert_eq!(
            Duid::from_bytes(vec![9]).kind(),
            DuidKind::Other {
                duid_type: 0,
                body: &[9]
            }
        );
    }

    #[test]
    fn constructors_match_parsed() {
        assert_eq!(
            Duid::new_llt(1, 0x2a2b2c2d, &[2, 0, 0, 0, 0x99, 1]).to_hex(),
            "000100012a2b2c2d020000009901"
        );
        assert_eq!(
            Duid::new_en(2495, &[1, 2, 3, 4, 5, 6, 7, 8]).to_hex(),
            "0002000009bf0102030405060708"
        );
        assert_eq!(
            Duid::new_ll(1, &[2, 0, 0x5e, 0, 0, 2]).to_colon_hex(),
            "00:03:00:01:02:00:5e:00:00:02"
        );
    }

    #[test]
    fn text_forms() {
        let d: Duid = "0x0003ABcd".parse().unwrap();
        assert_eq!(d.as_bytes(), &[0, 3, 0xab, 0xcd]);
        assert_eq!(d.to_hex(), "0003abcd");
        assert_eq!(d.to_colon_hex(), "00:03:ab:cd");
        assert_eq!("".parse::<Duid>(), Err(DuidParseError::Empty));
        assert_eq!("0x".parse::<Duid>(), Err(DuidParseError::Empty));
        assert_eq!("abc".parse::<Duid>(), Err(DuidParseError::OddDigits));
        assert_eq!("ab:c".parse::<Duid>(), Err(DuidParseError::OddDigits));
        assert_eq!("ab:cg".parse::<Duid>(), Err(DuidParseError::BadChar('g')));
        assert_eq!("zz".parse::<Duid>(), Err(DuidParseError::BadChar('z')));
        assert_eq!(
            "00".repeat(131).parse::<Duid>(),
            Err(DuidParseError::TooLong(131))
        );
    }

    #[test]
    fn wire_length_checked() {
        assert!(Duid::parse_wire(&[]).is_err());
        assert!(Duid::parse_wire(&[0; 131]).is_err());
        assert!(Duid::parse_wire(&[0; 130]).is_ok());
    }
}
