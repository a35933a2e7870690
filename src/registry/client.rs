//! One registry host, as the distribution protocol sees it.
//!
//! `oci-client` speaks most of the protocol (manifests, blobs, the
//! bearer-token dance); this wraps it with what kiln adds: which scheme a
//! host gets, which CAs it is trusted with, which credential it is sent,
//! bounded retries, and errors that name the host and say what to do
//! (`log in to HOST with kiln login`). Uploads (`upload`) and
//! cross-repository mounts (`mount`) are kiln's own requests.

use std::future::Future;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;

mod mount;
mod upload;

pub use upload::CHUNK;

use super::auth::Credential;
use super::RegistryConfig;
use crate::store::StoreError;

/// docker's registry, as references name it.
pub const DOCKER_HUB: &str = "docker.io";

/// Attempts at one request before its error is final (connection errors, 5xx).
const ATTEMPTS: u32 = 4;
/// The wait before the first retry; doubled before each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors talking to registries, and pulling or pushing through them.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("starting the registry client's threads")]
    Runtime(#[source] std::io::Error),
    #[error("invalid platform {0:?}: write os/arch[/variant], as linux/arm64")]
    Platform(String),
    #[error("reading the credentials file {path}")]
    AuthFile {
        path: std::path::PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("the credentials of {host} in {path} are not base64 of user:password")]
    BadAuthEntry { path: std::path::PathBuf, host: String },
    #[error("the credential helper {helper} failed for {host}: {why}")]
    Helper { helper: String, host: String, why: String },
    #[error("no docker config file to keep credentials in (set HOME or DOCKER_CONFIG)")]
    NoAuthFile,
    #[error("reading the CA certificates {path} for {host}")]
    Ca {
        host: String,
        path: std::path::PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("cannot reach the registry {host} (tried {attempts} times)")]
    Unreachable {
        host: String,
        attempts: u32,
        #[source]
        source: BoxError,
    },
    #[error("{host} refused access: log in to {host} with kiln login")]
    Unauthorized { host: String },
    #[error("the registry {host} failed {what}")]
    Protocol {
        host: String,
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("the upload of blob {digest} to {host} broke off at byte {offset} of {size} and could not resume ({attempts} attempts)")]
    UploadBroke {
        host: String,
        digest: String,
        offset: u64,
        size: u64,
        attempts: u32,
        #[source]
        source: BoxError,
    },
    #[error("{reference} was not found on {host}")]
    NotFound { reference: String, host: String },
    #[error("manifest {digest} has media type {media_type:?}, which kiln cannot read")]
    MediaType { digest: String, media_type: String },
    #[error("{reference} has no image for {platform} (it has: {available})")]
    NoPlatform { reference: String, platform: String, available: String },
    #[error("{what} {digest} is not valid JSON")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {expected} from {host} failed verification: its content hashes to {actual}")]
    DigestMismatch { host: String, expected: String, actual: String },
    #[error("the image {0} is not in the store and --pull=never forbids pulling it")]
    PullNever(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    ImageIo(#[from] crate::image_io::ImageIoError),
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error("writing blob {digest} into the store")]
    Write {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer} cannot be extracted, so no container could use it")]
    Unusable {
        layer: String,
        #[source]
        source: crate::snapshot::SnapshotError,
    },
    #[error("preparing the layers for the push")]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error("layer {layer}: its content hashes to {actual}, its image config says {expected}")]
    DiffId { layer: String, expected: String, actual: String },
}

/// The reading end of [`Client::blob_to`]: chunks as they arrive.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Whether `host` answers plain http only to say it wants TLS (Go's servers
/// answer 400 "Client sent an HTTP request to an HTTPS server"), or does not
/// answer plain http at all: then an https failure (an untrusted certificate,
/// say) is the error worth reporting, not a confusing plain-http one.
async fn speaks_only_tls(http: &reqwest::Client, host: &str) -> bool {
    match http.get(format!("http://{host}/v2/")).timeout(Duration::from_secs(5)).send().await {
        Ok(answer) if answer.status() == reqwest::StatusCode::BAD_REQUEST => {
            answer.text().await.is_ok_and(|body| body.contains("HTTPS server"))
        }
        Ok(_) => false,
        Err(_) => true,
    }
}

/// Whether `host` is this machine: plain http is allowed there.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || name.ends_with(".localhost")
}

/// One registry endpoint with its credential.
pub struct Client {
    /// The host references name (`docker.io`): what errors and credentials use.
    pub host: String,
    /// Where requests go: the host, or a mirror of it.
    endpoint: String,
    oci: oci_client::Client,
    http: reqwest::Client,
    scheme: &'static str,
    auth: RegistryAuth,
}

