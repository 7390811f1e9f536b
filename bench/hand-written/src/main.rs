//! `next run after t` for every (expression, instant) pair, by slipway's `Schedule` and by croner:
//! checks that they agree, then times each (median and spread of 15 rounds).

use chrono::{TimeZone, Utc};
use std::str::FromStr;
use std::time::Instant;

const EXPRESSIONS: &[&str] = &[
    "*/5 * * * *",
    "0 3 * * *",
    "30 2 * * 1-5",
    "0 0 1 * *",
    "15 10 * * 0",
    "0 */6 * * *",
    "0 9,17 * * mon-fri",
    "0 0 29 2 *",
    "0 12 13 * 5",
    "@hourly",
    "@weekly",
];

fn instants() -> Vec<i64> {
    // Every 7 hours 13 minutes and 17 seconds across four years: all weekdays, months, leap days.
    let start = 1_704_067_200; // 2024-01-01T00:00:00Z
    (0..5_000).map(|i| start + i * (7 * 3600 + 13 * 60 + 17)).collect()
}

fn ours(expr: &str, at: &[i64]) -> Vec<i64> {
    let s = slipway_core::schedule::Schedule::parse(expr).expect("ours parses");
    at.iter().map(|&t| s.next_after(t).expect("fires")).collect()
}

fn croner(expr: &str, at: &[i64]) -> Vec<i64> {
    let c = croner::Cron::from_str(expr).expect("croner parses");
    at.iter()
        .map(|&t| {
            let now = Utc.timestamp_opt(t, 0).unwrap();
            c.find_next_occurrence(&now, false).expect("fires").timestamp()
        })
        .collect()
}

fn time(f: impl Fn() -> usize) -> Vec<f64> {
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            let n = f();
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds
}

fn main() {
    let at = instants();
    let mut disagreements = 0;
    for expr in EXPRESSIONS {
        let (a, b) = (ours(expr, &at), croner(expr, &at));
        let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        if differ > 0 {
            println!("{expr:>22}: {differ} of {} answers differ", a.len());
            disagreements += differ;
        }
    }
    println!(
        "{} expressions × {} instants: {disagreements} disagreements",
        EXPRESSIONS.len(),
        at.len()
    );
    let work = |f: fn(&str, &[i64]) -> Vec<i64>| {
        time(|| {
            EXPRESSIONS
                .iter()
                .map(|e| std::hint::black_box(f(e, &at)).len())
                .sum()
        })
    };
    for (name, rounds) in [("slipway", work(ours)), ("croner", work(croner))] {
        println!(
            "{name:>8}: median {:.0} ns per next run (min–max {:.0}–{:.0} over 15 rounds)",
            rounds[7], rounds[0], rounds[14]
        );
    }
}
