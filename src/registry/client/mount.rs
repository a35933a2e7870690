//! Cross-repository mounts (`POST …/blobs/uploads/?mount=DIGEST&from=REPO`).
//!
//! A registry with token auth checks the mount against both repositories:
//! push on the target and pull on `from`. oci-client's mount sends the push
//! token of the target only, which distribution answers with 401, so kiln
//! asks the token server for both scopes itself (as docker does) and sends
//! the mount on its own reqwest client.

use oci_client::secrets::RegistryAuth;
use reqwest::{header, Method, StatusCode};

use super::upload::{Authorization, TIMEOUT};
use super::{Client, RegistryError};

impl Client {
    /// Mount `digest` from the repository `from` into `path`; false when the
    /// registry declined (it then expects an upload).
    pub async fn mount(&self, path: &str, from: &str, digest: &str) -> Result<bool, RegistryError> {
        let auth = match self.authorization(path).await? {
            Authorization::Bearer(push) => {
                let scopes = [format!("repository:{path}:pull,push"), format!("repository:{from}:pull")];
                Authorization::Bearer(self.token(&scopes).await.unwrap_or(push))
            }
            other => other,
        };
        let mut url = self.url(&format!("/v2/{path}/blobs/uploads/"))?;
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from);
        let answer = self.send(self.request(Method::POST, &url, &auth).header(header::CONTENT_LENGTH, 0)).await;
        // 202 (no mount: an upload session opened instead), a refusal (a
        // token that does not reach `from`) or a failure: upload as if no
        // other repository had it; the upload reports what is really wrong.
        Ok(matches!(answer, Ok(r) if r.status() == StatusCode::CREATED))
    }

    /// A bearer token for all of `scopes` (`repository:NAME:ACTIONS`) from
    /// the realm the registry's challenge names; None when it wants no token
    /// or gives none. The credential goes to that realm only, as the
    /// registry asks; nothing of the answer reaches an error.
    async fn token(&self, scopes: &[String]) -> Option<String> {
        let probe = self.http.get(self.url("/v2/").ok()?).timeout(TIMEOUT).send().await.ok()?;
        let challenge = probe.headers().get(header::WWW_AUTHENTICATE)?.to_str().ok()?;
        let params = bearer_challenge(challenge)?;
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
        if let Some(service) = param("service") {
            query.push(("service", service));
        }
        let mut request = self.http.get(param("realm")?).query(&query).timeout(TIMEOUT);
        if let RegistryAuth::Basic(user, secret) = &self.auth {
            request = request.basic_auth(user, Some(secret));
        }
        let answer = request.send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.ok()?).ok()?;
        body.get("token").or_else(|| body.get("access_token"))?.as_str().map(str::to_owned)
    }
}

/// The parameters of a `Bearer` challenge (`Bearer realm="…",service="…"`),
/// names lowercased; None for another scheme or a challenge that does not parse.
fn bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let (scheme, mut rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    rest = rest.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        // A quoted value may hold commas (`scope="repository:a:pull,push"`).
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"')?,
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.push((name.trim().to_ascii_lowercase(), value.to_owned()));
        rest = after.trim_start_matches([',', ' ']);
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read_and_others_are_not() {
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        for (header, want) in [
            (
                r#"Bearer realm="http://127.0.0.1:1/token",service="kiln-test""#,
                Some(pairs(&[("realm", "http://127.0.0.1:1/token"), ("service", "kiln-test")])),
            ),
            (
                r#"bearer Realm="https://auth.example/token", service="r.example", scope="repository:a/b:pull,push""#,
                Some(pairs(&[
                    ("realm", "https://auth.example/token"),
                    ("service", "r.example"),
                    ("scope", "repository:a/b:pull,push"),
                ])),
            ),
            (
                "Bearer realm=https://auth.example/token,service=x",
                Some(pairs(&[("realm", "https://auth.example/token"), ("service", "x")])),
            ),
            (r#"Basic realm="kiln-test""#, None),
            (r#"Bearer realm="unterminated"#, None),
            ("Bearer", None),
        ] {
            assert_eq!(bearer_challenge(header), want, "{header}");
        }
    }
}