/// The ring crypto provider, installed once: reqwest is built without one, as
/// its default (aws-lc-rs) wants cmake and a long C build.
fn crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Client {
    /// A client for `host` (`docker.io`, `127.0.0.1:5000`) reached at
    /// `endpoint` (the host itself, or a mirror: `http://127.0.0.1:5000`).
    /// Plain http when the endpoint says `http://`, or for a loopback or
    /// insecure host whose https does not answer (as docker does).
    pub async fn connect(config: &RegistryConfig, host: &str, endpoint: &str) -> Result<Self, RegistryError> {
        crypto_provider();
        let (forced, bare) = match endpoint.split_once("://") {
            Some(("http", rest)) => (Some("http"), rest),
            Some((_, rest)) => (Some("https"), rest),
            None => (None, endpoint),
        };
        let bare = bare.trim_end_matches('/').to_owned();
        let settings = config.host(&bare);
        let certs = ca_certificates(config, &bare, settings.ca.as_deref())?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")));
        if !certs.is_empty() {
            let pem: Vec<reqwest::Certificate> = certs
                .iter()
                .map(|c| reqwest::Certificate::from_pem_bundle(&c.data))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RegistryError::Ca { host: bare.clone(), path: "".into(), source: e.into() })?
                .into_iter()
                .flatten()
                .collect();
            http = http.tls_certs_merge(pem);
        }
        let http = http.build().map_err(|e| RegistryError::Protocol {
            host: bare.clone(),
            what: "to set up its client".into(),
            source: e.into(),
        })?;
        let scheme = match forced {
            Some(s) => s,
            None if settings.insecure || is_loopback(&bare) => {
                let probe = http.get(format!("https://{bare}/v2/")).timeout(Duration::from_secs(5)).send().await;
                if probe.is_ok() || speaks_only_tls(&http, &bare).await {
                    "https"
                } else {
                    "http"
                }
            }
            None => "https",
        };
        let oci = oci_client::Client::try_from(ClientConfig {
            protocol: if scheme == "http" { ClientProtocol::Http } else { ClientProtocol::Https },
            extra_root_certificates: certs,
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        })
        .map_err(|e| RegistryError::Protocol {
            host: bare.clone(),
            what: "to set up its client".into(),
            source: e.into(),
        })?;
        // The endpoint's own credential: a mirror is not sent the upstream's.
        let auth = match config.auth.credential(&bare)? {
            Some(Credential { username, secret }) => RegistryAuth::Basic(username, secret),
            None => RegistryAuth::Anonymous,
        };
        let client = Self { host: host.to_owned(), endpoint: bare, oci, http, scheme, auth };
        let probe = client.reference("kiln/probe", Some("latest"), None);
        client.oci.store_auth_if_needed(probe.resolve_registry(), &client.auth).await;
        Ok(client)
    }

    /// A client for `host` itself.
    pub async fn for_host(config: &RegistryConfig, host: &str) -> Result<Self, RegistryError> {
        Self::connect(config, host, host).await
    }

    /// Where requests go (the host or its mirror).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `path[:tag][@digest]` at this endpoint, as oci-client names it.
    pub(crate) fn reference(&self, path: &str, tag: Option<&str>, digest: Option<&str>) -> oci_client::Reference {
        let (registry, path) = (self.endpoint.clone(), path.to_owned());
        match (tag, digest) {
            (Some(t), Some(d)) => oci_client::Reference::with_tag_and_digest(registry, path, t.into(), d.into()),
            (None, Some(d)) => oci_client::Reference::with_digest(registry, path, d.into()),
            (t, None) => oci_client::Reference::with_tag(registry, path, t.unwrap_or("latest").into()),
        }
    }

    /// Run `call` until it succeeds, fails for good, or runs out of attempts
    /// (connection errors and 5xx are retried, with backoff); its error named
    /// by this host and `what` it was doing.
    pub(crate) async fn retry<T, F, Fut>(&self, what: impl Fn() -> String, mut call: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            match classify(&error) {
                Kind::Unauthorized => return Err(RegistryError::Unauthorized { host: self.host.clone() }),
                Kind::Transient if attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Kind::Transient if is_connection(&error) => {
                    return Err(RegistryError::Unreachable {
                        host: self.endpoint.clone(),
                        attempts: ATTEMPTS,
                        source: error.into(),
                    })
                }
                _ => {
                    return Err(RegistryError::Protocol {
                        host: self.endpoint.clone(),
                        what: what(),
                        source: error.into(),
                    })
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The manifest `path:reference` names, raw, accepting `accept`; with its digest.
    pub async fn manifest(
        &self,
        path: &str,
        tag: Option<&str>,
        digest: Option<&str>,
        accept: &[&str],
    ) -> Result<(bytes::Bytes, String), RegistryError> {
        let reference = self.reference(path, tag, digest);
        let result = self
            .retry(
                || format!("to send the manifest of {reference}"),
                || self.oci.pull_manifest_raw(&reference, &self.auth, accept),
            )
            .await;
        match result {
            Err(RegistryError::Protocol { source, .. }) if is_not_found(&*source) => {
                Err(RegistryError::NotFound { reference: reference.whole(), host: self.endpoint.clone() })
            }
            other => other,
        }
    }

    /// A blob's content as a stream.
    pub async fn blob(&self, path: &str, digest: &str) -> Result<oci_client::client::SizedStream, RegistryError> {
        let reference = self.reference(path, None, Some(digest));
        let descriptor = oci_client::manifest::OciDescriptor { digest: digest.to_owned(), ..Default::default() };
        self.retry(|| format!("to send blob {digest}"), || self.oci.pull_blob_stream(&reference, &descriptor)).await
    }

    /// Stream the blob `digest` of the repository `path` into `out`; a write
    /// failure is [`RegistryError::Write`], a broken stream names the host.
    pub async fn blob_into(
        &self,
        path: &str,
        digest: &str,
        out: &mut impl std::io::Write,
    ) -> Result<(), RegistryError> {
        use futures_util::StreamExt as _;
        let mut stream = self.blob(path, digest).await?.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Protocol {
                host: self.endpoint().to_owned(),
                what: format!("to send blob {digest}"),
                source: e.into(),
            })?;
            out.write_all(&chunk).map_err(|source| RegistryError::Write { digest: digest.to_owned(), source })?;
        }
        Ok(())
    }

    /// Stream the blob `digest` of the repository `path` into `ingest`, which
    /// reads it on a blocking thread as it arrives (a content
    /// [`crate::content::Ingester`]'s writes block; no temp file, and other
    /// downloads go on meanwhile); what `ingest` returned. A broken download
    /// is the error, naming the host, whatever `ingest` made of it.
    pub async fn blob_to<T: Send + 'static>(
        &self,
        path: &str,
        digest: &str,
        ingest: impl FnOnce(&mut dyn std::io::Read) -> T + Send + 'static,
    ) -> Result<T, RegistryError> {
        use futures_util::StreamExt as _;
        let mut stream = self.blob(path, digest).await?.stream;
        let (chunks, rx) = tokio::sync::mpsc::channel(4);
        let ingesting =
            tokio::task::spawn_blocking(move || ingest(&mut ChunkReader { rx, chunk: bytes::Bytes::new() }));
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let message = std::io::Error::other(e.to_string());
                failure = Some(RegistryError::Protocol {
                    host: self.endpoint().to_owned(),
                    what: format!("to send blob {digest}"),
                    source: e.into(),
                });
                message
            });
            let broken = chunk.is_err();
            // A send fails when `ingest` stopped reading: its result says why.
            if chunks.send(chunk).await.is_err() || broken {
                break;
            }
        }
        drop(chunks);
        let ingested = ingesting.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        failure.map_or(Ok(ingested), Err)
    }

    /// Whether the repository `path` has the blob `digest` (a HEAD request).
    pub async fn has_blob(&self, path: &str, digest: &str) -> Result<bool, RegistryError> {
        let reference = self.reference(path, None, None);
        self.authorize(&reference).await?;
        self.retry(|| format!("to say whether it has blob {digest}"), || self.oci.blob_exists(&reference, digest)).await
    }

    /// Ask for a push token first, so uploads and mounts carry push scope;
    /// the bearer token, when the registry gives one.
    async fn authorize(&self, reference: &oci_client::Reference) -> Result<Option<String>, RegistryError> {
        self.retry(
            || format!("to authorize a push to {}", reference.repository()),
            || self.oci.auth(reference, &self.auth, RegistryOperation::Push),
        )
        .await
    }

    /// Put a manifest under `path:tag`.
    pub async fn put_manifest(
        &self,
        path: &str,
        tag: &str,
        body: bytes::Bytes,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let reference = self.reference(path, Some(tag), None);
        self.authorize(&reference).await?;
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|e| RegistryError::Protocol {
            host: self.endpoint.clone(),
            what: "to take the manifest".into(),
            source: e.into(),
        })?;
        self.retry(
            || format!("to take the manifest of {reference}"),
            || self.oci.push_manifest_raw(&reference, body.clone(), content_type.clone()),
        )
        .await
        .map(drop)
    }

    /// Every repository of the registry's catalog.
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        let reference = self.reference("kiln/catalog", None, None);
        let mut all = Vec::new();
        loop {
            let last = all.last().cloned();
            let page = self
                .retry(
                    || "to list its repositories".into(),
                    || self.oci.catalog(&reference, &self.auth, Some(1000), last.as_deref()),
                )
                .await?;
            let done = page.repositories.len() < 1000;
            all.extend(page.repositories);
            if done {
                return Ok(all);
            }
        }
    }

    /// The tags of `path`.
    pub async fn tags(&self, path: &str) -> Result<Vec<String>, RegistryError> {
        let reference = self.reference(path, None, None);
        let page = self
            .retry(|| format!("to list the tags of {path}"), || self.oci.list_tags(&reference, &self.auth, None, None))
            .await?;
        Ok(page.tags)
    }

    /// Check `credential` against the registry (what `kiln login` does before
    /// it keeps one): basic auth on `/v2/`, or a token for it.
    pub async fn verify(&self, credential: &Credential) -> Result<(), RegistryError> {
        let url = format!("{}://{}/v2/", self.scheme, self.endpoint);
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            host: self.endpoint.clone(),
            attempts: 1,
            source: e.into(),
        };
        let answer = self
            .http
            .get(&url)
            .basic_auth(&credential.username, Some(&credential.secret))
            .send()
            .await
            .map_err(unreachable)?;
        let bearer = answer
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.to_ascii_lowercase().starts_with("bearer"));
        if answer.status().is_success() {
            return Ok(());
        }
        if answer.status() == reqwest::StatusCode::UNAUTHORIZED && bearer {
            let reference = self.reference("kiln/login", None, None);
            let auth = RegistryAuth::Basic(credential.username.clone(), credential.secret.clone());
            return match self.oci.auth(&reference, &auth, RegistryOperation::Pull).await {
                Ok(_) => Ok(()),
                Err(_) => Err(RegistryError::Unauthorized { host: self.host.clone() }),
            };
        }
        if matches!(answer.status().as_u16(), 401 | 403) {
            return Err(RegistryError::Unauthorized { host: self.host.clone() });
        }
        Err(RegistryError::Protocol {
            host: self.endpoint.clone(),
            what: "to check the credential".into(),
            source: format!("it answered {}", answer.status()).into(),
        })
    }
}

