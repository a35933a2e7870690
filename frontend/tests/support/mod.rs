//! What the frontend's test binaries share: a fake image resolver and the
//! options every case starts from.

use std::cell::RefCell;
use std::collections::BTreeMap;

use kiln_frontend::{BuildOptions, History, ImageConfig, ImageResolver, ResolvedImage};

/// Knows a few images and counts lookups: `busybox`, `golang:1.22`,
/// `onbuild:1` and `badtrigger:1` (busybox with ONBUILD triggers, valid or
/// not); `broken` fails to resolve; anything else is not found, unless the
/// resolver is [`open`](FakeResolver::open).
#[derive(Default)]
pub struct FakeResolver {
    /// How many times each reference was looked up.
    pub calls: RefCell<BTreeMap<String, usize>>,
    /// Whether any other reference resolves too (to a Debian-like image of
    /// that name), for Dockerfiles written against real base images.
    pub open: bool,
}

impl FakeResolver {
    /// A resolver that finds every image but `broken`.
    #[allow(dead_code)] // not every test binary uses it
    pub fn open() -> Self {
        FakeResolver { open: true, ..FakeResolver::default() }
    }
}

impl ImageResolver for FakeResolver {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        *self.calls.borrow_mut().entry(reference.to_owned()).or_default() += 1;
        let triggers: &[&str] = match reference {
            "onbuild:1" => &["RUN echo \"from image $T\"", "ENV T=set", "WORKDIR /srv"],
            "badtrigger:1" => &["RUN ok", "RUNN typo"],
            _ => &[],
        };
        let (name, env, cmd): (&str, &[&str], &[&str]) = match reference {
            "busybox" | "busybox:latest" => ("busybox:latest", &["PATH=/bin"], &["sh"]),
            "onbuild:1" | "badtrigger:1" => (reference, &["PATH=/bin"], &["sh"]),
            "golang:1.22" => ("golang:1.22", &["PATH=/go/bin:/bin", "GOPATH=/go"], &["bash"]),
            "broken" | "broken:latest" => return Err("registry on fire".to_owned()),
            other if self.open => {
                (other, &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], &["bash"])
            }
            _ => return Ok(None),
        };
        Ok(Some(ResolvedImage {
            name: name.to_owned(),
            digest: format!("sha256:{}", name.replace(':', "-")),
            config: ImageConfig {
                env: env.iter().map(|s| s.to_string()).collect(),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                working_dir: String::new(),
                on_build: triggers.iter().map(|s| s.to_string()).collect(),
                history: vec![History {
                    created: None,
                    created_by: format!("base layer of {name}"),
                    comment: None,
                    empty_layer: false,
                }],
                ..ImageConfig::default()
            },
        }))
    }
}

/// Options for a Dockerfile named `Dockerfile`, built for linux/arm64/v8.
pub fn opts(build_args: &[(&str, &str)], target: Option<&str>) -> BuildOptions {
    BuildOptions {
        dockerfile_name: "Dockerfile".to_owned(),
        build_args: build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        target: target.map(str::to_owned),
        platform: Some("linux/arm64/v8".to_owned()),
        named_contexts: Default::default(),
    }
}
