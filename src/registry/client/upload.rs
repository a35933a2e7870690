//! Blob uploads in chunks that resume where a dropped connection left them.
//!
//! The distribution protocol's chunked upload: `POST …/blobs/uploads/` opens
//! a session (its URL in `Location`), each `PATCH` to it carries the next
//! bytes with `Content-Range: start-end`, and `PUT …?digest=` closes it. When
//! a PATCH breaks off, a `GET` of the session URL says how much the registry
//! kept (`Range: 0-last`), and the upload goes on from there: it never starts
//! over. oci-client's chunked upload keeps the offset itself and cannot ask,
//! so these requests are kiln's own, on the reqwest client oci-client already
//! pulls in (docs/registry.md).

use std::time::Duration;

use bytes::Bytes;
use oci_client::secrets::RegistryAuth;
use reqwest::{header, Method, StatusCode, Url};

use super::{BoxError, Client, RegistryError, ATTEMPTS, FIRST_BACKOFF};

/// Bytes per PATCH: what a dropped connection can cost at most, and at least
/// what registries on S3 need for every chunk but the last (5 MiB).
pub const CHUNK: usize = 8 << 20;

/// How long one request may take, a chunk included.
pub(super) const TIMEOUT: Duration = Duration::from_secs(120);

/// How requests of one upload authenticate.
pub(super) enum Authorization {
    Anonymous,
    Basic(String, String),
    Bearer(String),
}

/// Why a request of the upload did not succeed.
pub(super) enum Failure {
    /// The connection dropped, timed out, or the registry answered 5xx: ask
    /// where the upload stands and go on.
    Dropped(BoxError),
    /// The registry refused for good.
    Refused(RegistryError),
}

/// An open upload session: where its next request goes.
struct Session {
    url: Url,
}

