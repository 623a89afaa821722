//! Borrowed, zero-copy views over DHCPv6 messages and options.
//!
//! This is the fast path: nothing here allocates. A view is made from a byte
//! slice by a checked constructor; once that check has passed, no accessor
//! panics. Options are walked lazily with [`Options`], which yields an error
//! (never a panic, never a silent stop) for an option whose header is cut short
//! or whose length overruns its container. [`RawOption::parse`] turns one
//! option into a typed [`OptionView`], checking the option's own fixed part;
//! [`Options::validate`] walks a whole option tree and checks everything, so
//! that code which has validated a message can then walk it infallibly.
//!
//! Offsets in errors are absolute: they count from the start of the buffer
//! handed to the outermost constructor.

use super::consts::{MessageType, OptionCode, QueryType, StatusCode};
use super::duid::check_duid_len;
use super::error::{DecodeError, ErrorKind, Result};
use super::ids::Xid;
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// Deepest nesting of messages and container options accepted. The relay hop
/// limit is 32 (RFC 8415 s.7.6, HOP_COUNT_LIMIT); a Leasequery reply adds a
/// few levels (CLIENT_DATA, LQ_RELAY_DATA, IAPREFIX) around a relay chain.
pub const MAX_NESTING: usize = 48;

/// Field layout of the fixed headers (RFC 8415 s.8 and s.9).
pub mod field {
    use std::ops::Range;
    /// msg-type of any message.
    pub const MSG_TYPE: usize = 0;
    /// transaction-id of a client/server message.
    pub const XID: Range<usize> = 1..4;
    /// Options of a client/server message start here.
    pub const CLIENT_OPTIONS: usize = 4;
    /// hop-count of a relay message.
    pub const HOP_COUNT: usize = 1;
    /// link-address of a relay message.
    pub const LINK_ADDRESS: Range<usize> = 2..18;
    /// peer-address of a relay message.
    pub const PEER_ADDRESS: Range<usize> = 18..34;
    /// Options of a relay message start here.
    pub const RELAY_OPTIONS: usize = 34;
    /// An option header: code (2) and length (2).
    pub const OPTION_HEADER: usize = 4;
}

#[inline]
pub(crate) fn ipv6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Whether options passed full validation. An octet rather than a `bool`: a
/// `bool` would give the views a niche, and the compiler then copies them
/// (and `Option`s of them) in odd-sized pieces that stall on store
/// forwarding (about 10% of the fast path, measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked(u8);

impl Checked {
    const NO: Checked = Checked(0);
    const YES: Checked = Checked(1);
}

/// A sequence of options not yet walked: a byte slice, where it sits in the
/// outermost buffer, and how deeply it is nested.
///
/// Options reached from a view made by [`MessageView::parse_validated`]
/// remember that they were checked, so that validating them again (as
/// [`crate::proto::ClientData::parse`] does) costs nothing. Equality ignores that mark.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    buf: &'a [u8],
    base: usize,
    depth: usize,
    /// Set only on options inside a message that passed full validation.
    validated: Checked,
}

impl PartialEq for Options<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.buf, self.base, self.depth) == (other.buf, other.base, other.depth)
    }
}

impl Eq for Options<'_> {}

impl<'a> Options<'a> {
    /// Options in `buf`, which starts at absolute offset `base`, at nesting depth `depth`.
    #[inline]
    pub fn new(buf: &'a [u8], base: usize, depth: usize) -> Self {
        Options {
            buf,
            base,
            depth,
            validated: Checked::NO,
        }
    }

    /// The raw octets of the option sequence.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Absolute offset of the first option.
    pub fn offset(&self) -> usize {
        self.base
    }

