//! Files across domains (the files pack): what `send_file` uploaded, and the HTTP side of
//! XEP-0363 (PUT to a slot, GET of a link). The bytes are checked on arrival by their
//! SHA-256 and the media type by the download's `Content-Type`. Every URL must point at a
//! loopback address: a service that announces another host is a failure, never a request
//! off the machine.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;

use crate::driver::xmpp::files::Slot;

/// Bound on one HTTP transfer.
pub const TRANSFER_BOUND: Duration = Duration::from_secs(30);

/// A file `send_file` uploaded.
#[derive(Clone, Debug)]
pub struct SentFile {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its declared media type.
    pub media_type: String,
    /// Where it can be downloaded.
    pub get_url: String,
}

/// The files of one scenario run, by name, and the HTTP client (made on first use: most
/// runs send no file).
#[derive(Debug, Default)]
pub struct Files {
    /// Uploaded files by name.
    pub sent: BTreeMap<String, SentFile>,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl Files {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .timeout(TRANSFER_BOUND)
                .redirect(reqwest::redirect::Policy::none())
                // A fresh connection per request: a service may close one after refusing a
                // PUT (without reading its body), and the next request must not be sent on it.
                .pool_max_idle_per_host(0)
                .build()
                .expect("HTTP client")
        })
    }
}

/// `size` bytes fixed by `name`: the same file every run, different files for different
/// names (xorshift64*, seeded with the name's FNV-1a hash).
pub fn content(name: &str, size: usize) -> Vec<u8> {
    let mut state = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(size);
    out
}

/// The SHA-256 of `bytes`, in hex.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `url` if it is `http` or `https` to a loopback address (an IP literal or `localhost`).
///
/// # Errors
/// Why it is not.
pub fn loopback_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url}: not an HTTP URL"));
    }
    let host = parsed.host_str().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match literal.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    if !loopback {
        return Err(format!(
            "{url}: the upload service's URL is not on loopback (configure its external URL as \
             http://127.0.0.1:PORT); imfed never connects off the machine"
        ));
    }
    Ok(parsed)
}

