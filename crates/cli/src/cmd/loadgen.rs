//! `artifact loadgen`: synthetic render traffic against the embedded
//! pipeline in this process or a running `artifact serve`, and a report of
//! what the system did with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use artifact_loadgen::data::{DataSpec, Shape};
use artifact_loadgen::rate::{parse_duration, parse_rate};
use artifact_loadgen::report::Recorder;
use artifact_loadgen::run::{Pace, Plan, Stream, run};
use artifact_loadgen::target::{Finished, Http, InProcess, Target};
use artifact_render::finish::tracking::{SigningKey, TrackingConfig};
use artifact_render::request::Priority;
use tokio::sync::mpsc;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `in-process` (the embedded pipeline in this process, discard sink) or
    /// the URL of a running `artifact serve`, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "in-process")]
    target: String,
    /// Offer this many renders per second (`20000/s`, `1200/min`),
    /// open-loop: latency counts from each request's scheduled time.
    #[arg(long, conflicts_with = "closed")]
    rate: Option<String>,
    /// Keep this many requests in flight instead (closed loop, for maximum
    /// throughput).
    #[arg(long)]
    closed: Option<usize>,
    /// Stop offering after this long.
    #[arg(long, default_value = "30s")]
    duration: String,
    /// Stop offering after this many requests (per stream).
    #[arg(long)]
    requests: Option<u64>,
    /// Templates and their weights: `newsletter`, `newsletter=3,sms=1`
    /// (newsletter, receipt, sms).
    #[arg(long, default_value = "newsletter")]
    mix: String,
    /// Priorities and their weights: `normal`, `high=1,low=9`.
    #[arg(long, default_value = "normal")]
    priorities: String,
    /// Recipients per request.
    #[arg(long, default_value_t = 1000)]
    recipients: usize,
    /// `flood`: one company's low-priority bulk newsletters keep the service
    /// saturated (`--closed`, default 4 in flight) while another company's
    /// single-recipient high-priority receipts arrive at `--high-rate`.
    #[arg(long)]
    scenario: Option<String>,
    /// The high-priority rate of the flood scenario.
    #[arg(long, default_value = "50/s")]
    high_rate: String,
    /// Synthetic profiles per company.
    #[arg(long, default_value_t = 100_000)]
    profiles: usize,
    /// Extra properties per profile.
    #[arg(long, default_value_t = 10)]
    width: usize,
    /// Items per cart.
    #[arg(long, default_value_t = 3)]
    cart: usize,
    /// Recommended products per newsletter.
    #[arg(long, default_value_t = 4)]
    picks: usize,
    /// Seed of the synthetic data and the mixes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// In-process: where the embedded store lives [default: a fresh
    /// temporary folder]. Reusing one reuses its profiles.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// In-process: render workers [default: two per core].
    #[arg(long)]
    workers: Option<usize>,
    /// In-process: fetch only the profile keys the template reads (`true`
    /// or `false`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    profile_projection: bool,
    /// In-process: recipients per batch.
    #[arg(long, default_value_t = artifact_pipeline::adapters::embedded::EmbeddedOptions::default().batch_size)]
    batch_size: usize,
    /// In-process: the configuration file whose `[tracking]` signs links
    /// [default: a built-in key for load tests].
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long to wait for requests in flight after offering stops.
    #[arg(long, default_value = "60s")]
    drain: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

const BULK_COMPANY: &str = "loadgen-bulk";
const TRANSACTIONAL_COMPANY: &str = "loadgen-tx";
const COMPANY: &str = "loadgen";

pub fn run_command(args: &Args) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(loadgen(args))
}

fn weighted<T>(text: &str, what: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<(T, u32)>> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, weight) = match entry.split_once('=') {
                Some((name, weight)) => (
                    name,
                    weight.parse::<u32>().map_err(|_| {
                        anyhow!("{what} {entry:?}: the weight must be a whole number")
                    })?,
                ),
                None => (entry, 1),
            };
            Ok((parse(name)?, weight))
        })
        .collect::<Result<Vec<_>>>()
        .and_then(|list| {
            if list.iter().all(|(_, w)| *w == 0) {
                bail!("{what} {text:?}: give at least one entry with a weight above 0")
            }
            Ok(list)
        })
}

