//! How numbers read in a judgement's detail: short, and precise where it matters.

/// A proportion as a percentage with at most two decimals, trailing zeros dropped: 3.1%, 0.3%, 1%.
pub(crate) fn pct(p: f64) -> String {
    format!("{}%", trim(format!("{:.2}", p * 100.0)))
}

/// An anytime-valid p-value.
pub(crate) fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else {
        format!("p={}", trim(format!("{:.3}", p)))
    }
}

/// A latency: 850µs, 12.5ms, 1.25s.
pub(crate) fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{}ms", trim(format!("{:.1}", us as f64 / 1e3)))
    } else {
        format!("{}s", trim(format!("{:.2}", us as f64 / 1e6)))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_well() {
        assert_eq!(pct(0.031), "3.1%");
        assert_eq!(pct(0.003), "0.3%");
        assert_eq!(pct(0.01), "1%");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(p_value(0.0004), "p<0.001");
        assert_eq!(p_value(0.0042), "p=0.004");
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(12_500), "12.5ms");
        assert_eq!(micros(300_000), "300ms");
        assert_eq!(micros(1_250_000), "1.25s");
    }
}
