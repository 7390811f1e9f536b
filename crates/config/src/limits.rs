//! Parsing the human forms of resource limits used in `slipway.toml`: `memory = "256m"`,
//! `cpus = "0.5"`. Same units as `docker run --memory` / `--cpus`, so what users know carries over.

/// `512k`, `256m`, `1g` (also `256MiB`, `1GB`, plain bytes). Binary multiples, like Docker.
pub(crate) fn parse_memory(text: &str) -> Result<i64, String> {
    let raw = text.trim();
    let bytes = parse_size("memory", raw)?;
    // Docker refuses limits under 6 MiB; say so here, with the value the user wrote.
    if bytes < 6 << 20 {
        return Err(format!("memory {raw:?} is below Docker's minimum of 6m"));
    }
    i64::try_from(bytes).map_err(|_| format!("memory {raw:?} is too large"))
}

/// A size in bytes for the setting `what`: `512k`, `10m`, `1g`, `1.5m` (also `10MiB`, `10MB`, plain
/// bytes). Binary multiples, like Docker.
pub(crate) fn parse_size(what: &str, text: &str) -> Result<u64, String> {
    let raw = text.trim();
    let lower = raw.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let unclear = || format!("{what} {raw:?}: use a size like 512k, 10m, 256MiB or 1g");
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(unclear()),
    };
    let value: f64 = number.parse().map_err(|_| unclear())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{what} {raw:?} is too large"));
    }
    Ok(bytes as u64)
}

/// `0.5`, `2`: CPUs as a fraction, to the engine's nano-CPUs.
pub(crate) fn parse_cpus(text: &str) -> Result<i64, String> {
    let raw = text.trim();
    let cpus: f64 = raw
        .parse()
        .map_err(|_| format!("cpus {raw:?}: use a number of CPUs like 0.5 or 2"))?;
    if !(cpus > 0.0 && cpus <= 1024.0) {
        return Err(format!("cpus {raw:?}: must be more than 0"));
    }
    Ok((cpus * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_are_binary() {
        assert_eq!(parse_memory("256m"), Ok(256 << 20));
        assert_eq!(parse_memory("256MiB"), Ok(256 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5G"), Ok(3 << 29));
        assert_eq!(parse_memory("8192k"), Ok(8 << 20));
        assert_eq!(parse_memory("67108864"), Ok(64 << 20));
    }

    #[test]
    fn bad_memory_is_explained() {
        for bad in ["", "lots", "12 parsecs", "1m", "-5g"] {
            assert!(parse_memory(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_memory("1m").unwrap_err().contains("minimum"));
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        for bad in ["0", "-1", "many", "NaN"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?} accepted");
        }
    }
}
