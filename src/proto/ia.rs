//! Identity associations in a client/server message, parsed strictly:
//! IA_NA with its IAADDRs (RFC 8415 s.21.4, s.21.6) and IA_PD with its
//! IAPREFIXes (RFC 8415 s.21.21, s.21.22).
//!
//! [`RawOption::parse`] leaves IA_NA and IA_PD raw (their options are not
//! walked by [`super::view::Options::validate`] either); the functions here
//! check the fixed part, walk the options inside, keep the addresses,
//! prefixes and STATUS_CODEs and validate every other option. A second
//! STATUS_CODE in one container is an [`ErrorKind::DuplicateOption`].

use super::consts::{OptionCode, StatusCode};
use super::error::{DecodeError, ErrorKind, Result};
use super::view::{be32, OptionView, Options, RawOption};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// One IAPREFIX option (26) of an IA_PD (RFC 8415 s.21.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedPrefix {
    /// The prefix and its length, as sent: host bits past the prefix length
    /// are kept (see [`DelegatedPrefix::has_host_bits`]).
    pub prefix: Ipv6Net,
    /// preferred-lifetime, seconds (0xffffffff is infinity, RFC 8415 s.7.7).
    pub preferred_lifetime: u32,
    /// valid-lifetime, seconds (0 in a REPLY: the prefix is no longer valid,
    /// RFC 8415 s.18.3.4).
    pub valid_lifetime: u32,
    /// The STATUS_CODE inside the IAPREFIX, if any.
    pub status: Option<StatusCode>,
}

impl DelegatedPrefix {
    /// True when the prefix has bits set past its length (sent that way;
    /// a route would be for the truncated prefix).
    pub fn has_host_bits(&self) -> bool {
        self.prefix.addr() != self.prefix.network()
    }

    /// False when the preferred lifetime exceeds the valid lifetime: RFC 8415
    /// s.21.22 has the client discard such a prefix.
    pub fn lifetimes_consistent(&self) -> bool {
        self.preferred_lifetime <= self.valid_lifetime
    }
}

/// One IA_PD option (25) (RFC 8415 s.21.21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPd {
    /// The IAID.
    pub iaid: u32,
    /// T1, seconds.
    pub t1: u32,
    /// T2, seconds.
    pub t2: u32,
    /// The STATUS_CODE inside the IA_PD, if any (absent means Success,
    /// RFC 8415 s.21.13; NoPrefixAvail and NoBinding are what a REPLY uses).
    pub status: Option<StatusCode>,
    /// Every IAPREFIX in it, in wire order.
    pub prefixes: Vec<DelegatedPrefix>,
}

impl IaPd {
    /// False when T1 exceeds T2 and both are non-zero: RFC 8415 s.21.21 has
    /// the client discard such an IA_PD.
    pub fn timers_consistent(&self) -> bool {
        self.t1 == 0 || self.t2 == 0 || self.t1 <= self.t2
    }
}

/// One IAADDR option (5) of an IA_NA (RFC 8415 s.21.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaAddress {
    /// The address.
    pub address: Ipv6Addr,
    /// preferred-lifetime, seconds.
    pub preferred_lifetime: u32,
    /// valid-lifetime, seconds.
    pub valid_lifetime: u32,
    /// The STATUS_CODE inside the IAADDR, if any.
    pub status: Option<StatusCode>,
}

/// One IA_NA option (3) (RFC 8415 s.21.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaNa {
    /// The IAID.
    pub iaid: u32,
    /// T1, seconds.
    pub t1: u32,
    /// T2, seconds.
    pub t2: u32,
    /// The STATUS_CODE inside the IA_NA, if any.
    pub status: Option<StatusCode>,
    /// Every IAADDR in it, in wire order.
    pub addresses: Vec<IaAddress>,
}

/// The error for a second `raw` where only one may be.
#[cold]
pub fn duplicate(raw: &RawOption<'_>) -> DecodeError {
    let code = raw.option_code();
    DecodeError::new(raw.offset, Some(code), ErrorKind::DuplicateOption(code))
}

/// The status code of a STATUS_CODE option (RFC 8415 s.21.13).
fn status_code(raw: &RawOption<'_>) -> Result<StatusCode> {
    match raw.parse()? {
        OptionView::StatusCode { code, .. } => Ok(code),
        // STATUS_CODE (13) always parses as StatusCode.
        _ => Err(duplicate(raw)),
    }
}

/// Set `slot` to the status of the STATUS_CODE `raw`, or fail if it was set
/// already (at most one per container, RFC 8415 s.21.13).
pub fn once_status(slot: &mut Option<StatusCode>, raw: &RawOption<'_>) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(raw));
    }
    *slot = Some(status_code(raw)?);
    Ok(())
}

