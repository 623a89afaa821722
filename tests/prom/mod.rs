//! A metrics file read back with a Prometheus text-format parser
//! (`prometheus-parse`), for the tests of `recover` and `follow`.

use std::path::Path;

/// The metrics file, parsed, and its text (for the failure messages).
pub struct Metrics(pub prometheus_parse::Scrape, pub String);

impl Metrics {
    /// Read and parse the file at `path`.
    pub fn read(path: &Path) -> Metrics {
        let text = std::fs::read_to_string(path).expect("the metrics file");
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        Metrics(scrape, text)
    }

    /// The sample `name` with `labels` (and no other label); exactly one
    /// such sample must be there.
    fn sample(&self, name: &str, labels: &[(&str, &str)]) -> &prometheus_parse::Value {
        let found: Vec<_> = self
            .0
            .samples
            .iter()
            .filter(|s| {
                s.metric == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?} in\n{}", self.1);
        &found[0].value
    }

    /// The value of gauge `name` with `labels` (and no other label).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.sample(name, labels) {
            prometheus_parse::Value::Gauge(v) => *v,
            other => panic!("{name} is not a gauge but {other:?}"),
        }
    }

    /// The value of counter `name` with `labels` (and no other label).
    #[allow(dead_code)] // not every test crate that includes this module asks
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.sample(name, labels) {
            prometheus_parse::Value::Counter(v) => *v,
            other => panic!("{name} is not a counter but {other:?}"),
        }
    }

    /// Whether any sample of `name` is there.
    #[allow(dead_code)] // not every test crate that includes this module asks
    pub fn has(&self, name: &str) -> bool {
        self.0.samples.iter().any(|s| s.metric == name)
    }
}
