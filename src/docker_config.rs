//! The fields docker's image config has beyond OCI's — `config.Healthcheck`,
//! `config.Shell`, `config.OnBuild`, `config.ArgsEscaped` — which BuildKit writes into every image
//! it builds, OCI or not, and reads back from base images. oci-spec's
//! `Config` has no place for them, so they are written beside it (flattened
//! into the same JSON object) and read from the config's raw JSON.

use kiln_frontend::{Healthcheck, ImageConfig};
use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// docker's `HealthConfig`: durations in nanoseconds, zero ones left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    retries: u64,
}

/// The docker-only part of an image config's `config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    on_build: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    args_escaped: bool,
}

/// docker writes `"OnBuild": null` for an image without triggers.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl DockerFields {
    /// The fields a stage's metadata sets.
    pub fn of(meta: &ImageConfig) -> Self {
        DockerFields {
            healthcheck: meta.healthcheck.as_ref().map(|h| HealthConfig {
                test: h.test.clone(),
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            }),
            shell: meta.shell.clone(),
            on_build: meta.on_build.clone(),
            args_escaped: meta.args_escaped,
        }
    }

    /// The fields of the image config `raw` (its JSON). A field of the wrong
    /// shape is read as unset, the way a missing one is: these fields change
    /// what a container does at run time, never what a build makes.
    pub fn read(raw: &[u8]) -> Self {
        let config = serde_json::from_slice::<Value>(raw).ok().and_then(|mut v| v.get_mut("config").map(Value::take));
        let Some(Value::Object(config)) = config else { return Self::default() };
        let field = |name: &str| config.get(name).cloned().unwrap_or(Value::Null);
        DockerFields {
            healthcheck: serde_json::from_value(field("Healthcheck")).ok().flatten(),
            shell: serde_json::from_value(field("Shell")).ok().flatten(),
            on_build: serde_json::from_value::<Option<Vec<String>>>(field("OnBuild"))
                .ok()
                .flatten()
                .unwrap_or_default(),
            args_escaped: serde_json::from_value(field("ArgsEscaped")).unwrap_or(false),
        }
    }

    /// Set these fields in a stage's metadata (a base image's, inherited).
    pub fn apply(self, meta: &mut ImageConfig) {
        meta.healthcheck = self.healthcheck.map(|h| Healthcheck {
            test: h.test,
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        });
        meta.shell = self.shell;
        meta.on_build = self.on_build;
        meta.args_escaped = self.args_escaped;
    }
}

/// An image config as `kiln inspect` shows it: oci-spec's reading of it,
/// with the docker-only fields of its raw JSON put back into `config`.
pub fn inspect_json(config: &ImageConfiguration, raw: &[u8]) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    let fields = serde_json::to_value(DockerFields::read(raw)).unwrap_or(Value::Null);
    if let (Some(obj), Value::Object(fields)) = (value.as_object_mut(), fields) {
        if !fields.is_empty() {
            let config = obj.entry("config").or_insert_with(|| Value::Object(Default::default()));
            if let Some(config) = config.as_object_mut() {
                config.extend(fields);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_docker_json() {
        let mut meta = ImageConfig {
            healthcheck: Some(Healthcheck {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: 30_000_000_000,
                retries: 3,
                ..Default::default()
            }),
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
            on_build: vec!["RUN echo hi".into()],
            args_escaped: true,
            ..Default::default()
        };
        let json = serde_json::json!({ "config": DockerFields::of(&meta) });
        assert_eq!(
            json,
            serde_json::json!({"config": {
                "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000u64, "Retries": 3},
                "Shell": ["/bin/bash", "-c"],
                "OnBuild": ["RUN echo hi"],
                "ArgsEscaped": true,
            }})
        );
        let read = DockerFields::read(json.to_string().as_bytes());
        let mut back = ImageConfig::default();
        read.apply(&mut back);
        meta.history.clear();
        assert_eq!(back, meta);
    }

    #[test]
    fn nulls_missing_and_malformed_fields_read_as_unset() {
        for raw in [
            r#"{"config": {"OnBuild": null, "Healthcheck": null, "Shell": null}}"#,
            r#"{"config": {"OnBuild": "x", "Healthcheck": [1], "Shell": 3, "ArgsEscaped": "yes"}}"#,
            r#"{"architecture": "amd64"}"#,
            "not json",
        ] {
            assert_eq!(DockerFields::read(raw.as_bytes()), DockerFields::default(), "{raw}");
        }
    }
}