/// What a download returned.
#[derive(Debug)]
pub struct Download {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type` without parameters, lowercased.
    pub media_type: Option<String>,
    /// The body.
    pub bytes: Vec<u8>,
}

impl Files {
    /// PUTs `bytes` to `slot` with its headers (or none, with `headers: false`).
    ///
    /// # Errors
    /// A URL off loopback or a transport failure (a refusal is a status, not an error).
    pub async fn put(
        &self,
        slot_url: &str,
        headers: &[(String, String)],
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<StatusCode, String> {
        let url = loopback_url(slot_url)?;
        let mut request = self
            .client()
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(bytes);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request
            .send()
            .await
            .map(|response| response.status())
            .map_err(|error| format!("PUT {slot_url}: {error}"))
    }

    /// Uploads to a granted slot with its headers.
    ///
    /// # Errors
    /// As [`Files::put`], and a status other than 2xx.
    pub async fn upload(
        &self,
        slot: &Slot,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        let status = self
            .put(&slot.put_url, &slot.put_headers, media_type, bytes)
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("PUT {} was answered {status}", slot.put_url))
        }
    }

    /// GETs `url`.
    ///
    /// # Errors
    /// A URL off loopback or a transport failure.
    pub async fn get(&self, url: &str) -> Result<Download, String> {
        let parsed = loopback_url(url)?;
        let response = self
            .client()
            .get(parsed)
            .send()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?;
        let status = response.status();
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let bytes = response
            .bytes()
            .await
            .map_err(|error| format!("GET {url}: reading the body: {error}"))?
            .to_vec();
        Ok(Download {
            status,
            media_type,
            bytes,
        })
    }

    /// Downloads `url` and checks it is `sent` (status 200, same bytes, same media type).
    ///
    /// # Errors
    /// What differs.
    pub async fn check(&self, url: &str, sent: &SentFile) -> Result<(), String> {
        let download = self.get(url).await?;
        if download.status != StatusCode::OK {
            return Err(format!("GET {url} was answered {}", download.status));
        }
        if download.bytes != sent.bytes {
            return Err(format!(
                "the file at {url} is {} bytes with SHA-256 {}, not the {} bytes with SHA-256 {} uploaded",
                download.bytes.len(),
                digest(&download.bytes),
                sent.bytes.len(),
                digest(&sent.bytes)
            ));
        }
        let wanted = sent.media_type.to_ascii_lowercase();
        if download.media_type.as_deref() != Some(wanted.as_str()) {
            return Err(format!(
                "the file at {url} is served as {:?}, not {wanted:?}",
                download.media_type
            ));
        }
        Ok(())
    }
}

/// `url` with the path segment before the file name (the slot's id in every service
/// tested) replaced, so that it names a slot never issued.
pub fn unknown_slot(url: &str) -> Result<String, String> {
    let mut parsed = loopback_url(url)?;
    let mut segments: Vec<String> = parsed
        .path_segments()
        .map(|segments| segments.map(str::to_string).collect())
        .unwrap_or_default();
    if segments.len() < 2 {
        return Err(format!("{url}: no slot segment to replace"));
    }
    let at = segments.len() - 2;
    segments[at] = format!("imfed-never-issued-{}", crate::driver::random_token(12));
    parsed.set_path(&segments.join("/"));
    Ok(parsed.to_string())
}

/// Bound on each XMPP request of the files steps (service discovery, a slot).
const REQUEST_BOUND: Duration = Duration::from_secs(10);

impl Files {
    /// `send_file`: a slot from the sender's service, the upload, the link to `to`.
    ///
    /// # Errors
    /// Which part failed, in words.
    pub async fn send(
        &mut self,
        session: &mut crate::driver::xmpp::Session,
        to: &imfed_model::Address,
        name: &str,
        media_type: &str,
        size: u32,
    ) -> Result<(), String> {
        use crate::driver::xmpp::files::SlotAnswer;
        let service = session
            .upload_service(REQUEST_BOUND)
            .await
            .map_err(|error| error.to_string())?;
        let slot = match session
            .request_slot(&service, name, u64::from(size), media_type, REQUEST_BOUND)
            .await
            .map_err(|error| error.to_string())?
        {
            SlotAnswer::Granted(slot) => slot,
            SlotAnswer::Refused {
                condition, text, ..
            } => {
                return Err(format!(
                    "{} refused a slot for {name} ({size} bytes, {media_type}): {condition}: {text}",
                    service.jid
                ));
            }
        };
        let bytes = content(name, size as usize);
        self.upload(&slot, media_type, bytes.clone()).await?;
        session
            .send_file_link(to, &slot.get_url)
            .await
            .map_err(|error| error.to_string())?;
        self.sent.insert(
            name.to_string(),
            SentFile {
                bytes,
                media_type: media_type.to_string(),
                get_url: slot.get_url,
            },
        );
        Ok(())
    }

    fn sent(&self, name: &str) -> Result<&SentFile, String> {
        self.sent
            .get(name)
            .ok_or_else(|| format!("no file {name:?} was sent in this run"))
    }

    /// `expect_file`: the link from `from`, and the file behind it.
    ///
    /// # Errors
    /// No link in time, or a file that is not the one sent.
    pub async fn receive(
        &self,
        session: &mut crate::driver::xmpp::Session,
        from: &imfed_model::Address,
        name: &str,
        within: Duration,
    ) -> Result<(), String> {
        let sent = self.sent(name)?;
        let url = session
            .wait_file_link(from, within)
            .await
            .map_err(|error| error.to_string())?;
        self.check(&url, sent).await
    }

    /// `upload_probe`: one rule of the actor's service.
    ///
    /// # Errors
    /// How the service broke the rule.
    pub async fn probe(
        &self,
        session: &mut crate::driver::xmpp::Session,
        rule: crate::scenario::model::UploadRule,
        name: Option<&str>,
    ) -> Result<(), String> {
        use crate::driver::xmpp::files::SlotAnswer;
        use crate::scenario::model::UploadRule;
        match rule {
            UploadRule::OverLimit => {
                let service = session
                    .upload_service(REQUEST_BOUND)
                    .await
                    .map_err(|error| error.to_string())?;
                let Some(max) = service.max_bytes else {
                    return Err(format!(
                        "{} announces no max-file-size in its disco#info form (XEP-0363 §3)",
                        service.jid
                    ));
                };
                let answer = session
                    .request_slot(
                        &service,
                        "imfed-over-limit.bin",
                        max + 1,
                        "application/octet-stream",
                        REQUEST_BOUND,
                    )
                    .await
                    .map_err(|error| error.to_string())?;
                match answer {
                    SlotAnswer::Refused {
                        max_bytes: Some(named),
                        ..
                    } if named == max => Ok(()),
                    SlotAnswer::Refused {
                        max_bytes, text, ..
                    } => Err(format!(
                        "a slot for {} bytes (the announced limit {max} + 1) was refused, but {}: {text}",
                        max + 1,
                        match max_bytes {
                            Some(named) => format!("<file-too-large/> names {named} bytes"),
                            None => "without <file-too-large/> and its max-file-size".to_string(),
                        }
                    )),
                    SlotAnswer::Granted(slot) => Err(format!(
                        "a slot for {} bytes, over the announced limit of {max}, was granted: {}",
                        max + 1,
                        slot.put_url
                    )),
                }
            }
            UploadRule::UnknownDownload => {
                let sent = self.sent(name.unwrap_or_default())?;
                let url = unknown_slot(&sent.get_url)?;
                let download = self.get(&url).await?;
                if download.status == StatusCode::NOT_FOUND {
                    Ok(())
                } else {
                    Err(format!(
                        "GET {url}, a slot never issued, was answered {} ({} bytes), not 404",
                        download.status,
                        download.bytes.len()
                    ))
                }
            }
            UploadRule::RecipientPut => {
                let name = name.unwrap_or_default();
                let sent = self.sent(name)?;
                let forged = content(&format!("{name}-overwritten"), sent.bytes.len());
                let status = self
                    .put(&sent.get_url, &[], &sent.media_type, forged)
                    .await?;
                if !status.is_client_error() {
                    return Err(format!(
                        "a PUT of other bytes to {} without the uploader's headers was answered {status}, not refused",
                        sent.get_url
                    ));
                }
                self.check(&sent.get_url, sent)
                    .await
                    .map_err(|error| format!("after a refused PUT by the recipient: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_fixed_by_name_and_size() {
        assert_eq!(content("a.txt", 100), content("a.txt", 100));
        assert_ne!(content("a.txt", 100), content("b.txt", 100));
        assert_eq!(content("a.txt", 3).len(), 3);
        assert_eq!(&content("a.txt", 100)[..3], &content("a.txt", 3)[..]);
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_loopback_urls_are_fetched() {
        assert!(loopback_url("http://127.0.0.1:5280/upload/x/a.txt").is_ok());
        assert!(loopback_url("http://[::1]:5280/a").is_ok());
        assert!(loopback_url("http://localhost/a").is_ok());
        for bad in [
            "http://upload.example.com/a",
            "http://10.0.0.1/a",
            "ftp://127.0.0.1/a",
            "nonsense",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad}");
        }
        let unknown = unknown_slot("http://127.0.0.1:1/upload/abc/f.txt").unwrap();
        assert!(unknown.starts_with("http://127.0.0.1:1/upload/imfed-never-issued-"));
        assert!(unknown.ends_with("/f.txt"));
    }
}
