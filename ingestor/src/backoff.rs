//! Capped exponential backoff with jitter, as a pure function.

use std::time::Duration;

/// The delay before attempt `attempt` (0-based): `initial * 2^attempt`, capped at `max`,
/// then scaled by `jitter` in `[0.5, 1.0]` so that many chains do not retry in lockstep.
pub fn delay(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(31));
    let base = initial.saturating_mul(factor).min(max);
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// [`delay`] with a random jitter.
pub fn jittered(attempt: u32, initial: Duration, max: Duration) -> Duration {
    delay(attempt, initial, max, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_then_caps() {
        let d = |a| delay(a, 100 * MS, 1000 * MS, 1.0);
        assert_eq!(
            [d(0), d(1), d(2), d(3), d(4), d(40)],
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        assert_eq!(delay(2, 100 * MS, 1000 * MS, 0.0), 200 * MS);
        assert_eq!(delay(2, 100 * MS, 1000 * MS, 7.0), 400 * MS);
        for _ in 0..100 {
            let d = jittered(3, 100 * MS, 1000 * MS);
            assert!(d >= 400 * MS && d <= 800 * MS, "{d:?}");
        }
    }
}