/// The fixed part of an IA_NA or IA_PD: IAID, T1, T2 (12 octets), and the
/// options after it.
fn ia_fixed<'a>(raw: &RawOption<'a>) -> Result<([u32; 3], Options<'a>)> {
    const FIXED: usize = 12;
    let d = raw.data;
    if d.len() < FIXED {
        return Err(DecodeError::new(
            raw.offset,
            Some(raw.option_code()),
            ErrorKind::TooShort {
                len: d.len(),
                min: FIXED,
            },
        ));
    }
    Ok((
        [be32(&d[0..4]), be32(&d[4..8]), be32(&d[8..12])],
        raw.nested(FIXED)?,
    ))
}

/// One IA_PD (RFC 8415 s.21.21): IAID, T1, T2 (12 octets), then IA_PD-options,
/// of which IAPREFIX (any number) and STATUS_CODE (at most one) are kept and
/// every other option is validated.
pub fn ia_pd(raw: &RawOption<'_>) -> Result<IaPd> {
    let ([iaid, t1, t2], opts) = ia_fixed(raw)?;
    let mut ia = IaPd {
        iaid,
        t1,
        t2,
        status: None,
        prefixes: Vec::new(),
    };
    for inner in opts.iter() {
        let inner = inner?;
        match inner.option_code() {
            OptionCode::StatusCode => once_status(&mut ia.status, &inner)?,
            OptionCode::IaPrefix => ia.prefixes.push(ia_prefix(&inner)?),
            _ => inner.validate()?,
        }
    }
    Ok(ia)
}

/// The STATUS_CODE among validated IAaddr- or IAprefix-options.
fn inner_status(options: Options<'_>) -> Result<Option<StatusCode>> {
    options.validate()?;
    let mut status = None;
    for o in options.iter() {
        let o = o?;
        if o.option_code() == OptionCode::StatusCode {
            once_status(&mut status, &o)?;
        }
    }
    Ok(status)
}

/// One IAPREFIX (RFC 8415 s.21.22): lifetimes, prefix-length and prefix
/// (25 octets), then IAprefix-options, all validated.
pub fn ia_prefix(raw: &RawOption<'_>) -> Result<DelegatedPrefix> {
    let OptionView::IaPrefix {
        preferred_lifetime,
        valid_lifetime,
        prefix,
        options,
    } = raw.parse()?
    else {
        return Err(not_a(raw, OptionCode::IaPrefix));
    };
    Ok(DelegatedPrefix {
        prefix,
        preferred_lifetime,
        valid_lifetime,
        status: inner_status(options)?,
    })
}

/// One IA_NA (RFC 8415 s.21.4): IAID, T1, T2 (12 octets), then IA_NA-options,
/// of which IAADDR (any number) and STATUS_CODE (at most one) are kept and
/// every other option is validated.
pub fn ia_na(raw: &RawOption<'_>) -> Result<IaNa> {
    let ([iaid, t1, t2], opts) = ia_fixed(raw)?;
    let mut ia = IaNa {
        iaid,
        t1,
        t2,
        status: None,
        addresses: Vec::new(),
    };
    for inner in opts.iter() {
        let inner = inner?;
        match inner.option_code() {
            OptionCode::StatusCode => once_status(&mut ia.status, &inner)?,
            OptionCode::IaAddr => ia.addresses.push(ia_addr(&inner)?),
            _ => inner.validate()?,
        }
    }
    Ok(ia)
}

/// One IAADDR (RFC 8415 s.21.6): address and lifetimes (24 octets), then
/// IAaddr-options, all validated.
pub fn ia_addr(raw: &RawOption<'_>) -> Result<IaAddress> {
    let OptionView::IaAddr {
        address,
        preferred_lifetime,
        valid_lifetime,
        options,
    } = raw.parse()?
    else {
        return Err(not_a(raw, OptionCode::IaAddr));
    };
    Ok(IaAddress {
        address,
        preferred_lifetime,
        valid_lifetime,
        status: inner_status(options)?,
    })
}

/// A call on an option of another code (a caller's mistake, reported rather
/// than a panic).
#[cold]
fn not_a(raw: &RawOption<'_>, want: OptionCode) -> DecodeError {
    DecodeError::new(
        raw.offset,
        Some(raw.option_code()),
        ErrorKind::WrongOption {
            expected: want,
            found: raw.option_code(),
        },
    )
}

#[cfg(test)]
#[path = "ia_tests.rs"]
mod tests;
