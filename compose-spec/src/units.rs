//! Durations (`1m30s`) and byte sizes (`512m`) as Compose writes and prints them.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A duration, printed the way Docker Compose prints it (`1m30s`, `500ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    /// Parses `1h2m3.5s`, `250ms`, `10us`, `1ns`; a bare number means seconds.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = t.parse::<f64>() {
            return StdDuration::try_from_secs_f64(secs)
                .map(Duration)
                .map_err(|_| format!("invalid duration {s:?}: must be a finite, non-negative number of seconds"));
        }
        let mut total: f64 = 0.0;
        let mut rest = t;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if num_len == 0 {
                return Err(format!("invalid duration {s:?}"));
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| format!("invalid duration {s:?}"))?;
            rest = &rest[num_len..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let nanos_per = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => return Err(format!("invalid duration {s:?}: missing unit (use ns, us, ms, s, m or h)")),
                u => return Err(format!("invalid duration {s:?}: unknown unit {u:?}")),
            };
            total += value * nanos_per;
            rest = &rest[unit_len..];
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(format!("invalid duration {s:?}: too long"));
        }
        Ok(Duration(StdDuration::from_nanos(total.round() as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000 {
            return write!(f, "{nanos}ns");
        }
        if nanos < 1_000_000 {
            return write!(f, "{}µs", trim_fraction(nanos as f64 / 1e3));
        }
        if nanos < 1_000_000_000 {
            return write!(f, "{}ms", trim_fraction(nanos as f64 / 1e6));
        }
        let hours = nanos / 3_600_000_000_000;
        let minutes = (nanos / 60_000_000_000) % 60;
        let secs = (nanos % 60_000_000_000) as f64 / 1e9;
        if hours > 0 {
            write!(f, "{hours}h{minutes}m")?;
        } else if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write!(f, "{}s", trim_fraction(secs))
    }
}

fn trim_fraction(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = ScalarText::deserialize(d)?;
        Duration::parse(&v.0).map_err(de::Error::custom)
    }
}

/// A byte size; Compose accepts `1024`, `512k`, `1.5g`, `64mb` (binary multiples).
/// Printed as the plain number of bytes, as Docker Compose prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub i64);

impl Bytes {
    /// Parses a size with an optional unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, `t`, `tb`, `p`, `pb`).
    pub fn parse(s: &str) -> Result<Bytes, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "-1" {
            return Ok(Bytes(-1));
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let too_large = || format!("invalid size {s:?}: it is larger than {} bytes, the largest size", i64::MAX);
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && matches!(unit.trim(), "" | "b") {
            return num.parse::<i64>().map(Bytes).map_err(|_| too_large());
        }
        let value: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("invalid size {s:?}"));
        }
        let mult: f64 = match unit.trim() {
            "" | "b" => 1.0,
            "k" | "kb" | "kib" => 1024.0,
            "m" | "mb" | "mib" => 1024.0 * 1024.0,
            "g" | "gb" | "gib" => 1024.0f64.powi(3),
            "t" | "tb" | "tib" => 1024.0f64.powi(4),
            "p" | "pb" | "pib" => 1024.0f64.powi(5),
            u => return Err(format!("invalid size {s:?}: unknown unit {u:?}")),
        };
        let bytes = value * mult;
        // 2^63: the first value an i64 cannot hold.
        if bytes >= 9_223_372_036_854_775_808.0 {
            return Err(too_large());
        }
        Ok(Bytes(bytes as i64))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = ScalarText::deserialize(d)?;
        Bytes::parse(&v.0).map_err(de::Error::custom)
    }
}

/// Any scalar (string, number, boolean) read as its text.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarText(pub String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(crate::yaml::format_float(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_like_compose() {
        for (input, out) in [
            ("1m", "1m0s"),
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("500ms", "500ms"),
            ("1.5s", "1.5s"),
            ("10", "10s"),
            ("2m30s", "2m30s"),
            ("1h2m3s", "1h2m3s"),
        ] {
            assert_eq!(Duration::parse(input).unwrap().to_string(), out, "{input}");
        }
        assert!(Duration::parse("10 parsecs").is_err());
        assert!(Duration::parse("s").is_err());
        for bad in ["inf", "nan", "-1", "1e20", "99999999999999999999h"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(Bytes::parse("50m").unwrap().0, 52_428_800);
        assert_eq!(Bytes::parse("1GB").unwrap().0, 1_073_741_824);
        assert_eq!(Bytes::parse("1.5k").unwrap().0, 1536);
        assert_eq!(Bytes::parse("10000").unwrap().0, 10000);
        assert!(Bytes::parse("lots").is_err());
        assert_eq!(Bytes::parse("9223372036854775807").unwrap().0, i64::MAX);
        assert_eq!(Bytes::parse("-1").unwrap().0, -1);
        for bad in ["9223372036854775808", "99999999999999999999999999999", "8388608t", "9999999pb", "-2", "1e400"] {
            assert!(Bytes::parse(bad).is_err(), "{bad}");
        }
        assert!(Bytes::parse("99999999999999999999999999999").unwrap_err().contains("larger than"));
        assert_eq!(Bytes::parse("8388607t").unwrap().0, 8_388_607 * 1024i64.pow(4));
    }
}
