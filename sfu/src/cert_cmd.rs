//! `sfu cert --self-signed HOST...`: a certificate and key for trying the
//! server over HTTPS, e.g. from another machine on the local network.
//!
//! The certificate names every HOST (DNS names and IP addresses) as a
//! subject alternative name, is for server authentication only (not a
//! CA), and is valid from a day ago for [`VALIDITY_DAYS`], within the
//! 398 days browsers accept. Its key is a new ECDSA P-256 key. Browsers
//! warn about it until it is trusted: fine for a test, not for people
//! joining a real meeting (use a certificate from a public CA such as
//! Let's Encrypt there).
//!
//! ```
//! let pair = sfu::cert_cmd::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
//! assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(pair.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
//! ```

use anyhow::Context as _;
use clap::Args;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::ServerName;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a self-signed certificate is valid.
pub const VALIDITY_DAYS: u64 = 365;

/// The certificate's file name in the output directory.
pub const CERT_FILE: &str = "cert.pem";
/// The key's file name in the output directory.
pub const KEY_FILE: &str = "key.pem";

/// Arguments of `sfu cert`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct CertArgs {
    /// Make a self-signed certificate for these host names and IP addresses
    /// (e.g. localhost 127.0.0.1 192.0.2.10 sfu.lan): the names clients
    /// will use in https:// and wss:// URLs.
    #[arg(long = "self-signed", value_name = "HOST", num_args = 1.., required = true)]
    pub self_signed: Vec<String>,

    /// Directory to write cert.pem and key.pem to (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out_dir: PathBuf,

    /// Replace cert.pem and key.pem if they exist.
    #[arg(long)]
    pub force: bool,
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct PemPair {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A self-signed server certificate for `hosts` and its new key. Each host
/// must be a DNS name or an IP address.
pub fn self_signed(hosts: &[String]) -> anyhow::Result<PemPair> {
    let Some(first) = hosts.first() else {
        anyhow::bail!("name at least one host");
    };
    let mut params = CertificateParams::default();
    for host in hosts {
        params.subject_alt_names.push(san(host)?);
    }
    params
        .distinguished_name
        .push(DnType::CommonName, format!("sfu self-signed {first}"));
    // A server certificate, not a CA: browsers refuse a CA certificate as
    // a server's own, and want the serverAuth purpose.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    params.not_before = (now - day).into();
    params.not_after = (now + day * u32::try_from(VALIDITY_DAYS).unwrap_or(365)).into();
    let key = KeyPair::generate().context("cannot generate a key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot make the certificate")?;
    Ok(PemPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A host as a subject alternative name: an IP address, or a DNS name that
/// clients can match (letters, digits, '-', '.'; a leading "*." for a
/// wildcard).
fn san(host: &str) -> anyhow::Result<SanType> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let valid = ServerName::try_from(bare).is_ok_and(|n| matches!(n, ServerName::DnsName(_)));
    if !valid {
        anyhow::bail!("{host:?} is neither a DNS name nor an IP address");
    }
    let name = host
        .to_string()
        .try_into()
        .with_context(|| format!("{host:?} is not a DNS name"))?;
    Ok(SanType::DnsName(name))
}

/// Writes a self-signed pair for `args.self_signed` to `args.out_dir` (the
/// key readable by its owner only) and returns the two paths, absolute.
/// Refuses to replace existing files unless `args.force`.
pub fn write(args: &CertArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let pair = self_signed(&args.self_signed)?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let dir = std::fs::canonicalize(&args.out_dir)
        .with_context(|| format!("cannot open {}", args.out_dir.display()))?;
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !args.force
        && let Some(existing) = [&cert, &key].into_iter().find(|p| p.exists())
    {
        anyhow::bail!(
            "{} exists; pass --force to replace it, or choose another --out-dir",
            existing.display()
        );
    }
    // The key first, so that a failure leaves no certificate without it.
    write_file(&key, pair.key_pem.as_bytes(), 0o600)?;
    write_file(&cert, pair.cert_pem.as_bytes(), 0o644)?;
    Ok((cert, key))
}

/// Writes `bytes` to a new file at `path` with `mode`, replacing one that
/// is there (whose mode would otherwise be kept).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", path.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What `sfu cert` prints: the files and how to serve with them.
pub fn instructions(cert: &Path, key: &Path, hosts: &[String]) -> String {
    let host = hosts.first().map_or("localhost", String::as_str);
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_string(),
    };
    format!(
        "certificate: {cert}\n\
         private key: {key}\n\
         \n\
         Serve HTTPS and WSS with:\n  \
         sfu --tls-cert {cert} --tls-key {key}\n\
         (or SFU_TLS_CERT / SFU_TLS_KEY, or tls_cert / tls_key in the config file)\n\
         then open https://{host}:7880/ (the port of --http-bind).\n\
         Browsers warn about a self-signed certificate until it is trusted; for a\n\
         public server use one from a public CA (e.g. Let's Encrypt).\n",
        cert = cert.display(),
        key = key.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// What browsers look for: every host as a SAN of the right type, the
    /// serverAuth purpose, and CA:FALSE.
    #[test]
    fn the_certificate_is_a_server_certificate_for_every_host() {
        let hosts = ["localhost", "127.0.0.1", "::1", "sfu.lan"].map(String::from);
        let pair = self_signed(&hosts).expect("pair");
        let der = CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).expect("parse");
        let der: &[u8] = der.as_ref();
        // id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
        assert!(contains(der, &[6, 8, 0x2b, 6, 1, 5, 5, 7, 3, 1]));
        // basicConstraints, critical, with an empty SEQUENCE (cA FALSE).
        assert!(contains(
            der,
            &[6, 3, 0x55, 0x1d, 0x13, 1, 1, 0xff, 4, 2, 0x30, 0]
        ));
        // dNSName [2] and iPAddress [7] entries.
        assert!(contains(der, b"\x82\x09localhost"));
        assert!(contains(der, b"\x82\x07sfu.lan"));
        assert!(contains(der, &[0x87, 4, 127, 0, 0, 1]));
        let mut v6 = vec![0x87, 16];
        v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        assert!(contains(der, &v6));
        assert!(format!("{pair:?}").contains("<redacted>"));
        assert!(!format!("{pair:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn hosts_must_be_names_or_addresses() {
        for bad in ["", "bad host", "https://x", "a/b", "exa mple.com"] {
            let e = self_signed(&[bad.to_string()]).expect_err(bad);
            assert!(e.to_string().contains("DNS name"), "{bad}: {e}");
        }
        assert!(self_signed(&[]).is_err());
        assert!(self_signed(&["*.example.com".into()]).is_ok());
    }

    #[test]
    fn write_refuses_to_overwrite_unless_forced_and_keeps_the_key_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let mut args = CertArgs {
            self_signed: vec!["localhost".into()],
            out_dir: dir.path().join("new"),
            force: false,
        };
        let (cert, key) = write(&args).expect("writes");
        assert!(cert.is_absolute() && cert.ends_with(CERT_FILE));
        let first = std::fs::read(&cert).expect("read");
        let e = write(&args).expect_err("exists");
        assert!(e.to_string().contains("--force"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        args.force = true;
        let (cert, key) = write(&args).expect("forced");
        assert_ne!(std::fs::read(&cert).expect("read"), first);
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a replaced key is private again");
        let text = instructions(&cert, &key, &args.self_signed);
        assert!(
            text.contains(&format!("--tls-cert {}", cert.display())),
            "{text}"
        );
    }
}