/// The extra CAs for `host`: the config's `ca`, else `<certs_dir>/<host>/ca.crt`.
fn ca_certificates(
    config: &RegistryConfig,
    host: &str,
    configured: Option<&std::path::Path>,
) -> Result<Vec<Certificate>, RegistryError> {
    let default = config.certs_dir.join(host).join("ca.crt");
    let path = match configured {
        Some(p) => p.to_owned(),
        None if default.is_file() => default,
        None => return Ok(Vec::new()),
    };
    let data = std::fs::read(&path).map_err(|e| RegistryError::Ca {
        host: host.to_owned(),
        path: path.clone(),
        source: e.into(),
    })?;
    Ok(vec![Certificate { encoding: CertificateEncoding::Pem, data }])
}

enum Kind {
    Unauthorized,
    Transient,
    Final,
}

fn classify(error: &OciDistributionError) -> Kind {
    match error {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            Kind::Unauthorized
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            Kind::Unauthorized
        }
        OciDistributionError::ServerError { code: 401 | 403, .. } => Kind::Unauthorized,
        OciDistributionError::ServerError { code, .. } if *code >= 500 => Kind::Transient,
        OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) => {
            Kind::Unauthorized
        }
        OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s.is_server_error()) => Kind::Transient,
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() || e.is_request() => Kind::Transient,
        _ => Kind::Final,
    }
}

