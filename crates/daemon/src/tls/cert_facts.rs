//! What `slipway certs` and the renewal timer need to know of a certificate: its serial number, its
//! issuer's name and its validity window, read from the leaf's DER.
//!
//! Hand-written: these are three fields at fixed places in every X.509 certificate (RFC 5280 §4.1), and a
//! full X.509 parser would add several crates to read them. Anything unexpected is `None`, never a panic:
//! the input can be a user's file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The parts of a certificate the daemon reports and schedules by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The serial number in lowercase hex, without leading zeros (as CAs and `openssl x509` show it).
    pub serial: String,
    /// The issuer's common name (else its organization, else "unknown").
    pub issuer: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Reads the facts of a DER certificate.
pub fn read(der: &[u8]) -> Option<CertFacts> {
    let (_, certificate, _) = tlv(der).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (_, tbs, _) = tlv(certificate).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, absent in v1 certificates.
    if rest.first() == Some(&0xA0) {
        rest = tlv(rest)?.2;
    }
    let (_, serial, rest) = tlv(rest)?;
    let (_, _signature, rest) = tlv(rest)?;
    let (_, issuer, rest) = tlv(rest).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (_, validity, _) = tlv(rest).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (before_tag, before, rest) = tlv(validity)?;
    let (after_tag, after, _) = tlv(rest)?;
    Some(CertFacts {
        serial: hex_number(serial),
        issuer: issuer_name(issuer),
        not_before: time(before_tag, before)?,
        not_after: time(after_tag, after)?,
    })
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0A];

/// One DER tag-length-value: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A DER INTEGER's contents as lowercase hex, leading zero bytes left out ("0" for zero).
fn hex_number(bytes: &[u8]) -> String {
    let digits: String = bytes
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02x}"))
        .collect();
    match digits.trim_start_matches('0') {
        "" => "0".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// The issuer Name (a sequence of sets of type-value pairs): its CN, else its O.
fn issuer_name(mut name: &[u8]) -> String {
    let mut organization = None;
    while let Some((_, set, rest)) = tlv(name) {
        name = rest;
        let Some((_, pair, _)) = tlv(set) else {
            continue;
        };
        let Some((_, oid, value)) = tlv(pair) else {
            continue;
        };
        let Some((_, text, _)) = tlv(value) else {
            continue;
        };
        let text = String::from_utf8_lossy(text).into_owned();
        if oid == COMMON_NAME {
            return text;
        }
        if oid == ORGANIZATION {
            organization = Some(text);
        }
    }
    organization.unwrap_or_else(|| "unknown".to_owned())
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let digits = text.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |s: &[u8]| s.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(&digits[..2]);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (number(&digits[..4]), &digits[4..]),
        _ => return None,
    };
    let (month, day) = (number(&rest[0..2]), number(&rest[2..4]));
    let (hour, minute, second) = (
        number(&rest[4..6]),
        number(&rest[6..8]),
        number(&rest[8..10]),
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_issuer_and_validity_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["shop.test".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 3, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Issuer");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8a, 0x01, 0xff]));
        let cert = params.self_signed(&key).unwrap();
        let facts = read(cert.der()).unwrap();
        assert_eq!(facts.issuer, "Test Issuer");
        assert_eq!(facts.serial, "8a01ff");
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(facts.not_before), 1_772_323_200); // 2026-03-01 (UTCTime)
        assert_eq!(secs(facts.not_after), 2_524_521_600); // 2049-12-31
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(read(b""), None);
        assert_eq!(read(&[0x30, 0x82, 0xff]), None);
        assert_eq!(read(b"-----BEGIN CERTIFICATE-----"), None);
    }
}