impl Client {
    /// Upload `data` (the blob `digest`) to the repository `path`, in chunks
    /// that resume after a dropped connection.
    pub async fn upload(&self, path: &str, data: Bytes, digest: &str) -> Result<(), RegistryError> {
        let auth = self.authorization(path).await?;
        let size = data.len() as u64;
        let mut session = self.open(path, digest, &auth).await?;
        let mut offset = 0u64;
        // Whether `offset` is what the registry holds; after a dropped
        // request it has to be asked.
        let mut known = true;
        let mut attempt = 1;
        let mut backoff = FIRST_BACKOFF;
        while offset < size || !known {
            let step = if known {
                let end = size.min(offset + CHUNK as u64);
                let chunk = data.slice(offset as usize..end as usize);
                self.patch(&session, chunk, offset, &auth).await.map(|(next, kept)| (next, kept.unwrap_or(end)))
            } else {
                self.status(&session, &auth).await
            };
            let cause = match step {
                Ok((next, kept)) => {
                    (session, offset, known) = (next, kept, true);
                    continue;
                }
                Err(Failure::Refused(e)) if known => return Err(e),
                // The registry dropped the session: distribution cancels one
                // whose stored size differs from what its last answer said,
                // as after a body cut short. This blob starts over.
                Err(Failure::Refused(e)) => {
                    session = self.open(path, digest, &auth).await?;
                    (offset, known) = (0, true);
                    e.into()
                }
                Err(Failure::Dropped(cause)) => {
                    known = false;
                    cause
                }
            };
            if attempt == ATTEMPTS {
                return Err(RegistryError::UploadBroke {
                    host: self.endpoint.clone(),
                    digest: digest.to_owned(),
                    offset,
                    size,
                    attempts: attempt,
                    source: cause,
                });
            }
            attempt += 1;
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        self.close(&session, path, digest, &auth).await
    }

    /// How requests that push to `path` authenticate: a push token when the
    /// registry gives one, else the credential itself.
    pub(super) async fn authorization(&self, path: &str) -> Result<Authorization, RegistryError> {
        let token = self.authorize(&self.reference(path, None, None)).await?;
        Ok(match (token, &self.auth) {
            (Some(token), _) => Authorization::Bearer(token),
            (None, RegistryAuth::Basic(user, secret)) => Authorization::Basic(user.clone(), secret.clone()),
            (None, _) => Authorization::Anonymous,
        })
    }

    /// `POST …/blobs/uploads/`: a new session.
    async fn open(&self, path: &str, digest: &str, auth: &Authorization) -> Result<Session, RegistryError> {
        let url = self.url(&format!("/v2/{path}/blobs/uploads/"))?;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let answer = self.send(self.request(Method::POST, &url, auth).header(header::CONTENT_LENGTH, 0)).await;
            let failure = match answer {
                Ok(r) if r.status() == StatusCode::ACCEPTED => {
                    return self.next(&url, &r).map_err(|f| self.final_error(f, "to open an upload"))
                }
                Ok(r) => self.refusal(r, || format!("to open an upload of blob {digest}")).await,
                Err(f) => f,
            };
            match failure {
                Failure::Dropped(source) if attempt == ATTEMPTS => {
                    return Err(RegistryError::Unreachable { host: self.endpoint.clone(), attempts: ATTEMPTS, source })
                }
                Failure::Dropped(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Failure::Refused(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// One `PATCH` of `chunk`, which starts at `offset`: the session's next
    /// URL and how much the registry now holds (when it says).
    async fn patch(
        &self,
        session: &Session,
        chunk: Bytes,
        offset: u64,
        auth: &Authorization,
    ) -> Result<(Session, Option<u64>), Failure> {
        let last = offset + chunk.len() as u64 - 1;
        let request = self
            .request(Method::PATCH, &session.url, auth)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_RANGE, format!("{offset}-{last}"))
            .header(header::CONTENT_LENGTH, chunk.len())
            .body(chunk);
        let answer = self.send(request).await?;
        if answer.status() != StatusCode::ACCEPTED {
            return Err(self.refusal(answer, || format!("to take bytes {offset}-{last} of an upload")).await);
        }
        let kept = kept(answer.headers());
        Ok((self.next(&session.url, &answer)?, kept))
    }

    /// `GET` of the session: how much of the upload the registry holds.
    async fn status(&self, session: &Session, auth: &Authorization) -> Result<(Session, u64), Failure> {
        let answer = self.send(self.request(Method::GET, &session.url, auth)).await?;
        if !matches!(answer.status(), StatusCode::NO_CONTENT | StatusCode::OK) {
            return Err(self.refusal(answer, || "to say where an upload stands".into()).await);
        }
        let kept = kept(answer.headers()).unwrap_or(0);
        Ok((self.next(&session.url, &answer)?, kept))
    }

    /// `PUT …?digest=`: the upload is complete, the registry checks the digest.
    async fn close(
        &self,
        session: &Session,
        path: &str,
        digest: &str,
        auth: &Authorization,
    ) -> Result<(), RegistryError> {
        let mut url = session.url.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let request = self.request(Method::PUT, &url, auth).header(header::CONTENT_LENGTH, 0);
        match self.send(request).await {
            Ok(r) if r.status() == StatusCode::CREATED => Ok(()),
            Ok(r) => {
                let failure = self.refusal(r, || format!("to take blob {digest}")).await;
                Err(self.final_error(failure, format!("to take blob {digest}")))
            }
            // The answer may be what was lost: the blob is there or it is not.
            Err(Failure::Dropped(source)) => match self.has_blob(path, digest).await {
                Ok(true) => Ok(()),
                _ => Err(RegistryError::Protocol {
                    host: self.endpoint.clone(),
                    what: format!("to take blob {digest}"),
                    source,
                }),
            },
            Err(f) => Err(self.final_error(f, format!("to take blob {digest}"))),
        }
    }

    /// `path` (absolute, from `/v2/`) at this endpoint.
    pub(super) fn url(&self, path: &str) -> Result<Url, RegistryError> {
        Url::parse(&format!("{}://{}{path}", self.scheme, self.endpoint)).map_err(|e| RegistryError::Protocol {
            host: self.endpoint.clone(),
            what: "to be named by a URL".into(),
            source: e.into(),
        })
    }

    /// A request of the upload; the credential only goes to this endpoint,
    /// never to another host a `Location` may name.
    pub(super) fn request(&self, method: Method, url: &Url, auth: &Authorization) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url.clone()).timeout(TIMEOUT);
        let ours = self.url("/").is_ok_and(|base| base.origin() == url.origin());
        match auth {
            Authorization::Bearer(token) if ours => request.bearer_auth(token),
            Authorization::Basic(user, secret) if ours => request.basic_auth(user, Some(secret)),
            _ => request,
        }
    }

    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        request.send().await.map_err(|e| Failure::Dropped(e.into()))
    }

    /// The failure an answer other than the expected one means.
    async fn refusal(&self, answer: reqwest::Response, what: impl Fn() -> String) -> Failure {
        let status = answer.status();
        if status.is_server_error() {
            return Failure::Dropped(format!("it answered {status}").into());
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Failure::Refused(RegistryError::Unauthorized { host: self.host.clone() });
        }
        let body = answer.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        Failure::Refused(RegistryError::Protocol {
            host: self.endpoint.clone(),
            what: what(),
            source: format!("it answered {status}: {}", body.trim()).into(),
        })
    }

    /// `failure` as the error of the upload, when no retry is left.
    fn final_error(&self, failure: Failure, what: impl Into<String>) -> RegistryError {
        match failure {
            Failure::Refused(e) => e,
            Failure::Dropped(source) => {
                RegistryError::Protocol { host: self.endpoint.clone(), what: what.into(), source }
            }
        }
    }

    /// The session's URL for the next request: the answer's `Location`,
    /// relative to the one it answered.
    fn next(&self, current: &Url, answer: &reqwest::Response) -> Result<Session, Failure> {
        let location = answer.headers().get(header::LOCATION).and_then(|l| l.to_str().ok());
        let Some(location) = location else {
            return Ok(Session { url: current.clone() });
        };
        current.join(location).map(|url| Session { url }).map_err(|e| {
            Failure::Refused(RegistryError::Protocol {
                host: self.endpoint.clone(),
                what: "to name its upload session".into(),
                source: e.into(),
            })
        })
    }
}

/// How many bytes the registry holds, from a `Range: 0-<last>` header
/// (docker's `bytes=` prefix allowed). `0-0` is read as nothing: the
/// registry writes it for an empty upload, and resending one byte is cheap.
fn kept(headers: &header::HeaderMap) -> Option<u64> {
    let range = headers.get(header::RANGE)?.to_str().ok()?;
    let range = range.trim().trim_start_matches("bytes=");
    let (start, last) = range.split_once('-')?;
    let (start, last): (u64, u64) = (start.trim().parse().ok()?, last.trim().parse().ok()?);
    match (start, last) {
        (0, 0) => Some(0),
        (0, last) => Some(last + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_a_registry_reports_says_how_much_it_holds() {
        for (range, want) in [
            (Some("0-1023"), Some(1024)),
            (Some("bytes=0-99"), Some(100)),
            (Some("0-0"), Some(0)),
            (Some("5-10"), None),
            (Some("nonsense"), None),
            (None, None),
        ] {
            let mut headers = header::HeaderMap::new();
            if let Some(r) = range {
                headers.insert(header::RANGE, r.parse().unwrap());
            }
            assert_eq!(kept(&headers), want, "{range:?}");
        }
    }
}
