//! Wall-clock dates: the calendar behind the access log's timestamps and
//! the HTTP `Date` field (RFC 9110 §5.6.7, IMF-fixdate).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A civil date and time in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: u64,
    pub month: u64,
    pub day: u64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

/// Converts seconds since the Unix epoch to a UTC date (proleptic
/// Gregorian calendar; Howard Hinnant's `civil_from_days`).
pub fn civil(unix: u64) -> Civil {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs % 3600 / 60,
        second: secs % 60,
    }
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

/// `unix` seconds as an IMF-fixdate (RFC 9110 §5.6.7), the form every
/// HTTP/1.1 `Date` is sent in. Years past 9999 are written as 9999.
pub fn http_date(unix: u64) -> [u8; HTTP_DATE_LEN] {
    let unix = unix.min(253_402_300_799);
    let c = civil(unix);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(unix / 86_400 % 7) as usize]);
    let two = |out: &mut [u8; HTTP_DATE_LEN], at: usize, v: u64| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 5, c.day);
    out[8..11].copy_from_slice(MONTHS[(c.month - 1) as usize].as_bytes());
    two(&mut out, 12, c.year / 100);
    two(&mut out, 14, c.year % 100);
    two(&mut out, 17, c.hour);
    two(&mut out, 20, c.minute);
    two(&mut out, 23, c.second);
    out
}

/// The `Date` value for the current second, formatted once per second.
#[derive(Debug, Clone)]
pub struct DateCache {
    text: [u8; HTTP_DATE_LEN],
    /// Monotonic time (as [`crate::time::Clock::elapsed`]) at which the
    /// wall clock's second changes next.
    next: Duration,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            text: http_date(0),
            next: Duration::ZERO,
        }
    }
}

impl DateCache {
    /// Brings the text up to date at monotonic time `precise`; reads the
    /// wall clock (`wall`) only when a new second has begun.
    pub fn refresh(&mut self, precise: Duration, wall: impl FnOnce() -> SystemTime) {
        if precise < self.next {
            return;
        }
        let since_epoch = wall().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.text = http_date(since_epoch.as_secs());
        let to_next_second =
            Duration::from_nanos(u64::from(1_000_000_000 - since_epoch.subsec_nanos()));
        self.next = precise + to_next_second;
    }

    /// The IMF-fixdate of the last refresh.
    pub fn text(&self) -> &[u8; HTTP_DATE_LEN] {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let c = |y, mo, d, h, mi, s| Civil {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        };
        assert_eq!(civil(0), c(1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(971_185_336), c(2000, 10, 10, 13, 42, 16));
        assert_eq!(civil(951_782_400), c(2000, 2, 29, 0, 0, 0)); // leap day, century
        assert_eq!(civil(4_107_542_399), c(2100, 2, 28, 23, 59, 59)); // 2100 not leap
        assert_eq!(civil(4_107_542_400), c(2100, 3, 1, 0, 0, 0));
        assert_eq!(civil(1_709_251_199), c(2024, 2, 29, 23, 59, 59));
        assert_eq!(civil(1_735_689_599), c(2024, 12, 31, 23, 59, 59));
        assert_eq!(civil(1_735_689_600), c(2025, 1, 1, 0, 0, 0));
        // Day by day over 1970..2400 agrees with a naive calendar walk.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for day in 0..(430 * 366) {
            let got = civil(day * 86_400 + 86_399);
            assert_eq!((got.year, got.month, got.day), (y, m, d), "day {day}");
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110 §5.6.7's example.
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&http_date(1_764_892_800), b"Fri, 05 Dec 2025 00:00:00 GMT");
        assert_eq!(&http_date(u64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn the_cache_reads_the_wall_clock_once_a_second() {
        let mut cache = DateCache::default();
        let at = |secs: u64, nanos: u32| move || UNIX_EPOCH + Duration::new(secs, nanos);
        cache.refresh(Duration::from_millis(10), at(784_111_777, 250_000_000));
        assert_eq!(cache.text(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        // Until the wall clock's next second the clock is not read.
        let panics = || -> SystemTime { panic!("read too early") };
        cache.refresh(Duration::from_millis(759), panics);
        cache.refresh(Duration::from_millis(760), at(784_111_778, 0));
        assert_eq!(cache.text(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