    /// The options in octets `start..end` of this sequence (which must fall on
    /// option boundaries to be meaningful), at the same offset, depth and
    /// validation state. Out-of-range bounds give an empty sequence.
    pub(crate) fn slice(&self, start: usize, end: usize) -> Options<'a> {
        Options {
            buf: self.buf.get(start..end).unwrap_or_default(),
            base: self.base + start,
            ..*self
        }
    }

    /// Walk the options, yielding each one or the error that stops the walk.
    #[inline]
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter {
            opts: *self,
            pos: 0,
            done: false,
        }
    }

    /// Check every option, recursively: lengths, fixed fields, nested messages.
    pub fn validate(&self) -> Result<()> {
        if self.validated == Checked::YES {
            return Ok(());
        }
        for raw in self.iter() {
            raw?.validate()?;
        }
        Ok(())
    }

    /// The first option with this code, with its typed view. Errors from the
    /// walk up to it are returned.
    pub fn find(&self, code: OptionCode) -> Result<Option<OptionView<'a>>> {
        let want = u16::from(code);
        for raw in self.iter() {
            let raw = raw?;
            if raw.code == want {
                return raw.parse().map(Some);
            }
        }
        Ok(None)
    }

    /// Walk options that are known to be valid (after [`Options::validate`]
    /// succeeded): errors are skipped, so this never fails.
    pub fn valid(&self) -> impl Iterator<Item = OptionView<'a>> + 'a {
        self.iter()
            .filter_map(|r| r.ok())
            .filter_map(|r| r.parse().ok())
    }
}

/// Iterator over the options of an [`Options`]; stops after the first error.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    opts: Options<'a>,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.opts.buf.len() {
            return None;
        }
        let rest = &self.opts.buf[self.pos..];
        let offset = self.opts.base + self.pos;
        if rest.len() < field::OPTION_HEADER {
            self.done = true;
            return Some(Err(DecodeError::new(
                offset,
                None,
                ErrorKind::Truncated {
                    needed: field::OPTION_HEADER,
                    available: rest.len(),
                },
            )));
        }
        let code = be16(&rest[0..2]);
        let len = be16(&rest[2..4]) as usize;
        let available = rest.len() - field::OPTION_HEADER;
        if len > available {
            self.done = true;
            return Some(Err(DecodeError::new(
                offset,
                Some(code.into()),
                ErrorKind::OptionOverrun { len, available },
            )));
        }
        let data = &rest[field::OPTION_HEADER..field::OPTION_HEADER + len];
        self.pos += field::OPTION_HEADER + len;
        Some(Ok(RawOption {
            code,
            data,
            offset,
            depth: self.opts.depth,
            validated: self.opts.validated,
        }))
    }
}

/// One option whose header has been checked: code, body, and position.
/// Made by [`Options::iter`]. Equality ignores whether it was validated.
#[derive(Debug, Clone, Copy)]
pub struct RawOption<'a> {
    /// The option-code.
    pub code: u16,
    /// The option body (option-len octets).
    pub data: &'a [u8],
    /// Absolute offset of the option header.
    pub offset: usize,
    /// Nesting depth of the sequence this option belongs to.
    pub depth: usize,
    /// Inside a message that passed full validation.
    validated: Checked,
}

impl PartialEq for RawOption<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.code, self.data, self.offset, self.depth)
            == (other.code, other.data, other.offset, other.depth)
    }
}

impl Eq for RawOption<'_> {}