fn is_connection(error: &OciDistributionError) -> bool {
    matches!(error, OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() || e.is_request())
}

fn is_not_found(error: &(dyn std::error::Error + 'static)) -> bool {
    match error.downcast_ref::<OciDistributionError>() {
        Some(OciDistributionError::ImageManifestNotFoundError(_)) => true,
        Some(OciDistributionError::ServerError { code: 404, .. }) => true,
        Some(OciDistributionError::RegistryError { envelope, .. }) => {
            envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_reader_reads_the_chunks_in_order_and_stops_at_a_broken_one() {
        let broken = || Err(std::io::Error::other("cut"));
        for (chunks, want) in
            [(vec![Ok("ab"), Ok(""), Ok("cde")], Some("abcde")), (vec![], Some("")), (vec![Ok("ab"), broken()], None)]
        {
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            for chunk in chunks {
                tx.try_send(chunk.map(|c: &'static str| bytes::Bytes::from_static(c.as_bytes()))).unwrap();
            }
            drop(tx);
            let mut got = String::new();
            let read = std::io::Read::read_to_string(&mut ChunkReader { rx, chunk: bytes::Bytes::new() }, &mut got);
            assert_eq!(read.ok().map(|_| got.as_str()), want);
        }
    }

    #[test]
    fn loopback_hosts_are_told_apart() {
        for (host, want) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("registry.localhost", true),
            ("10.0.0.1:5000", false),
            ("docker.io", false),
            ("localhost.example:5000", false),
        ] {
            assert_eq!(is_loopback(host), want, "{host}");
        }
    }
}
