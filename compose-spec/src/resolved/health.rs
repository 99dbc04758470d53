//! `healthcheck:`: the test and its timings.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{invalid, invalid_key, Resolved};
use crate::model::Healthcheck;

/// What a health check runs. Compose and image configs write it as a tagged list: `["CMD",
/// args...]`, `["CMD-SHELL", "command"]`, `["NONE"]`, or empty to take the image's; it is
/// (de)serialized in that form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HealthTest {
    /// No check, whatever the image says (`["NONE"]`, `disable: true`).
    None,
    /// The image's check (an empty or missing `test`).
    #[default]
    Inherit,
    /// A program and its arguments, run as they are (`["CMD", ...]`).
    Exec(Vec<String>),
    /// A command run by `/bin/sh -c` (`["CMD-SHELL", "..."]`, or a string).
    Shell(String),
}

impl HealthTest {
    /// Reads the tagged list.
    pub fn parse(words: &[String]) -> Result<HealthTest, String> {
        let Some((tag, rest)) = words.split_first() else { return Ok(HealthTest::Inherit) };
        match tag.as_str() {
            "NONE" => Ok(HealthTest::None),
            "CMD" if rest.is_empty() => Err("healthcheck test \"CMD\" needs a command to run".into()),
            "CMD" => Ok(HealthTest::Exec(rest.to_vec())),
            "CMD-SHELL" => Ok(HealthTest::Shell(rest.join(" "))),
            other => Err(format!("healthcheck test must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", not {other:?}")),
        }
    }

    /// The tagged list.
    pub fn to_words(&self) -> Vec<String> {
        let tagged = |tag: &str, rest: &[String]| [tag.to_string()].into_iter().chain(rest.iter().cloned()).collect();
        match self {
            HealthTest::None => vec!["NONE".into()],
            HealthTest::Inherit => Vec::new(),
            HealthTest::Exec(args) => tagged("CMD", args),
            HealthTest::Shell(command) => tagged("CMD-SHELL", std::slice::from_ref(command)),
        }
    }
}

impl Serialize for HealthTest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_words().serialize(s)
    }
}

impl<'de> Deserialize<'de> for HealthTest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HealthTest, D::Error> {
        HealthTest::parse(&Vec::<String>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A service's `healthcheck:`, each timing as written (unset ones come from the image, then
/// Docker's defaults: the supervisor's to apply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheck {
    /// The test; [`HealthTest::None`] with `disable: true`.
    pub test: HealthTest,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retries`.
    pub retries: Option<u32>,
    /// `start_period`.
    pub start_period: Option<Duration>,
    /// `start_interval`.
    pub start_interval: Option<Duration>,
}

pub(super) fn resolve(h: &Healthcheck) -> Resolved<HealthCheck> {
    let test = HealthTest::parse(h.test.as_deref().unwrap_or_default())
        .map_err(|m| invalid_key(&["healthcheck", "test"], m))?;
    let retries = match h.retries {
        Some(n) => Some(
            u32::try_from(n).map_err(|_| invalid(&["healthcheck", "retries"], format!("{n} retries are too many")))?,
        ),
        None => None,
    };
    let d = |o: Option<crate::units::Duration>| o.map(|d| d.0);
    Ok(HealthCheck {
        test: if h.disable == Some(true) { HealthTest::None } else { test },
        interval: d(h.interval),
        timeout: d(h.timeout),
        retries,
        start_period: d(h.start_period),
        start_interval: d(h.start_interval),
    })
}
