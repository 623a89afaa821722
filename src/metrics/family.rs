//! Encoding helpers shared by the metric collectors: families of gauges
//! and counters written in a fixed order, label sets, state sets.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// The samples of a family: a label set and a value each.
pub type Samples<'a, V> = Vec<(&'a [(&'a str, &'a str)], V)>;

/// One family of `metric_type`: name (without the prefix and the unit),
/// help, unit, and its samples, each made a metric by `make`. Nothing is
/// written for a family without samples.
pub fn family<V: Copy, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, unit): (&str, &str, Option<&Unit>),
    metric_type: MetricType,
    samples: &[(&[(&str, &str)], V)],
    make: impl Fn(V) -> M,
) -> Result<(), std::fmt::Error> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut m = encoder.encode_descriptor(name, help, unit, metric_type)?;
    match samples {
        [([], v)] => make(*v).encode(m),
        _ => {
            for (labels, v) in samples {
                make(*v).encode(m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

/// One gauge family (see [`family`]).
pub fn gauge<V: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: &[(&[(&str, &str)], V)],
) -> Result<(), std::fmt::Error> {
    family(
        encoder,
        (name, help, unit),
        MetricType::Gauge,
        samples,
        ConstGauge::new,
    )
}

/// One unlabelled sample.
pub fn one<V>(v: V) -> Samples<'static, V> {
    vec![(&[], v)]
}

/// Label sets of one label each, `key` = each of `values`.
pub fn label_sets<'a>(
    key: &'a str,
    values: impl Iterator<Item = &'a str>,
) -> Vec<[(&'a str, &'a str); 1]> {
    values.map(|v| [(key, v)]).collect()
}

/// Pairs each label set with its value.
pub fn samples<'a, V>(
    sets: &'a [[(&'a str, &'a str); 1]],
    values: impl Iterator<Item = V>,
) -> Samples<'a, V> {
    sets.iter().map(|l| &l[..]).zip(values).collect()
}

/// A state set: 1 for the label value that is `current`, 0 for the others.
pub fn state_set<'a>(sets: &'a [[(&'a str, &'a str); 1]], current: &str) -> Samples<'a, i64> {
    samples(sets, sets.iter().map(|l| i64::from(l[0].1 == current)))
}

/// One counter family (the encoder adds `_total`; see [`family`]).
pub fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(&[(&str, &str)], u64)],
) -> Result<(), std::fmt::Error> {
    use prometheus_client::metrics::counter::ConstCounter;
    family(
        encoder,
        (name, help, None),
        MetricType::Counter,
        samples,
        ConstCounter::new,
    )
}