/// A typed, borrowed view of one option. Containers hold unwalked [`Options`]
/// or a [`MessageView`]; their own fixed part has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionView<'a> {
    /// OPTION_CLIENTID: a DUID.
    ClientId(&'a [u8]),
    /// OPTION_SERVERID: a DUID.
    ServerId(&'a [u8]),
    /// OPTION_IAADDR (RFC 8415 s.21.6).
    IaAddr {
        /// The address.
        address: Ipv6Addr,
        /// Preferred lifetime, seconds.
        preferred_lifetime: u32,
        /// Valid lifetime, seconds.
        valid_lifetime: u32,
        /// IAaddr-options.
        options: Options<'a>,
    },
    /// OPTION_IAPREFIX (RFC 8415 s.21.22).
    IaPrefix {
        /// Preferred lifetime, seconds.
        preferred_lifetime: u32,
        /// Valid lifetime, seconds.
        valid_lifetime: u32,
        /// The prefix, as sent (host bits are kept).
        prefix: Ipv6Net,
        /// IAprefix-options.
        options: Options<'a>,
    },
    /// OPTION_ORO: requested option codes, two octets each (body checked to be even).
    Oro(&'a [u8]),
    /// OPTION_RELAY_MSG: a whole DHCPv6 message.
    RelayMsg(MessageView<'a>),
    /// OPTION_STATUS_CODE (RFC 8415 s.21.13).
    StatusCode {
        /// The status.
        code: StatusCode,
        /// The status message (UTF-8 by the RFC; kept as octets).
        message: &'a [u8],
    },
    /// OPTION_INTERFACE_ID: opaque.
    InterfaceId(&'a [u8]),
    /// OPTION_REMOTE_ID (RFC 4649): the whole body is `enterprise` then `id`.
    RemoteId {
        /// The whole option body (enterprise-number and remote-id).
        body: &'a [u8],
        /// Enterprise number.
        enterprise: u32,
        /// The remote-id.
        id: &'a [u8],
    },
    /// OPTION_LQ_QUERY (RFC 5007 s.4.1.2.1).
    LqQuery {
        /// The query type.
        query_type: QueryType,
        /// The link-address (:: for none).
        link_address: Ipv6Addr,
        /// Query-options.
        options: Options<'a>,
    },
    /// OPTION_CLIENT_DATA (RFC 5007 s.4.1.2.2).
    ClientData(Options<'a>),
    /// OPTION_CLT_TIME (RFC 5007 s.4.1.2.3): seconds since the client was last heard from.
    CltTime(u32),
    /// OPTION_LQ_RELAY_DATA (RFC 5007 s.4.1.2.4).
    LqRelayData {
        /// The peer-address field.
        peer_address: Ipv6Addr,
        /// The relayed message (always a relay message).
        message: MessageView<'a>,
    },
    /// OPTION_LQ_CLIENT_LINK (RFC 5007 s.4.1.2.5): link addresses (body a multiple of 16).
    LqClientLink(&'a [u8]),
    /// OPTION_RELAY_ID (RFC 5460 s.5.4.1): a DUID.
    RelayId(&'a [u8]),
    /// Any other option, raw.
    Unknown {
        /// The option-code.
        code: u16,
        /// The body.
        data: &'a [u8],
    },
}

impl<'a> RawOption<'a> {
    /// The option code as an enum.
    pub fn option_code(&self) -> OptionCode {
        self.code.into()
    }

    /// Absolute offset of the option body.
    #[inline]
    pub fn body_offset(&self) -> usize {
        self.offset + field::OPTION_HEADER
    }

    #[cold]
    fn err(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(self.offset, Some(self.code.into()), kind)
    }

    #[inline]
    fn exact(&self, expected: usize) -> Result<()> {
        if self.data.len() != expected {
            return Err(self.err(ErrorKind::BadLength {
                len: self.data.len(),
                expected,
            }));
        }
        Ok(())
    }

    #[inline]
    fn at_least(&self, min: usize) -> Result<()> {
        if self.data.len() < min {
            return Err(self.err(ErrorKind::TooShort {
                len: self.data.len(),
                min,
            }));
        }
        Ok(())
    }

    #[inline]
    fn duid(&self) -> Result<&'a [u8]> {
        check_duid_len(self.data.len()).map_err(|k| self.err(k))?;
        Ok(self.data)
    }

    #[inline]
    pub(crate) fn nested(&self, skip: usize) -> Result<Options<'a>> {
        let depth = self.depth + 1;
        if depth > MAX_NESTING {
            return Err(self.err(ErrorKind::TooDeep));
        }
        Ok(Options {
            buf: &self.data[skip..],
            base: self.body_offset() + skip,
            depth,
            validated: self.validated,
        })
    }

    fn multiple_of(&self, multiple: usize) -> Result<()> {
        if self.data.len() % multiple != 0 {
            return Err(self.err(ErrorKind::NotMultiple {
                len: self.data.len(),
                multiple,
            }));
        }
        Ok(())
    }

    /// IAPREFIX prefix-length, checked; the body must have its 25 octets.
    fn prefix_len(&self) -> Result<u8> {
        let plen = self.data[8];
        if plen > 128 {
            return Err(DecodeError::new(
                self.body_offset() + 8,
                Some(self.code.into()),
                ErrorKind::BadPrefixLength(plen),
            ));
        }
        Ok(plen)
    }

    /// OPTION_RELAY_MSG: the message it holds, header checked.
    fn relay_msg(&self) -> Result<MessageView<'a>> {
        let opts = self.nested(0)?;
        let m = MessageView::parse_at(self.data, opts.base, opts.depth)?;
        Ok(m.mark_validated(opts.validated))
    }

    /// OPTION_LQ_RELAY_DATA: the relay message after the peer-address, header
    /// checked and required to be RELAY-FORW or RELAY-REPL.
    pub(crate) fn lq_relay_message(&self) -> Result<MessageView<'a>> {
        self.at_least(16 + field::RELAY_OPTIONS)?;
        let opts = self.nested(16)?;
        let message = MessageView::parse_at(&self.data[16..], opts.base, opts.depth)?
            .mark_validated(opts.validated);
        if !message.msg_type().is_relay() {
            return Err(DecodeError::new(
                opts.base,
                Some(self.code.into()),
                ErrorKind::NotRelayMessage(message.msg_type().into()),
            ));
        }
        Ok(message)
    }

    /// Check this option and everything nested in it, recursively. Accepts
    /// and rejects exactly what [`RawOption::parse`] followed by
    /// [`OptionView::validate`] does, with the same error, but builds no view
    /// (the fast path of [`Options::validate`]).
    pub fn validate(&self) -> Result<()> {
        if self.validated == Checked::YES {
            return Ok(());
        }
        match OptionCode::from(self.code) {
            OptionCode::ClientId | OptionCode::ServerId | OptionCode::RelayId => {
                self.duid()?;
            }
            OptionCode::IaAddr => {
                self.at_least(24)?;
                self.nested(24)?.validate()?;
            }
            OptionCode::IaPrefix => {
                self.at_least(25)?;
                self.prefix_len()?;
                self.nested(25)?.validate()?;
            }
            OptionCode::Oro => self.multiple_of(2)?,
            OptionCode::RelayMsg => self.relay_msg()?.options().validate()?,
            OptionCode::StatusCode => self.at_least(2)?,
            OptionCode::RemoteId => self.at_least(4)?,
            OptionCode::LqQuery => {
                self.at_least(17)?;
                self.nested(17)?.validate()?;
            }
            OptionCode::ClientData => self.nested(0)?.validate()?,
            OptionCode::CltTime => self.exact(4)?,
            OptionCode::LqRelayData => self.lq_relay_message()?.options().validate()?,
            OptionCode::LqClientLink => self.multiple_of(16)?,
            OptionCode::InterfaceId
            | OptionCode::IaNa
            | OptionCode::IaPd
            | OptionCode::Unknown(_) => {}
        }
        Ok(())
    }

    /// Check this option's fixed part and give its typed view. Nested options
    /// are not walked here (see [`OptionView::validate`]).
    #[inline]
    pub fn parse(&self) -> Result<OptionView<'a>> {
        let d = self.data;
        Ok(match OptionCode::from(self.code) {
            OptionCode::ClientId => OptionView::ClientId(self.duid()?),
            OptionCode::ServerId => OptionView::ServerId(self.duid()?),
            OptionCode::RelayId => OptionView::RelayId(self.duid()?),
            OptionCode::IaAddr => {
                self.at_least(24)?;
                OptionView::IaAddr {
                    address: ipv6(&d[0..16]),
                    preferred_lifetime: be32(&d[16..20]),
                    valid_lifetime: be32(&d[20..24]),
                    options: self.nested(24)?,
                }
            }
            OptionCode::IaPrefix => {
                self.at_least(25)?;
                let plen = self.prefix_len()?;
                let prefix = Ipv6Net::new(ipv6(&d[9..25]), plen).map_err(|_| {
                    DecodeError::new(
                        self.body_offset() + 8,
                        Some(self.code.into()),
                        ErrorKind::BadPrefixLength(plen),
                    )
                })?;
                OptionView::IaPrefix {
                    preferred_lifetime: be32(&d[0..4]),
                    valid_lifetime: be32(&d[4..8]),
                    prefix,
                    options: self.nested(25)?,
                }
            }
            OptionCode::Oro => {
                self.multiple_of(2)?;
                OptionView::Oro(d)
            }
            OptionCode::RelayMsg => OptionView::RelayMsg(self.relay_msg()?),
            OptionCode::StatusCode => {
                self.at_least(2)?;
                OptionView::StatusCode {
                    code: be16(&d[0..2]).into(),
                    message: &d[2..],
                }
            }
            OptionCode::InterfaceId => OptionView::InterfaceId(d),
            OptionCode::RemoteId => {
                self.at_least(4)?;
                OptionView::RemoteId {
                    body: d,
                    enterprise: be32(&d[0..4]),
                    id: &d[4..],
                }
            }
            OptionCode::LqQuery => {
                self.at_least(17)?;
                OptionView::LqQuery {
                    query_type: d[0].into(),
                    link_address: ipv6(&d[1..17]),
                    options: self.nested(17)?,
                }
            }
            OptionCode::ClientData => OptionView::ClientData(self.nested(0)?),
            OptionCode::CltTime => {
                self.exact(4)?;
                OptionView::CltTime(be32(d))
            }
            OptionCode::LqRelayData => OptionView::LqRelayData {
                message: self.lq_relay_message()?,
                peer_address: ipv6(&d[0..16]),
            },
            OptionCode::LqClientLink => {
                self.multiple_of(16)?;
                OptionView::LqClientLink(d)
            }
            OptionCode::IaNa | OptionCode::IaPd | OptionCode::Unknown(_) => OptionView::Unknown {
                code: self.code,
                data: d,
            },
        })
    }
}

impl<'a> OptionView<'a> {
    /// The option code of this view.
    pub fn code(&self) -> OptionCode {
        match self {
            OptionView::ClientId(_) => OptionCode::ClientId,
            OptionView::ServerId(_) => OptionCode::ServerId,
            OptionView::IaAddr { .. } => OptionCode::IaAddr,
            OptionView::IaPrefix { .. } => OptionCode::IaPrefix,
            OptionView::Oro(_) => OptionCode::Oro,
            OptionView::RelayMsg(_) => OptionCode::RelayMsg,
            OptionView::StatusCode { .. } => OptionCode::StatusCode,
            OptionView::InterfaceId(_) => OptionCode::InterfaceId,
            OptionView::RemoteId { .. } => OptionCode::RemoteId,
            OptionView::LqQuery { .. } => OptionCode::LqQuery,
            OptionView::ClientData(_) => OptionCode::ClientData,
            OptionView::CltTime(_) => OptionCode::CltTime,
            OptionView::LqRelayData { .. } => OptionCode::LqRelayData,
            OptionView::LqClientLink(_) => OptionCode::LqClientLink,
            OptionView::RelayId(_) => OptionCode::RelayId,
            OptionView::Unknown { code, .. } => (*code).into(),
        }
    }

    /// Check everything nested inside this option.
    pub fn validate(&self) -> Result<()> {
        match self {
            OptionView::IaAddr { options, .. }
            | OptionView::IaPrefix { options, .. }
            | OptionView::LqQuery { options, .. }
            | OptionView::ClientData(options) => options.validate(),
            OptionView::RelayMsg(m) | OptionView::LqRelayData { message: m, .. } => {
                m.options().validate()
            }
            _ => Ok(()),
        }
    }
}

/// A borrowed view of one DHCPv6 message whose fixed header has been checked.
/// Equality ignores whether its options were validated.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    buf: &'a [u8],
    base: usize,
    depth: usize,
    /// Set only by [`MessageView::parse_validated`] (and on views nested in such a message).
    validated: Checked,
}

impl PartialEq for MessageView<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.buf, self.base, self.depth) == (other.buf, other.base, other.depth)
    }
}

