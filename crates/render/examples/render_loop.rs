//! Renders the benchmark newsletter N times, for counting instructions with
//! `valgrind --tool=callgrind`, which is repeatable on a noisy machine where
//! wall time is not:
//!
//! ```sh
//! cargo build --release -p artifact-render --example render_loop
//! for n in 100 300; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/render_loop core $n 2>&1 | grep refs; done
//! ```
//!
//! Per recipient = (refs at 300 − refs at 100) / 200. Modes: `core`,
//! `tracked` (the core with click and open tracking and UTM parameters on),
//! `tracked4` (as `tracked`, with the 4 recommendations loadgen sends),
//! `bare` (bare minijinja, converting the context per recipient) and
//! `preconverted` (bare minijinja from contexts converted beforehand).

#[path = "../benches/fixtures/mod.rs"]
mod fixtures;

use artifact_render::template::Channel;
use fixtures::{Fixture, template};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(count)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: render_loop core|tracked|tracked4|bare|preconverted COUNT");
        std::process::exit(2);
    };
    let fixture = match mode.as_str() {
        "tracked" => Fixture::with_tracking(
            "spring_sale",
            Channel::Email,
            template("spring_sale"),
            fixtures::tracking_on(),
        ),
        "tracked4" => Fixture::with_event(
            "spring_sale",
            Channel::Email,
            template("spring_sale"),
            fixtures::tracking_on(),
            |event| event["recommendations"].as_array_mut().unwrap().truncate(4),
        ),
        _ => Fixture::new("spring_sale", Channel::Email, template("spring_sale")),
    };
    let profiles = fixture.profiles.len();
    let preconverted: Vec<_> = match mode.as_str() {
        "preconverted" => (0..profiles).map(|i| fixture.bare_context(i)).collect(),
        _ => Vec::new(),
    };
    let mut bytes = 0;
    for i in 0..count {
        let profile = i % profiles;
        bytes += match mode.as_str() {
            "core" | "tracked" | "tracked4" => {
                usize::from(fixture.render_core(profile).is_rendered())
            }
            "bare" => fixture.render_bare(profile).iter().map(String::len).sum(),
            "preconverted" => fixture
                .render_bare_with(&preconverted[profile])
                .iter()
                .map(String::len)
                .sum(),
            other => panic!("unknown mode {other}"),
        };
    }
    println!("{bytes}");
}