fn priority(name: &str) -> Result<Priority> {
    match name {
        "high" => Ok(Priority::High),
        "normal" => Ok(Priority::Normal),
        "low" => Ok(Priority::Low),
        other => bail!("priority {other:?}: expected high, normal or low"),
    }
}

/// The streams of traffic the arguments describe.
fn streams(args: &Args, spec: &DataSpec) -> Result<(Vec<Stream>, Vec<String>)> {
    let shape = |company: &str, template: &str, priority: Priority, recipients: usize, n: usize| {
        Shape::new(spec, company, template, priority, recipients, n * 7919)
            .map_err(anyhow::Error::msg)
    };
    if let Some(scenario) = &args.scenario {
        if scenario != "flood" {
            bail!("scenario {scenario:?}: the one scenario is `flood`");
        }
        let bulk = (0..4)
            .map(|n| {
                Ok((
                    shape(
                        BULK_COMPANY,
                        "newsletter",
                        Priority::Low,
                        args.recipients,
                        n,
                    )?,
                    1,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let high = (0..4)
            .map(|n| {
                Ok((
                    shape(TRANSACTIONAL_COMPANY, "receipt", Priority::High, 1, n)?,
                    1,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let high_rate = parse_rate(&args.high_rate).map_err(anyhow::Error::msg)?;
        return Ok((
            vec![
                Stream {
                    name: "bulk".into(),
                    pace: Pace::Closed {
                        in_flight: args.closed.unwrap_or(4),
                    },
                    shapes: bulk,
                },
                Stream {
                    name: "transactional".into(),
                    pace: Pace::Open {
                        renders_per_second: high_rate,
                    },
                    shapes: high,
                },
            ],
            vec![BULK_COMPANY.into(), TRANSACTIONAL_COMPANY.into()],
        ));
    }
    let templates = weighted(&args.mix, "mix", |name| {
        if !artifact_loadgen::data::TEMPLATES.contains(&name) {
            bail!("mix: unknown template {name:?}; expected newsletter, receipt or sms");
        }
        Ok(name.to_owned())
    })?;
    let priorities = weighted(&args.priorities, "priorities", priority)?;
    let mut shapes = Vec::new();
    for (template, t_weight) in &templates {
        for (priority, p_weight) in &priorities {
            // A few variants of each, so event data differs between requests.
            for n in 0..4 {
                shapes.push((
                    shape(COMPANY, template, *priority, args.recipients, n)?,
                    t_weight * p_weight,
                ));
            }
        }
    }
    let pace = match (&args.rate, args.closed) {
        (Some(rate), _) => Pace::Open {
            renders_per_second: parse_rate(rate).map_err(anyhow::Error::msg)?,
        },
        (None, Some(0)) => bail!("--closed: keep at least 1 request in flight"),
        (None, Some(in_flight)) => Pace::Closed { in_flight },
        (None, None) => bail!("give --rate (open loop) or --closed (requests in flight)"),
    };
    Ok((
        vec![Stream {
            name: "main".into(),
            pace,
            shapes,
        }],
        vec![COMPANY.into()],
    ))
}

/// Signs links in-process when no configuration is given: load tests only.
fn load_test_tracking() -> Result<Arc<TrackingConfig>> {
    let key = SigningKey {
        id: "loadgen".into(),
        secret: b"load-test-only-secret-never-used-for-real-mail".to_vec(),
    };
    Ok(Arc::new(
        TrackingConfig::new("t.loadgen.example", vec![key], None).map_err(anyhow::Error::msg)?,
    ))
}

async fn loadgen(args: &Args) -> Result<()> {
    if args.workers == Some(0) {
        bail!("--workers: must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size: must be at least 1");
    }
    let spec = DataSpec {
        seed: args.seed,
        profiles: args.profiles,
        width: args.width,
        cart_items: args.cart,
        picks: args.picks,
    };
    let (streams, companies) = streams(args, &spec)?;
    let plan = Plan {
        streams,
        duration: parse_duration(&args.duration).map_err(anyhow::Error::msg)?,
        max_requests: args.requests,
        drain: parse_duration(&args.drain).map_err(anyhow::Error::msg)?,
        seed: args.seed,
    };

    let _temp_dir;
    let (target, finished): (Arc<dyn Target>, mpsc::UnboundedReceiver<Finished>) = if args.target
        == "in-process"
    {
        let data_dir = match &args.data_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = tempfile::tempdir().context("cannot create a temporary data dir")?;
                let path = dir.path().to_owned();
                _temp_dir = dir;
                path
            }
        };
        let tracking = match &args.config {
            Some(path) => Config::load(Some(path), |name| std::env::var(name).ok())?.tracking,
            None => Some(load_test_tracking()?),
        };
        let workers = artifact_pipeline::worker::WorkerSettings {
            profile_projection: args.profile_projection,
            ..artifact_pipeline::worker::WorkerSettings::new(
                args.workers
                    .unwrap_or_else(artifact_pipeline::worker::default_workers),
            )
        };
        let (target, finished) = InProcess::start(&data_dir, workers, args.batch_size, tracking)
            .map_err(anyhow::Error::msg)?;
        (Arc::new(target), finished)
    } else {
        let (target, finished) = Http::new(&args.target, &companies).map_err(anyhow::Error::msg)?;
        (Arc::new(target), finished)
    };

    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_message(format!(
        "loading {} profiles and the templates into {}",
        spec.profiles, args.target
    ));
    progress.enable_steady_tick(Duration::from_millis(200));
    target
        .load(&spec, &companies)
        .await
        .map_err(|e| anyhow!("cannot load the synthetic data: {e}"))?;

    let recorder = Recorder::new();
    let ticker = {
        let (recorder, progress) = (recorder.clone(), progress.clone());
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                let now = recorder.snapshot();
                let seconds = started.elapsed().as_secs_f64().max(0.001);
                progress.set_message(format!(
                    "{:.0}s  offered {} requests ({} renders)  done {} ({} renders, {:.0}/s)  failed {}",
                    seconds,
                    now.requests_offered,
                    now.recipients_offered,
                    now.requests_completed,
                    now.recipients_completed,
                    now.recipients_completed as f64 / seconds,
                    now.requests_failed,
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let elapsed = run(target.clone(), finished, plan, recorder.clone()).await;
    ticker.abort();
    progress.finish_and_clear();
    let peak_rss = target.peak_rss_bytes().await;
    target.shutdown().await;

    let summary = recorder.summary(elapsed, peak_rss);
    if args.json {
        println!("{}", summary.to_json());
    } else {
        println!("{}", summary.to_text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    /// The error `streams` gives for these flags.
    fn refused(flags: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("loadgen").chain(flags.iter().copied()))
            .expect("flags parse");
        let spec = DataSpec {
            profiles: 10,
            ..DataSpec::default()
        };
        match streams(&cli.args, &spec) {
            Ok(_) => panic!("{flags:?} were accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn bad_traffic_flags_are_named() {
        assert!(refused(&["--scenario", "storm"]).contains("the one scenario is `flood`"));
        assert!(
            refused(&["--closed", "1", "--mix", "digest"]).contains("unknown template \"digest\"")
        );
        assert!(refused(&[]).contains("give --rate (open loop) or --closed"));
        assert!(refused(&["--closed", "0"]).contains("--closed: keep at least 1"));
        assert!(refused(&["--rate", "fast"]).contains("fast"));
        assert!(
            refused(&["--closed", "1", "--priorities", "urgent"]).contains("high, normal or low")
        );
    }

    #[test]
    fn weights_are_parsed_and_mistakes_named() {
        let list = weighted("newsletter=3, sms", "mix", |n| Ok(n.to_owned())).unwrap();
        assert_eq!(list, [("newsletter".to_owned(), 3), ("sms".to_owned(), 1)]);
        let error = weighted("sms=x", "mix", |n| Ok(n.to_owned())).unwrap_err();
        assert!(error.to_string().contains("\"sms=x\""), "{error}");
        let error = weighted("sms=0", "mix", |n| Ok(n.to_owned())).unwrap_err();
        assert!(error.to_string().contains("weight above 0"), "{error}");
        assert!(
            priority("urgent")
                .unwrap_err()
                .to_string()
                .contains("high, normal or low")
        );
    }
}
