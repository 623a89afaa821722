//! An install pace (`[routes] max_routes_per_second`), for a routing daemon
//! that cannot take a burst of route notifications (see
//! [`crate::routes::listeners`]): at most that many route changes a second,
//! sent in slices of a twentieth of a second's worth, never faster.

use std::time::Duration;
use tokio::time::Instant;

/// Slices a second is cut into.
const SLICES_PER_SECOND: u32 = 20;

/// At most `per_second` route changes a second, on the tokio clock.
#[derive(Debug, Clone)]
pub struct Pace {
    per_second: u32,
    /// When the next slice may go; `None` before the first.
    next: Option<Instant>,
}

impl Pace {
    /// A pace of `per_second` changes a second (at least 1).
    pub fn new(per_second: u32) -> Pace {
        Pace {
            per_second: per_second.max(1),
            next: None,
        }
    }

    /// The most changes sent at once: a twentieth of a second's worth, at
    /// least one.
    pub fn slice(&self) -> usize {
        (self.per_second / SLICES_PER_SECOND).max(1) as usize
    }

    /// Wait until `n` more changes may go, and count them: the first slice
    /// goes at once, each next one when the changes before it have had
    /// their share of a second.
    pub async fn admit(&mut self, n: usize) {
        let now = Instant::now();
        let at = self.next.map_or(now, |t| t.max(now));
        if at > now {
            tokio::time::sleep_until(at).await;
        }
        let share = Duration::from_secs_f64(n as f64 / f64::from(self.per_second));
        self.next = Some(at + share);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paused<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn slices_are_a_twentieth_of_a_second_and_never_empty() {
        assert_eq!(Pace::new(2000).slice(), 100);
        assert_eq!(Pace::new(10).slice(), 1);
        assert_eq!(Pace::new(0).slice(), 1);
    }

    #[test]
    fn a_thousand_changes_at_100_a_second_take_ten_seconds_and_no_window_is_over() {
        paused(async {
            let mut p = Pace::new(100);
            let t0 = Instant::now();
            let mut sent = Vec::new();
            let mut left = 1000;
            while left > 0 {
                let n = p.slice().min(left);
                p.admit(n).await;
                sent.push((Instant::now() - t0, n));
                left -= n;
            }
            let last = sent.last().unwrap().0;
            // The last slice goes when the 995 before it had their 9.95 s.
            assert_eq!(last, Duration::from_millis(9950));
            // Over any second, at most 100 changes and one slice more.
            for (i, (t, _)) in sent.iter().enumerate() {
                let in_window: usize = sent[i..]
                    .iter()
                    .take_while(|(u, _)| *u < *t + Duration::from_secs(1))
                    .map(|(_, n)| n)
                    .sum();
                assert!(in_window <= 100 + p.slice(), "{in_window} from {t:?}");
            }
        });
    }

    #[test]
    fn an_idle_pace_does_not_bank_time_for_a_burst() {
        paused(async {
            let mut p = Pace::new(100);
            p.admit(5).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            let t0 = Instant::now();
            p.admit(5).await;
            p.admit(5).await;
            assert_eq!(Instant::now() - t0, Duration::from_millis(50));
        });
    }
}