impl Eq for MessageView<'_> {}

impl<'a> MessageView<'a> {
    /// View a whole message (the body of one TCP frame); checks the fixed header only.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        Self::parse_at(buf, 0, 0)
    }

    /// View a whole message and check every option in it, recursively.
    pub fn parse_validated(buf: &'a [u8]) -> Result<Self> {
        let m = Self::parse(buf)?;
        m.options().validate()?;
        Ok(m.mark_validated(Checked::YES))
    }

    /// The same view, marked as validated or not (only ever set to
    /// [`Checked::YES`] from a successful full validation).
    /// successful full validation).
    fn mark_validated(mut self, validated: Checked) -> Self {
        self.validated = validated;
        self
    }

    /// View a message that sits at absolute offset `base`, nested `depth` deep.
    pub fn parse_at(buf: &'a [u8], base: usize, depth: usize) -> Result<Self> {
        let needed = match buf.first() {
            None => field::CLIENT_OPTIONS,
            Some(&t) if MessageType::from(t).is_relay() => field::RELAY_OPTIONS,
            Some(_) => field::CLIENT_OPTIONS,
        };
        if buf.len() < needed {
            return Err(DecodeError::new(
                base,
                None,
                ErrorKind::Truncated {
                    needed,
                    available: buf.len(),
                },
            ));
        }
        Ok(MessageView {
            buf,
            base,
            depth,
            validated: Checked::NO,
        })
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Absolute offset of the message's first octet (its msg-type).
    pub fn offset(&self) -> usize {
        self.base
    }

    /// The msg-type.
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        self.buf[field::MSG_TYPE].into()
    }

    /// True for RELAY-FORW and RELAY-REPL.
    #[inline]
    pub fn is_relay(&self) -> bool {
        self.msg_type().is_relay()
    }

    /// The 24-bit transaction-id (0 for a relay message, which has none).
    pub fn transaction_id(&self) -> u32 {
        if self.is_relay() {
            return 0;
        }
        self.xid().get()
    }

    /// The transaction-id as an [`Xid`] (0 for a relay message, which has none).
    pub fn xid(&self) -> Xid {
        if self.is_relay() {
            return Xid::default();
        }
        Xid::from_octets([self.buf[1], self.buf[2], self.buf[3]])
    }

    /// Relay hop-count (0 for a client/server message).
    pub fn hop_count(&self) -> u8 {
        if self.is_relay() {
            self.buf[field::HOP_COUNT]
        } else {
            0
        }
    }

    /// Relay link-address (:: for a client/server message).
    pub fn link_address(&self) -> Ipv6Addr {
        if self.is_relay() {
            ipv6(&self.buf[field::LINK_ADDRESS])
        } else {
            Ipv6Addr::UNSPECIFIED
        }
    }

    /// Relay peer-address (:: for a client/server message).
    pub fn peer_address(&self) -> Ipv6Addr {
        if self.is_relay() {
            ipv6(&self.buf[field::PEER_ADDRESS])
        } else {
            Ipv6Addr::UNSPECIFIED
        }
    }

    /// The options, unwalked.
    #[inline]
    pub fn options(&self) -> Options<'a> {
        let start = if self.is_relay() {
            field::RELAY_OPTIONS
        } else {
            field::CLIENT_OPTIONS
        };
        Options {
            buf: &self.buf[start..],
            base: self.base + start,
            depth: self.depth,
            validated: self.validated,
        }
    }

    /// The first STATUS_CODE option of the message, if any (after validation).
    pub fn status(&self) -> Option<(StatusCode, &'a [u8])> {
        self.options().valid().find_map(|o| match o {
            OptionView::StatusCode { code, message } => Some((code, message)),
            _ => None,
        })
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
